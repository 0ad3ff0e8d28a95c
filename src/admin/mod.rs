//! Administration: the rules for registering clients, managing users, their
//! consents and logins, signing keys, and changing settings at run time, over
//! `&dyn Store` and the password hasher. The command line, the admin API and the
//! console use it, so it knows nothing of them: no clap, no axum, no printing.
//! Errors are typed ([`AdminError`]); their messages are what an operator reads.

pub mod audit;
pub mod clients;
pub mod consents;
pub mod console;
pub mod families;
pub mod keys;
pub mod lists;
pub mod lookup;
pub mod overview;
pub mod sessions;
pub mod settings;
pub mod users;

use std::fmt;

use time::OffsetDateTime;

use crate::{
    config::MAX_GRACE_PERIOD,
    crypto::{password::PasswordHasher, token::ClientSecret},
    store::{AuditEvent, AuditKind, CodeFlowSettings, Outcome, Store, StoreError},
    wire::GrantType,
};

/// Why an administrative change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The client id breaks [`clients::check_client_id`].
    #[error(
        "a client id must be 1 to 255 printable ASCII characters or spaces (RFC 6749 Appendix A.1)"
    )]
    InvalidClientId,
    /// The username breaks [`users::Username::parse`].
    #[error("a username must be 1 to 255 characters without control characters")]
    InvalidUsername,
    /// A grant type rotor does not implement ([`clients::check_grant_types`]).
    #[error("unknown grant type {0:?}; rotor supports {supported}", supported = GrantType::names())]
    UnknownGrantType(String),
    /// A retry grace period above [`MAX_GRACE_PERIOD`].
    #[error("--grace-period must be at most {}s", MAX_GRACE_PERIOD.as_secs())]
    GracePeriodTooLong,
    /// A redirect URI that cannot be registered; the text says why.
    #[error("--redirect-uri: {0}")]
    InvalidRedirectUri(String),
    /// A code-flow setting that does not fit the client; the text says why.
    #[error("{0}")]
    InvalidCodeFlow(String),
    /// The client's scopes are not RFC 6749 §3.3 scope tokens; the description says why.
    #[error("--scopes: {0}")]
    InvalidScope(String),
    /// An operator-chosen client secret that is too weak; the text says why.
    #[error("{0}")]
    InvalidSecret(String),
    /// An operator-chosen password that is empty.
    #[error("a password must not be empty")]
    EmptyPassword,
    /// A client with this id exists already.
    #[error("client {0:?} already exists")]
    ClientExists(String),
    /// No client has this id.
    #[error("no client {0:?}")]
    NoSuchClient(String),
    /// A user with this name exists already.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// No user has this name.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// No token family has this id.
    #[error("no such family")]
    NoSuchFamily,
    /// No live browser session has this id.
    #[error("no live browser session with this id")]
    NoSuchSession,
    /// The console's own client, which the console needs to sign anyone in.
    #[error("the console's own client (rotor-console) cannot be changed or removed")]
    ConsoleClient,
    /// A public client has no secret to regenerate.
    #[error("client {0:?} is public: it has no secret")]
    PublicClient(String),
    /// A pasted token that is no token of this server.
    #[error(
        "no token of this server is this one (an access token past its expiry cannot be found)"
    )]
    UnknownToken,
    /// A filter of the audit trail that names no kind, outcome or position.
    #[error("{0}")]
    InvalidFilter(String),
    /// The user gave this client no consent.
    #[error("user {username:?} has given client {client_id:?} no consent")]
    NoSuchConsent { username: String, client_id: String },
    /// A key that is unknown or cannot be changed at run time.
    #[error(
        "{0:?} cannot be changed at run time; these can: {keys}",
        keys = settings::Key::names()
    )]
    NotChangeable(String),
    /// A setting's value of the wrong form, or one the configuration's checks
    /// refuse; the text names the key and says why.
    #[error("{0}")]
    InvalidSetting(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Who makes an administrative change, as its audit event and the changed row
/// name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The command line, run by someone with the database's credentials.
    Cli,
    /// An admin user of the console or the admin API.
    User(String),
    /// A client with the `rotor:admin` scope (client_credentials).
    Client(String),
}

impl Actor {
    /// The acting user's name, for the audit event.
    pub fn username(&self) -> Option<&str> {
        match self {
            Actor::User(name) => Some(name),
            _ => None,
        }
    }

    /// The acting client's id, for the audit event.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Actor::Client(id) => Some(id),
            _ => None,
        }
    }
}

impl From<crate::oauth::bearer::Actor> for Actor {
    /// The admin a bearer token of the admin API authenticated.
    fn from(actor: crate::oauth::bearer::Actor) -> Actor {
        match actor {
            crate::oauth::bearer::Actor::User(name) => Actor::User(name),
            crate::oauth::bearer::Actor::Client(id) => Actor::Client(id),
        }
    }
}

impl fmt::Display for Actor {
    /// `cli`, `user NAME` or `client ID`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli => f.write_str("cli"),
            Actor::User(name) => write!(f, "user {name}"),
            Actor::Client(id) => write!(f, "client {id}"),
        }
    }
}

/// Records an administrative change of `target` (`client ID`, `user NAME`,
/// `family ID`, `session ID`, `key KID`) made by `actor`, with `outcome`; the
/// family when one is concerned, so that it shows in that login's chain. A
/// failure to record is logged: the change is made already.
pub async fn record_change(
    store: &dyn Store,
    actor: &Actor,
    target: String,
    outcome: Outcome,
    family_id: Option<uuid::Uuid>,
    now: OffsetDateTime,
) {
    let event = AuditEvent {
        at: now,
        kind: AuditKind::AdminChange,
        username: actor.username().map(str::to_owned),
        client_id: actor.client_id().map(str::to_owned),
        family_id,
        ip: None,
        outcome,
        target: Some(target),
        actor: Some(actor.to_string()),
    };
    tracing::info!(kind = event.kind.as_str(), outcome = outcome.as_str(), actor = %actor, target = event.target, "audit");
    if let Err(error) = store.record_audit(&event).await {
        tracing::error!(error = %error, "recording an audit event failed");
    }
}

/// The demo client's and user's credentials, in clear, to show once.
pub struct DemoCredentials {
    pub client_secret: ClientSecret,
    pub password: users::NewPassword,
}

impl fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemoCredentials([redacted])")
    }
}

/// The id of the demo client and the name of the demo user.
pub const DEMO: &str = "demo";

/// The id of the demo public client of the authorization code flow, for
/// `rotor login`.
pub const DEMO_PUBLIC: &str = "demo-cli";

/// The redirect URI of [`DEMO_PUBLIC`]: loopback, so any port matches (RFC 8252
/// §7.3) and `rotor login` listens wherever the system lets it.
pub const DEMO_PUBLIC_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// On first start, a demo client (the password and refresh grants, scopes `read
/// write`), a demo user, and a demo public client of the authorization code flow
/// ([`DEMO_PUBLIC`]: first party, PKCE, loopback redirect), so that a newcomer
/// gets tokens at once, by curl or by `rotor login`.
///
/// # Errors
/// The store or the hasher failed. `Ok(None)` when the demo client exists already:
/// instances started together on an empty store, and another one was first.
pub async fn create_demo(
    store: &dyn Store,
    hasher: &PasswordHasher,
    now: OffsetDateTime,
) -> Result<Option<DemoCredentials>, AdminError> {
    let client = clients::NewClient {
        id: DEMO.into(),
        grant_types: vec![
            GrantType::Password.as_str().to_owned(),
            GrantType::RefreshToken.as_str().to_owned(),
        ],
        scopes: "read write".into(),
        refresh_tokens: true,
        refresh_ttl: None,
        max_refreshes: None,
        grace_period: None,
        public: false,
        code_flow: CodeFlowSettings::default(),
        dpop: Default::default(),
    }
    .validate()?;
    let client_secret = clients::generate_secret();
    match clients::create(store, client, Some(&client_secret), now).await {
        Err(AdminError::ClientExists(_)) => return Ok(None),
        other => other?,
    };
    let password = users::NewPassword::generate();
    users::add(
        store,
        hasher,
        &users::Username::parse(DEMO)?,
        &password,
        now,
    )
    .await?;
    clients::create(store, demo_public_client()?, None, now).await?;
    Ok(Some(DemoCredentials {
        client_secret,
        password,
    }))
}

/// [`DEMO_PUBLIC`]: what `rotor client add demo-cli --public --grants
/// authorization_code,refresh_token --scopes 'read write' --redirect-uri
/// http://127.0.0.1/callback` registers.
fn demo_public_client() -> Result<clients::ValidClient, AdminError> {
    clients::NewClient {
        id: DEMO_PUBLIC.into(),
        grant_types: vec![
            GrantType::AuthorizationCode.as_str().to_owned(),
            GrantType::RefreshToken.as_str().to_owned(),
        ],
        scopes: "read write".into(),
        refresh_tokens: true,
        refresh_ttl: None,
        max_refreshes: None,
        grace_period: None,
        public: true,
        code_flow: CodeFlowSettings {
            redirect_uris: vec![DEMO_PUBLIC_REDIRECT_URI.into()],
            ..CodeFlowSettings::default()
        },
        dpop: Default::default(),
    }
    .validate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Consent, Pkce};

    #[test]
    fn the_demo_public_client_is_a_first_party_pkce_client_of_the_loopback() {
        let client = demo_public_client().unwrap();
        assert_eq!(client.id(), DEMO_PUBLIC);
        let flow = client.code_flow();
        assert_eq!(flow.redirect_uris, [DEMO_PUBLIC_REDIRECT_URI]);
        assert_eq!(flow.consent, Consent::FirstParty);
        assert_eq!(flow.pkce, Pkce::Required);
        assert!(!flow.offline_access);
    }
}
