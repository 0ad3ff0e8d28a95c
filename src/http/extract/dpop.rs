//! The `DPoP` request header (RFC 9449 §4.1), read once for the token endpoint
//! and the bearer guard alike.

use std::convert::Infallible;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, request::Parts},
};

use crate::oauth::dpop::PresentedProof;

/// The `DPoP` header name.
pub const DPOP: &str = "dpop";

/// The `DPoP` header values of a request: none, one, or several (which RFC 9449
/// §4.3 refuses). Never rejects; the protocol decides.
#[derive(Debug, Clone)]
pub struct DpopHeader(pub PresentedProof);

/// The proof `headers` carry.
pub fn presented_proof(headers: &HeaderMap) -> PresentedProof {
    let mut values = headers.get_all(DPOP).iter();
    match (values.next(), values.next()) {
        (None, _) => PresentedProof::Absent,
        // A value that is not visible ASCII holds no JWT; the check says so.
        (Some(value), None) => PresentedProof::One(value.to_str().unwrap_or("").trim().to_owned()),
        (Some(_), Some(_)) => PresentedProof::Many,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DpopHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(DpopHeader(presented_proof(&parts.headers)))
    }
}
