//! Validating access tokens for resource servers: bearer tokens (RFC 6750, RFC
//! 9068 §4) and DPoP-bound ones with their proofs (RFC 9449 §7).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    GrantContext, OAuthError,
    dpop::{self, Expected, PresentedProof, ProofError},
    lookup::verify_access_token,
    metadata::endpoint_url,
};
use crate::crypto::jwt::AccessClaims;

/// Why a protected resource refuses a request (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header: a 401 naming the scheme, without an error
    /// code (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    /// A malformed request, e.g. a token sent twice.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Expired, revoked, malformed or not signed by this server.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// Valid, but without the scope this resource needs.
    #[error("insufficient_scope: {required}")]
    InsufficientScope { required: String },
    /// RFC 9449 §7.1: a 401 with a `DPoP` challenge — a DPoP-bound token sent as
    /// Bearer (`invalid_token`), a bad or replayed proof (`invalid_dpop_proof`),
    /// or a proof without a current nonce (`use_dpop_nonce`, with `nonce`).
    #[error("{code}: {description}")]
    Dpop {
        code: &'static str,
        description: String,
        /// The accepted algorithms, space-separated, for the challenge's `algs`.
        algs: String,
        /// The nonce to retry with.
        nonce: Option<String>,
    },
    /// The store could not be asked (503) or failed (500).
    #[error(transparent)]
    Server(OAuthError),
}

/// How the access token was sent (RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (RFC 6750 §2.1).
    Bearer,
    /// `Authorization: DPoP`, with a `DPoP` proof header.
    DPoP,
}

/// A request to a protected resource, as the proof must match it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    pub proof: &'a PresentedProof,
    /// The HTTP method.
    pub method: &'a str,
    /// The path of the resource, without query: the `htu` is `tokens.issuer`
    /// followed by it.
    pub path: &'a str,
}

impl BearerError {
    /// The RFC 6750 error code, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            BearerError::Missing => None,
            BearerError::InvalidRequest(_) => Some("invalid_request"),
            BearerError::InvalidToken(_) => Some("invalid_token"),
            BearerError::InsufficientScope { .. } => Some("insufficient_scope"),
            BearerError::Dpop { code, .. } => Some(code),
            BearerError::Server(e) => Some(e.code()),
        }
    }
}

/// Validates an access token: signature by `kid`, `typ`, `iss`, `aud`, `exp`, and,
/// with `check_revocation`, that neither the token nor its family was revoked and
/// its user is still enabled.
///
/// # Errors
/// `invalid_token` with the reason; `Server` when the store fails.
pub async fn authenticate(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
    check_revocation: bool,
) -> Result<AccessClaims, BearerError> {
    let claims = verify_access_token(ctx, token, now)
        .await
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
    if check_revocation {
        let jti = Uuid::parse_str(&claims.jti)
            .map_err(|_| BearerError::InvalidToken("malformed jti".into()))?;
        let record = ctx
            .store
            .find_access_token(jti)
            .await
            .map_err(|e| BearerError::Server(e.into()))?;
        match record {
            Some(r) if !r.revoked && !r.family_revoked && !r.subject_disabled => {}
            Some(_) => {
                return Err(BearerError::InvalidToken(
                    "the token has been revoked".into(),
                ));
            }
            None => return Err(BearerError::InvalidToken("unknown token".into())),
        }
    }
    Ok(claims)
}

/// Authenticates a request to a protected resource: the token as
/// [`authenticate`] does with revocation checked, then its binding. A
/// DPoP-bound token (`cnf.jkt`) must come with `Authorization: DPoP` and a proof
/// of its key for this method and URL, hashing the token into `ath`, not replayed
/// (RFC 9449 §7.1, §11.1); one sent as Bearer is refused, since a stolen bound
/// token must be worth nothing. An unbound token must come as Bearer.
///
/// # Errors
/// `invalid_token` for a bad token; a `DPoP` challenge for a binding or proof
/// that does not hold; `Server` when the store fails.
pub async fn authenticate_request(
    ctx: &GrantContext<'_>,
    request: &ResourceRequest<'_>,
    now: OffsetDateTime,
) -> Result<AccessClaims, BearerError> {
    let claims = authenticate(ctx, request.token, now, true).await?;
    let algs = || {
        ctx.settings
            .dpop
            .allowed_algs
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let challenge =
        |code: &'static str, description: &str, nonce: Option<String>| BearerError::Dpop {
            code,
            description: description.to_owned(),
            algs: algs(),
            nonce,
        };
    let jkt = match (request.scheme, claims.jkt()) {
        (Scheme::Bearer, None) => return Ok(claims),
        (Scheme::Bearer, Some(_)) => {
            return Err(challenge(
                "invalid_token",
                "the access token is DPoP-bound: send it as Authorization: DPoP with a proof",
                None,
            ));
        }
        (Scheme::DPoP, None) => {
            return Err(challenge(
                "invalid_token",
                "the access token is not DPoP-bound: send it as Authorization: Bearer",
                None,
            ));
        }
        (Scheme::DPoP, Some(jkt)) => jkt.to_owned(),
    };
    let PresentedProof::One(proof) = request.proof else {
        return Err(challenge(
            "invalid_dpop_proof",
            "send exactly one DPoP header with the request",
            None,
        ));
    };
    let htu = endpoint_url(ctx.settings, request.path);
    let expected = Expected {
        htm: request.method,
        htu: &htu,
        access_token: Some(request.token),
        nonce_required: ctx.settings.dpop.require_nonce,
    };
    let verified = match dpop::verify(proof, &expected, &ctx.settings.dpop, ctx.nonces, now) {
        Ok(verified) => verified,
        Err(ProofError::NonceRequired) => {
            return Err(challenge(
                "use_dpop_nonce",
                "send the proof again with the nonce of the DPoP-Nonce header",
                Some(ctx.nonces.issue(now)),
            ));
        }
        Err(ProofError::Invalid(why)) => return Err(challenge("invalid_dpop_proof", why, None)),
    };
    if verified.jkt != jkt {
        return Err(challenge(
            "invalid_dpop_proof",
            "the DPoP proof is not signed by the key the access token is bound to",
            None,
        ));
    }
    let recorded = ctx
        .store
        .record_dpop_proof(&verified.usage(&ctx.settings.dpop, now))
        .await
        .map_err(|e| BearerError::Server(e.into()))?;
    if !recorded {
        let _ = dpop::replayed(ctx, &claims.client_id, now).await;
        return Err(challenge(
            "invalid_dpop_proof",
            "the DPoP proof was used before",
            None,
        ));
    }
    Ok(claims)
}

/// The scope of tokens for the admin API.
pub const ADMIN_SCOPE: &str = "rotor:admin";

/// Who acts through the admin API: an admin user (through the console's client or
/// any client allowed the scope), or a confidential client on its own behalf
/// (client_credentials with `rotor:admin`, for scripts and CI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(String),
    Client(String),
}

impl Actor {
    /// How audit events name the actor.
    pub fn name(&self) -> &str {
        match self {
            Actor::User(name) | Actor::Client(name) => name,
        }
    }
}

/// Why the admin API refuses a token that is valid as a bearer token.
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// 401: no token, or one that is invalid, expired or revoked.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// 403: a valid token without the admin scope, or of a user who is not an
    /// admin (any more) or is disabled.
    #[error("{0}")]
    Forbidden(String),
}

/// Authenticates an admin: a valid, unrevoked token carrying [`ADMIN_SCOPE`], of a
/// client acting for itself or of an enabled user with the admin role.
///
/// # Errors
/// [`AdminRefusal::Bearer`] for a token that does not authenticate (401),
/// [`AdminRefusal::Forbidden`] for one that may not administer (403).
pub async fn authenticate_admin(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
) -> Result<Actor, AdminRefusal> {
    let claims = verify_access_token(ctx, token, now)
        .await
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
    // RFC 9449 §7.1: the admin API takes bearer tokens only, and a DPoP-bound
    // token is no bearer token.
    if claims.cnf.is_some() {
        return Err(BearerError::InvalidToken(
            "a DPoP-bound token cannot be used as a bearer token".into(),
        )
        .into());
    }
    let jti = Uuid::parse_str(&claims.jti)
        .map_err(|_| BearerError::InvalidToken("malformed jti".into()))?;
    let record = ctx
        .store
        .find_access_token(jti)
        .await
        .map_err(|e| BearerError::Server(e.into()))?
        .ok_or_else(|| BearerError::InvalidToken("unknown token".into()))?;
    if record.revoked || record.family_revoked {
        return Err(BearerError::InvalidToken("the token has been revoked".into()).into());
    }
    if require_scope(&claims, ADMIN_SCOPE).is_err() {
        return Err(AdminRefusal::Forbidden(format!(
            "the token lacks the scope {ADMIN_SCOPE}"
        )));
    }
    match record.subject {
        crate::store::Subject::Client { id } => Ok(Actor::Client(id)),
        crate::store::Subject::User { username, .. } => {
            // The role is read now, not from the token: a withdrawn role or a
            // disabled account takes effect at once.
            let user = ctx
                .store
                .find_user(&username)
                .await
                .map_err(|e| BearerError::Server(e.into()))?;
            match user {
                Some(u) if u.admin && !u.disabled => Ok(Actor::User(username)),
                Some(u) if u.disabled => Err(AdminRefusal::Forbidden(
                    "the user account is disabled".into(),
                )),
                _ => Err(AdminRefusal::Forbidden("the user is not an admin".into())),
            }
        }
    }
}

/// Checks that the token carries `scope`.
///
/// # Errors
/// `insufficient_scope` naming the scope needed.
pub fn require_scope(claims: &AccessClaims, scope: &str) -> Result<(), BearerError> {
    if claims.scope.split(' ').any(|s| s == scope) {
        Ok(())
    } else {
        Err(BearerError::InsufficientScope {
            required: scope.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_required_token_by_token() {
        let claims = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "read write".into(),
            cnf: None,
        };
        assert!(require_scope(&claims, "read").is_ok());
        assert!(matches!(
            require_scope(&claims, "rea"),
            Err(BearerError::InsufficientScope { .. })
        ));
    }
}
