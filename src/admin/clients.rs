//! Registering, listing and removing OAuth clients: which ids, grant types, scopes,
//! secrets and grace periods a client may have.

use std::time::Duration;

use time::OffsetDateTime;

use super::{AdminError, lists};
use crate::{
    config::MAX_GRACE_PERIOD,
    crypto::token::ClientSecret,
    oauth::{Scope, policy::OFFLINE_TTL_RANGE, redirect, request::syntax},
    store::{
        ClientRecord, CodeFlowSettings, Consent, DpopClientSettings, KeyPage, Pkce, Store,
        StoreError,
    },
    wire::GrantType,
};

/// A client as an operator asks for it, before any rule is checked.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub id: String,
    /// Grant type names the client may use.
    pub grant_types: Vec<String>,
    /// Scopes the client may request, space-separated (RFC 6749 §3.3).
    pub scopes: String,
    /// Whether the client receives refresh tokens.
    pub refresh_tokens: bool,
    /// Refresh-token lifetime instead of the server's.
    pub refresh_ttl: Option<Duration>,
    /// Refreshes per login instead of the server's (0 = unlimited).
    pub max_refreshes: Option<u32>,
    /// Retry grace period instead of the server's.
    pub grace_period: Option<Duration>,
    /// Whether the client is public (has no secret).
    pub public: bool,
    /// How the client uses the authorization code flow.
    pub code_flow: CodeFlowSettings,
    /// How the client uses DPoP (RFC 9449).
    pub dpop: DpopClientSettings,
}

/// A [`NewClient`] that passed every rule; only [`NewClient::validate`] makes one.
#[derive(Debug, Clone)]
pub struct ValidClient {
    id: String,
    grant_types: Vec<GrantType>,
    scopes: Scope,
    refresh_tokens: bool,
    refresh_ttl: Option<Duration>,
    max_refreshes: Option<u32>,
    grace_period: Option<Duration>,
    code_flow: CodeFlowSettings,
    dpop: DpopClientSettings,
}

impl ValidClient {
    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How the client uses the authorization code flow.
    pub fn code_flow(&self) -> &CodeFlowSettings {
        &self.code_flow
    }
}

impl NewClient {
    /// Checks the id, the grant types, the grace period, the scopes and the code
    /// flow settings, in that order.
    ///
    /// # Errors
    /// The first rule the client breaks.
    pub fn validate(self) -> Result<ValidClient, AdminError> {
        check_client_id(&self.id)?;
        let grant_types = check_grant_types(&self.grant_types)?;
        check_grace_period(self.grace_period)?;
        let scopes =
            Scope::parse(&self.scopes).map_err(|e| AdminError::InvalidScope(e.description()))?;
        check_code_flow(&grant_types, self.public, &self.code_flow)?;
        Ok(ValidClient {
            id: self.id,
            grant_types,
            scopes,
            refresh_tokens: self.refresh_tokens,
            refresh_ttl: self.refresh_ttl,
            max_refreshes: self.max_refreshes,
            grace_period: self.grace_period,
            code_flow: self.code_flow,
            dpop: self.dpop,
        })
    }
}

/// The rules of the authorization code flow settings, in one place: every redirect
/// URI registrable ([`redirect::check_registration`]), at least one when the client
/// may use the flow, PKCE optional only for a confidential client (OAuth 2.1 §4.1.1
/// requires it of public ones), and an offline lifetime of 1 to 365 days.
///
/// # Errors
/// [`AdminError::InvalidRedirectUri`] or [`AdminError::InvalidCodeFlow`].
pub fn check_code_flow(
    grant_types: &[GrantType],
    public: bool,
    flow: &CodeFlowSettings,
) -> Result<(), AdminError> {
    for uri in &flow.redirect_uris {
        redirect::check_registration(uri).map_err(AdminError::InvalidRedirectUri)?;
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && flow.redirect_uris.is_empty() {
        return Err(AdminError::InvalidCodeFlow(
            "the authorization_code grant needs at least one --redirect-uri".into(),
        ));
    }
    if public && flow.pkce == Pkce::Optional {
        return Err(AdminError::InvalidCodeFlow(
            "--pkce-optional is for confidential clients only: a public client must use PKCE"
                .into(),
        ));
    }
    if flow
        .offline_ttl
        .is_some_and(|ttl| !OFFLINE_TTL_RANGE.contains(&ttl))
    {
        return Err(AdminError::InvalidCodeFlow(
            "--offline-ttl must be between 1 day and 365 days".into(),
        ));
    }
    Ok(())
}

/// The rule for client ids, in one place. RFC 6749 Appendix A.1:
/// `client-id = *VSCHAR`, printable ASCII and the space. Empty ids and ids over 255
/// characters are refused as well; clients send theirs form-url-encoded in a Basic
/// header (§2.3.1), so `:`, `%` and `+` are fine.
///
/// # Errors
/// [`AdminError::InvalidClientId`].
pub fn check_client_id(id: &str) -> Result<(), AdminError> {
    if id.is_empty() || id.len() > 255 || !id.chars().all(syntax::is_vschar) {
        return Err(AdminError::InvalidClientId);
    }
    Ok(())
}

/// The rule for grant types, in one place: each is one rotor implements
/// ([`GrantType`]).
///
/// # Errors
/// [`AdminError::UnknownGrantType`] naming the first unknown one.
pub fn check_grant_types(grant_types: &[String]) -> Result<Vec<GrantType>, AdminError> {
    grant_types
        .iter()
        .map(|g| GrantType::parse(g).ok_or_else(|| AdminError::UnknownGrantType(g.clone())))
        .collect()
}

/// A client's grace period is capped like the server's (`refresh.grace_period`):
/// a retried refresh must not keep a spent token usable for long.
fn check_grace_period(grace_period: Option<Duration>) -> Result<(), AdminError> {
    if grace_period.is_some_and(|g| g > MAX_GRACE_PERIOD) {
        return Err(AdminError::GracePeriodTooLong);
    }
    Ok(())
}

/// A fresh client secret with 256 bits of randomness.
pub fn generate_secret() -> ClientSecret {
    ClientSecret::generate()
}

/// An operator-chosen client secret.
///
/// # Errors
/// [`AdminError::InvalidSecret`] when it is too short to be stored as a SHA-256
/// hash safely.
pub fn chosen_secret(text: String) -> Result<ClientSecret, AdminError> {
    // RFC 6749 Appendix A.2: `client-secret = *VSCHAR`; the token endpoint refuses
    // any other character, so such a secret could never authenticate.
    if !text.chars().all(syntax::is_vschar) {
        return Err(AdminError::InvalidSecret(
            "a client secret must be printable ASCII characters or spaces".into(),
        ));
    }
    ClientSecret::parse(text).map_err(AdminError::InvalidSecret)
}

/// Registers a client: confidential with `secret` (of which the store keeps the
/// hash), public without.
///
/// # Errors
/// [`AdminError::ClientExists`], or the store failed.
pub async fn create(
    store: &dyn Store,
    client: ValidClient,
    secret: Option<&ClientSecret>,
    now: OffsetDateTime,
) -> Result<ClientRecord, AdminError> {
    let record = ClientRecord {
        id: client.id,
        secret_hash: secret.map(ClientSecret::hash),
        grant_types: client.grant_types,
        scopes: client.scopes.tokens().to_vec(),
        refresh_tokens: client.refresh_tokens,
        refresh_ttl: client.refresh_ttl,
        max_refreshes: client.max_refreshes,
        grace_period: client.grace_period,
        code_flow: client.code_flow,
        dpop: client.dpop,
        created_at: now,
    };
    match store.create_client(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict { .. }) => Err(AdminError::ClientExists(record.id)),
        Err(e) => Err(e.into()),
    }
}

/// Every client.
///
/// # Errors
/// The store failed.
pub async fn list(store: &dyn Store) -> Result<Vec<ClientRecord>, AdminError> {
    Ok(store.list_clients().await?)
}

/// One page of the clients whose id contains [`KeyPage::contains`] (ignoring
/// case), by id.
///
/// # Errors
/// The store failed.
pub async fn page(
    store: &dyn Store,
    page: &KeyPage,
) -> Result<lists::Page<ClientRecord>, AdminError> {
    let rows = store.clients_page(&lists::probe(page)).await?;
    Ok(lists::cut(rows, page.limit, |c| c.id.clone()))
}

/// Removes a client; its tokens stop working at once. The console's own client
/// stays: without it no admin could sign in to the console.
///
/// # Errors
/// [`AdminError::ConsoleClient`], [`AdminError::NoSuchClient`], or the store
/// failed.
pub async fn remove(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    if id == super::console::CLIENT_ID {
        return Err(AdminError::ConsoleClient);
    }
    match store.remove_client(id).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchClient(id.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// A lifetime typed into a form: empty for the server's setting.
///
/// # Errors
/// [`AdminError::InvalidCodeFlow`] naming the option (`--refresh-ttl`, …).
pub fn optional_duration(option: &str, text: &str) -> Result<Option<Duration>, AdminError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(text).map(Some).map_err(|_| {
        AdminError::InvalidCodeFlow(format!(
            "{option}: expected a duration like 90s, 12h or 30d, got {text:?}"
        ))
    })
}

/// A count typed into a form: empty for the server's setting.
///
/// # Errors
/// [`AdminError::InvalidCodeFlow`] naming the option (`--max-refreshes`).
pub fn optional_count(option: &str, text: &str) -> Result<Option<u32>, AdminError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        AdminError::InvalidCodeFlow(format!(
            "{option}: expected a whole number, 0 for unlimited, got {text:?}"
        ))
    })
}

/// What an edit of a client changes; `None` keeps the value. An inner `None`
/// (for the lifetimes and limits) goes back to the server's setting.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub refresh_tokens: Option<bool>,
    pub refresh_ttl: Option<Option<Duration>>,
    pub max_refreshes: Option<Option<u32>>,
    pub grace_period: Option<Option<Duration>>,
    pub third_party: Option<bool>,
    pub pkce_required: Option<bool>,
    pub offline_access: Option<bool>,
    pub offline_ttl: Option<Option<Duration>>,
    pub refresh_requires_offline: Option<bool>,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Whether its DPoP proofs need a nonce; an inner `None` is the server's.
    pub dpop_require_nonce: Option<Option<bool>>,
}

impl ClientChanges {
    /// `client` as an operator would ask for it again with these changes, to be
    /// checked by the rules of a new client ([`NewClient::validate`]). The type
    /// (public or confidential) stays: a secret is made only by
    /// [`regenerate_secret`].
    fn over(self, client: &ClientRecord) -> NewClient {
        let flow = &client.code_flow;
        NewClient {
            id: client.id.clone(),
            grant_types: self.grant_types.unwrap_or_else(|| {
                client
                    .grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect()
            }),
            scopes: self.scopes.unwrap_or_else(|| client.scopes.join(" ")),
            refresh_tokens: self.refresh_tokens.unwrap_or(client.refresh_tokens),
            refresh_ttl: self.refresh_ttl.unwrap_or(client.refresh_ttl),
            max_refreshes: self.max_refreshes.unwrap_or(client.max_refreshes),
            grace_period: self.grace_period.unwrap_or(client.grace_period),
            public: client.is_public(),
            code_flow: CodeFlowSettings {
                redirect_uris: self
                    .redirect_uris
                    .unwrap_or_else(|| flow.redirect_uris.clone()),
                consent: match self.third_party {
                    Some(true) => Consent::ThirdParty,
                    Some(false) => Consent::FirstParty,
                    None => flow.consent,
                },
                pkce: match self.pkce_required {
                    Some(true) => Pkce::Required,
                    Some(false) => Pkce::Optional,
                    None => flow.pkce,
                },
                offline_access: self.offline_access.unwrap_or(flow.offline_access),
                offline_ttl: self.offline_ttl.unwrap_or(flow.offline_ttl),
                refresh_requires_offline: self
                    .refresh_requires_offline
                    .unwrap_or(flow.refresh_requires_offline),
            },
            dpop: DpopClientSettings {
                bound_access_tokens: self
                    .dpop_bound_access_tokens
                    .unwrap_or(client.dpop.bound_access_tokens),
                require_nonce: self.dpop_require_nonce.unwrap_or(client.dpop.require_nonce),
            },
        }
    }
}

/// Changes what a client may do, under the rules of a new client: its grants,
/// scopes, redirect URIs, refresh and code-flow settings. Tokens issued already
/// keep their scope; every later request is held to the new settings. Returns the
/// client as now stored.
///
/// # Errors
/// [`AdminError::ConsoleClient`], [`AdminError::NoSuchClient`], the first rule
/// the edited client breaks, or the store failed.
pub async fn update(
    store: &dyn Store,
    id: &str,
    changes: ClientChanges,
) -> Result<ClientRecord, AdminError> {
    if id == super::console::CLIENT_ID {
        return Err(AdminError::ConsoleClient);
    }
    let current = store
        .find_client(id)
        .await?
        .ok_or_else(|| AdminError::NoSuchClient(id.to_owned()))?;
    let valid = changes.over(&current).validate()?;
    let record = ClientRecord {
        id: valid.id,
        secret_hash: current.secret_hash,
        grant_types: valid.grant_types,
        scopes: valid.scopes.tokens().to_vec(),
        refresh_tokens: valid.refresh_tokens,
        refresh_ttl: valid.refresh_ttl,
        max_refreshes: valid.max_refreshes,
        grace_period: valid.grace_period,
        code_flow: valid.code_flow,
        dpop: valid.dpop,
        created_at: current.created_at,
    };
    match store.update_client(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchClient(id.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// A new secret for a confidential client, to show once; the old one stops
/// working at once (the store keeps only the new one's hash). Tokens issued
/// already stay valid: revoking them is [`super::families::revoke_all`].
///
/// # Errors
/// [`AdminError::NoSuchClient`], [`AdminError::PublicClient`], or the store
/// failed.
pub async fn regenerate_secret(store: &dyn Store, id: &str) -> Result<ClientSecret, AdminError> {
    let client = store
        .find_client(id)
        .await?
        .ok_or_else(|| AdminError::NoSuchClient(id.to_owned()))?;
    if client.is_public() {
        return Err(AdminError::PublicClient(id.to_owned()));
    }
    let secret = generate_secret();
    match store.set_client_secret(id, &secret.hash()).await {
        Ok(()) => Ok(secret),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchClient(id.to_owned())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_client(id: &str) -> NewClient {
        NewClient {
            id: id.into(),
            grant_types: vec!["password".into(), "refresh_token".into()],
            scopes: "read write".into(),
            refresh_tokens: true,
            refresh_ttl: None,
            max_refreshes: None,
            grace_period: None,
            public: false,
            code_flow: CodeFlowSettings::default(),
            dpop: DpopClientSettings::default(),
        }
    }

    fn refusal(client: NewClient) -> String {
        match client.validate() {
            Ok(valid) => panic!("accepted {valid:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_client_with_both_grants_and_plain_scopes_is_valid() {
        let valid = new_client("app").validate().unwrap();
        assert_eq!(valid.id(), "app");
        assert_eq!(valid.scopes.tokens(), ["read", "write"]);
    }

    #[test]
    fn a_client_id_is_one_to_255_characters_without_control_characters() {
        let message = "a client id must be 1 to 255 printable ASCII characters or spaces (RFC 6749 Appendix A.1)";
        assert_eq!(refusal(new_client("")), message);
        assert_eq!(refusal(new_client(&"x".repeat(256))), message);
        assert_eq!(refusal(new_client("a\u{0}b")), message);
        assert_eq!(refusal(new_client("a\nb")), message);
        assert!(check_client_id(&"x".repeat(255)).is_ok());
        assert!(check_client_id("billing-service_2.internal").is_ok());
    }

    #[test]
    fn a_client_id_may_hold_any_printable_ascii_and_spaces_but_nothing_else() {
        assert!(check_client_id("my app: 100% /+").is_ok());
        assert!(check_client_id("caf\u{e9}").is_err());
        assert!(check_client_id("tab\there").is_err());
    }

    #[test]
    fn an_unknown_grant_type_is_named_with_the_supported_ones() {
        let mut client = new_client("app");
        client.grant_types = vec!["password".into(), "implicit".into()];
        assert_eq!(
            refusal(client),
            r#"unknown grant type "implicit"; rotor supports authorization_code, password, refresh_token, client_credentials"#
        );
    }

    #[test]
    fn a_grace_period_over_two_minutes_is_refused() {
        let mut client = new_client("app");
        client.grace_period = Some(MAX_GRACE_PERIOD);
        assert!(client.clone().validate().is_ok());
        client.grace_period = Some(MAX_GRACE_PERIOD + Duration::from_secs(1));
        assert_eq!(refusal(client), "--grace-period must be at most 120s");
    }

    #[test]
    fn scopes_outside_the_scope_token_characters_are_refused() {
        let mut client = new_client("app");
        client.scopes = "read \"write\"".into();
        assert!(refusal(client).starts_with("--scopes: "));
    }

    #[test]
    fn the_id_is_checked_before_the_grants() {
        let mut client = new_client("");
        client.grant_types = vec!["implicit".into()];
        assert!(matches!(
            client.validate(),
            Err(AdminError::InvalidClientId)
        ));
    }

    #[test]
    fn the_code_flow_needs_a_redirect_uri_and_pkce_for_public_clients() {
        let mut client = new_client("spa");
        client.grant_types = vec!["authorization_code".into()];
        assert!(refusal(client.clone()).contains("at least one --redirect-uri"));
        client.code_flow.redirect_uris = vec!["http://example.com/cb".into()];
        assert!(refusal(client.clone()).starts_with("--redirect-uri: "));
        client.code_flow.redirect_uris = vec!["http://127.0.0.1/callback".into()];
        client.validate().unwrap();
        let mut public = new_client("spa");
        public.public = true;
        public.code_flow.pkce = Pkce::Optional;
        assert!(refusal(public).contains("--pkce-optional"));
        let mut long = new_client("spa");
        long.code_flow.offline_ttl = Some(Duration::from_secs(366 * 24 * 3600));
        assert!(refusal(long).contains("--offline-ttl"));
    }

    fn record(client: NewClient) -> ClientRecord {
        let valid = client.validate().unwrap();
        ClientRecord {
            id: valid.id,
            secret_hash: None,
            grant_types: valid.grant_types,
            scopes: valid.scopes.tokens().to_vec(),
            refresh_tokens: valid.refresh_tokens,
            refresh_ttl: valid.refresh_ttl,
            max_refreshes: valid.max_refreshes,
            grace_period: valid.grace_period,
            code_flow: valid.code_flow,
            dpop: valid.dpop,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_edit_keeps_what_it_does_not_name_and_is_held_to_the_same_rules() {
        let mut public = new_client("spa");
        public.public = true;
        let current = record(public);
        let kept = ClientChanges {
            scopes: Some("read".into()),
            ..ClientChanges::default()
        }
        .over(&current);
        assert!(kept.public);
        assert_eq!(kept.grant_types, ["password", "refresh_token"]);
        assert_eq!(kept.scopes, "read");
        let refused = ClientChanges {
            grant_types: Some(vec!["authorization_code".into()]),
            ..ClientChanges::default()
        }
        .over(&current)
        .validate();
        assert!(matches!(refused, Err(AdminError::InvalidCodeFlow(_))));
        let refused = ClientChanges {
            pkce_required: Some(false),
            ..ClientChanges::default()
        }
        .over(&current)
        .validate();
        assert!(matches!(refused, Err(AdminError::InvalidCodeFlow(_))));
    }

    #[test]
    fn a_chosen_secret_has_at_least_32_characters() {
        assert_eq!(
            chosen_secret("short".into()).unwrap_err().to_string(),
            "a client secret must be at least 32 characters long"
        );
        assert!(chosen_secret("x".repeat(32)).is_ok());
    }
}
