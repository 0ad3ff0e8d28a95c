//! Authorization server metadata (RFC 8414), computed from the running
//! configuration and the registered clients.

use serde::Serialize;

use super::{GrantType, refresh_available};
use crate::{config::Settings, store::ClientRecord};

/// RFC 8414 §2 metadata document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    /// The authorization code flow only (OAuth 2.1 has no implicit grant).
    pub response_types_supported: Vec<&'static str>,
    /// RFC 7636 §4.2 via RFC 8414 §2: `S256` only.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Introspection is for confidential clients only.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    /// RFC 9449 §5.1: the algorithms accepted in DPoP proofs.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
}

/// The public URL of the endpoint at `path`: `tokens.issuer` followed by the
/// path, so that an issuer with a path prefix works. Metadata and the `htu` of
/// DPoP proofs (RFC 9449 §4.3) both come from here, never from `Host`.
pub fn endpoint_url(settings: &Settings, path: &str) -> String {
    format!("{}{path}", settings.tokens.issuer.trim_end_matches('/'))
}

/// Builds the document. Endpoints hang off the issuer URL.
pub fn document(settings: &Settings, clients: &[ClientRecord]) -> ServerMetadata {
    let url = |path: &str| endpoint_url(settings, path);
    let grants = GrantType::ALL
        .into_iter()
        .filter(|g| *g != GrantType::RefreshToken || refresh_available(settings).is_ok())
        .map(GrantType::as_str)
        .collect();
    let confidential = vec!["client_secret_basic", "client_secret_post"];
    let mut client_methods = confidential.clone();
    // "none": public clients, identified by client_id alone (or the anonymous client).
    if clients.iter().any(ClientRecord::is_public) || settings.clients.anonymous_client.is_some() {
        client_methods.push("none");
    }
    let mut scopes: Vec<String> = clients
        .iter()
        .flat_map(|c| c.scopes.iter().cloned())
        .collect();
    // `offline_access` is a scope wherever a client may ask for it.
    if clients.iter().any(|c| c.code_flow.offline_access) {
        scopes.push(super::authorize::OFFLINE_ACCESS.to_owned());
    }
    scopes.sort();
    scopes.dedup();
    ServerMetadata {
        issuer: settings.tokens.issuer.clone(),
        authorization_endpoint: url("/oauth2/authorize"),
        token_endpoint: url(super::dpop::TOKEN_PATH),
        jwks_uri: url("/oauth2/jwks"),
        revocation_endpoint: url("/oauth2/revoke"),
        introspection_endpoint: url("/oauth2/introspect"),
        grant_types_supported: grants,
        response_types_supported: vec!["code"],
        code_challenge_methods_supported: vec!["S256"],
        authorization_response_iss_parameter_supported: true,
        token_endpoint_auth_methods_supported: client_methods.clone(),
        revocation_endpoint_auth_methods_supported: client_methods,
        introspection_endpoint_auth_methods_supported: confidential,
        scopes_supported: scopes,
        dpop_signing_alg_values_supported: settings
            .dpop
            .allowed_algs
            .iter()
            .map(|a| a.as_str())
            .collect(),
    }
}
