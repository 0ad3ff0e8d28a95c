//! Client authentication (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, public clients by `client_id`, and the optional
//! anonymous client for scripts that identify no client at all.
//!
//! Every `invalid_client` says whether the client tried the `Authorization`
//! header (`basic_attempted`): only then does the answer become 401 with
//! `WWW-Authenticate: Basic` (RFC 6749 §5.2). A client that used
//! `client_secret_post`, sent only a public `client_id`, or named no client gets
//! 400 and no challenge, so that a browser never shows a credential dialog.

use std::fmt;

use super::{GrantContext, OAuthError, request::Params};
use crate::{crypto::token::TokenHash, store::ClientRecord};

/// Credentials from an `Authorization: Basic` header, already form-url-decoded
/// (RFC 6749 §2.3.1).
#[derive(Clone)]
pub struct BasicCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// What the request says about its client.
#[derive(Default)]
pub struct PresentedClient {
    /// The Basic header, when one was sent and could be decoded.
    pub basic: Option<BasicCredentials>,
    /// A Basic header was sent but is malformed.
    pub basic_malformed: bool,
    /// `client_id` from the body.
    pub body_id: Option<String>,
    /// `client_secret` from the body.
    pub body_secret: Option<String>,
}

impl fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // client_secret_post carries the secret in the body: never print it.
        f.debug_struct("PresentedClient")
            .field("basic", &self.basic)
            .field("basic_malformed", &self.basic_malformed)
            .field("body_id", &self.body_id)
            .field(
                "body_secret",
                &self.body_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl PresentedClient {
    /// Whether the client tried to authenticate with the `Authorization` header
    /// (RFC 6749 §5.2), decodable or not.
    pub fn basic_attempted(&self) -> bool {
        self.basic.is_some() || self.basic_malformed
    }

    /// Takes `client_id` and `client_secret` out of the body parameters.
    pub fn new(
        basic: Option<BasicCredentials>,
        basic_malformed: bool,
        params: &mut Params,
    ) -> Self {
        PresentedClient {
            basic,
            basic_malformed,
            body_id: params.take("client_id"),
            body_secret: params.take("client_secret"),
        }
    }
}

/// A client whose identity was established for this request.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient(pub ClientRecord);

impl AuthenticatedClient {
    /// The client's id.
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

const FAILED: &str = "client authentication failed";

/// Establishes which client makes the request.
///
/// # Errors
/// `invalid_request` when two methods are used at once; `invalid_client` when the
/// client is unknown, the secret is wrong, a confidential client sends no secret, or
/// no client is identified while no anonymous client is configured.
pub async fn authenticate(
    ctx: &GrantContext<'_>,
    presented: PresentedClient,
) -> Result<AuthenticatedClient, OAuthError> {
    if presented.basic_malformed {
        return Err(OAuthError::invalid_client(
            "malformed Basic authorization header",
            true,
        ));
    }
    if let Some(basic) = presented.basic {
        // RFC 6749 §2.3: "The client MUST NOT use more than one authentication
        // method in each request."
        if presented.body_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use either HTTP Basic or client_secret in the body, not both".into(),
            ));
        }
        if presented
            .body_id
            .as_deref()
            .is_some_and(|id| id != basic.client_id)
        {
            return Err(OAuthError::InvalidRequest(
                "client_id in the body differs from the Basic credentials".into(),
            ));
        }
        return verify(ctx, &basic.client_id, Some(&basic.client_secret), true).await;
    }
    match (presented.body_id, presented.body_secret) {
        (Some(id), secret) => verify(ctx, &id, secret.as_deref(), false).await,
        (None, Some(_)) => Err(OAuthError::InvalidRequest(
            "client_secret was sent without client_id".into(),
        )),
        (None, None) => match &ctx.settings.clients.anonymous_client {
            Some(id) => {
                let client = ctx.store.find_client(id).await?;
                match client {
                    Some(c) if c.is_public() => Ok(AuthenticatedClient(c)),
                    _ => {
                        tracing::warn!(client_id = %id, "clients.anonymous_client names no public client");
                        Err(OAuthError::invalid_client(FAILED, false))
                    }
                }
            }
            None => Err(OAuthError::invalid_client(
                "no client identified: send HTTP Basic credentials or client_id",
                false,
            )),
        },
    }
}

async fn verify(
    ctx: &GrantContext<'_>,
    id: &str,
    secret: Option<&str>,
    basic: bool,
) -> Result<AuthenticatedClient, OAuthError> {
    let client = ctx.store.find_client(id).await?;
    // Hash whatever was presented, found or not, so that an unknown client costs
    // the same as a wrong secret.
    let presented = secret.filter(|s| !s.is_empty()).map(TokenHash::of);
    let Some(client) = client else {
        return Err(OAuthError::invalid_client(FAILED, basic));
    };
    match (client.secret_hash, presented) {
        // A public client: no secret expected. Some libraries send an empty Basic
        // password for one, which is accepted.
        (None, None) => Ok(AuthenticatedClient(client)),
        (None, Some(_)) => Err(OAuthError::invalid_client(FAILED, basic)),
        (Some(_), None) => Err(OAuthError::invalid_client(FAILED, basic)),
        (Some(stored), Some(given)) if stored.ct_eq(&given) => Ok(AuthenticatedClient(client)),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client(FAILED, basic)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_authorization_header_counts_as_a_basic_attempt() {
        let mut params = Params::from_form(b"client_id=app&client_secret=s").unwrap();
        let basic = BasicCredentials {
            client_id: "app".into(),
            client_secret: "s".into(),
        };
        assert!(PresentedClient::new(Some(basic), false, &mut Params::default()).basic_attempted());
        assert!(PresentedClient::new(None, true, &mut Params::default()).basic_attempted());
        assert!(!PresentedClient::new(None, false, &mut params).basic_attempted());
        assert!(!PresentedClient::default().basic_attempted());
    }

    #[test]
    fn debug_of_a_presented_client_hides_the_body_secret() {
        let mut params =
            Params::from_form(b"client_id=app&client_secret=s3cret-s3cret-s3cret").unwrap();
        let presented = PresentedClient::new(None, false, &mut params);
        let debug = format!("{presented:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("app"), "{debug}");
    }
}
