//! The authorization endpoint (RFC 6749 §4.1.1–§4.1.2, OAuth 2.1 §4.1, RFC 9207):
//! which requests are valid, what the person sees next (login, consent, or
//! nothing), and the code sent back. Nothing here knows HTML or HTTP; the pages
//! are `http::authorize`'s.
//!
//! A request is validated in the order RFC 6749 §4.1.2.1 implies: first the client
//! and its redirect URI, whose errors are shown to the person and never redirected
//! (an attacker could otherwise bounce them anywhere), then everything else, whose
//! errors go back to the client's verified redirect URI with `state` and `iss`.
//!
//! The request travels through the login and consent pages as the query string it
//! arrived with, and is validated again from scratch on every step: nothing the
//! browser sends back is trusted more than the first request was.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    GrantContext, GrantType, OAuthError, Params, Scope, audit::Audit,
    credentials::verify_credentials, dpop, pkce::CodeChallenge, redirect,
};
use crate::{
    config::Settings,
    crypto::{
        password::Password,
        token::{AuthorizationCode, SessionToken},
    },
    store::{
        AuditKind, BrowserSessionRecord, ClientRecord, Consent, NewAuthorizationCode,
        NewBrowserSession, Outcome, Pkce,
    },
};

/// The scope that asks for refresh tokens that outlive the browser session
/// (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The `prompt` values rotor honours (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `login`: ask for the password even with a live session.
    pub login: bool,
    /// `none`: show nothing; fail when a page would be needed.
    pub none: bool,
    /// `consent`: ask for consent even when it was given before.
    pub consent: bool,
}

impl Prompt {
    fn parse(text: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut prompt = Prompt::default();
        for value in text
            .unwrap_or_default()
            .split(' ')
            .filter(|v| !v.is_empty())
        {
            match value {
                "login" => prompt.login = true,
                "none" => prompt.none = true,
                "consent" => prompt.consent = true,
                // `select_account` has one account to select here.
                "select_account" => {}
                _ => {
                    return Err(OAuthError::InvalidRequest(
                        "prompt must be login, none, consent or select_account".into(),
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(OAuthError::InvalidRequest(
                "prompt=none cannot be combined with another value".into(),
            ));
        }
        Ok(prompt)
    }
}

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: ClientRecord,
    /// The redirect URI the answer goes to: the one sent, or the only one
    /// registered.
    pub redirect_uri: String,
    /// Whether the request named it (then the code exchange must, RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    /// What the client gets if the person agrees.
    pub scope: Scope,
    pub state: Option<String>,
    pub challenge: Option<CodeChallenge>,
    pub prompt: Prompt,
    /// A username to fill in on the login page.
    pub login_hint: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    /// The request as it arrived (its query string), carried by the pages.
    pub raw: String,
}

impl AuthorizationRequest {
    /// Whether `offline_access` is asked for (and so granted, if the person agrees).
    pub fn offline(&self) -> bool {
        self.scope.tokens().iter().any(|t| t == OFFLINE_ACCESS)
    }

    /// The redirect carrying `error` back to the client (RFC 6749 §4.1.2.1, with
    /// `iss` per RFC 9207 §2).
    pub fn error_redirect(&self, settings: &Settings, error: &OAuthError) -> String {
        let description = error.description();
        let mut params = vec![("error", error.code()), ("error_description", &description)];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params.push(("iss", &settings.tokens.issuer));
        redirect::with_params(&self.redirect_uri, params)
    }
}

/// Why a request was refused, and where the answer goes.
#[derive(Debug)]
pub enum Refusal {
    /// The client or redirect URI could not be verified: tell the person, never
    /// redirect (RFC 6749 §4.1.2.1). The text is safe to show.
    Page(String),
    /// The error goes back to the client at this location.
    Redirect(String),
}

/// What the person sees next.
#[derive(Debug)]
pub enum Step {
    /// The login page.
    Login,
    /// The consent page.
    Consent,
    /// Back to the client, at this location (a code or an error).
    Redirect(String),
}

/// Validates an authorization request.
///
/// # Errors
/// A [`Refusal`]: a page for an unknown client or an unverified redirect URI, a
/// redirect to the client for anything else.
pub async fn validate(
    ctx: &GrantContext<'_>,
    params: &Params,
    raw: String,
) -> Result<AuthorizationRequest, Refusal> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Refusal::Page(
            "The request names no client (client_id).".into(),
        ));
    };
    let client = match ctx.store.find_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(Refusal::Page("The request names an unknown client.".into())),
        Err(e) => return Err(Refusal::Page(unavailable(e.into()))),
    };
    let registered = &client.code_flow.redirect_uris;
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(sent) if registered.iter().any(|r| redirect::matches(r, sent)) => {
            (sent.to_owned(), true)
        }
        Some(_) => {
            return Err(Refusal::Page(
                "The redirect URI is not registered for this client.".into(),
            ));
        }
        // OAuth 2.1 §4.1.1: optional when the client registered exactly one.
        None if registered.len() == 1 => (registered[0].clone(), false),
        None if registered.is_empty() => {
            return Err(Refusal::Page(
                "This client has no redirect URI registered.".into(),
            ));
        }
        None => {
            return Err(Refusal::Page(
                "The request must name its redirect URI (redirect_uri).".into(),
            ));
        }
    };
    let mut request = AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        scope: Scope::default(),
        state: params.get("state").map(str::to_owned),
        challenge: None,
        prompt: Prompt::default(),
        login_hint: params.get("login_hint").map(str::to_owned),
        dpop_jkt: None,
        raw,
    };
    match check(params, &request) {
        Ok((scope, challenge, prompt, dpop_jkt)) => {
            request.scope = scope;
            request.challenge = challenge;
            request.prompt = prompt;
            request.dpop_jkt = dpop_jkt;
            Ok(request)
        }
        Err(e) => Err(Refusal::Redirect(request.error_redirect(ctx.settings, &e))),
    }
}

/// The checks whose errors are redirected, in order.
fn check(
    params: &Params,
    request: &AuthorizationRequest,
) -> Result<(Scope, Option<CodeChallenge>, Prompt, Option<String>), OAuthError> {
    let client = &request.client;
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::UnsupportedResponseType(
                "response_type must be code".into(),
            ));
        }
        None => {
            return Err(OAuthError::InvalidRequest(
                "missing parameter: response_type".into(),
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the authorization_code grant".into(),
        ));
    }
    let challenge = CodeChallenge::from_request(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )?;
    // OAuth 2.1 §4.1.1: PKCE for every public client; rotor asks it of
    // confidential ones too unless the operator relaxed it for that client.
    let pkce_required = client.is_public() || client.code_flow.pkce == Pkce::Required;
    if challenge.is_none() && pkce_required {
        return Err(OAuthError::InvalidRequest(
            "code_challenge is required (PKCE with S256)".into(),
        ));
    }
    let requested = params.get("scope").map(Scope::parse).transpose()?;
    let scope = grantable_scope(client, requested)?;
    let prompt = Prompt::parse(params.get("prompt"))?;
    // RFC 9449 §10: "the JWK SHA-256 Thumbprint ... of the proof-of-possession
    // key" the code is to be bound to.
    let dpop_jkt = match params.get("dpop_jkt") {
        Some(jkt) if dpop::is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(OAuthError::InvalidRequest(
                "dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)".into(),
            ));
        }
        None => None,
    };
    Ok((scope, challenge, prompt, dpop_jkt))
}

/// The scope a request may get: the requested one within the client's scopes (and
/// `offline_access` when the client may ask for it), or all of the client's scopes
/// — without `offline_access` — when none is requested, as the password grant does.
///
/// # Errors
/// `invalid_scope` for a scope the client may not have.
pub fn grantable_scope(
    client: &ClientRecord,
    requested: Option<Scope>,
) -> Result<Scope, OAuthError> {
    let own = Scope::from_stored(&client.scopes);
    let Some(requested) = requested.filter(|s| !s.is_empty()) else {
        return Ok(own);
    };
    let mut allowed = client.scopes.clone();
    if client.code_flow.offline_access {
        allowed.push(OFFLINE_ACCESS.to_owned());
    }
    if requested.is_subset_of(&Scope::from_stored(&allowed)) {
        Ok(requested)
    } else if requested.tokens().iter().any(|t| t == OFFLINE_ACCESS)
        && !client.code_flow.offline_access
    {
        Err(OAuthError::InvalidScope(
            "this client may not ask for offline_access".into(),
        ))
    } else {
        Err(OAuthError::InvalidScope(
            "the requested scope exceeds the scope of this client".into(),
        ))
    }
}

/// Whether `session` still signs its person in: not ended, its user enabled, under
/// its absolute lifetime and its idle timeout.
pub fn is_live(session: &BrowserSessionRecord, settings: &Settings, now: OffsetDateTime) -> bool {
    session.ended_at.is_none()
        && !session.user_disabled
        && now < session.expires_at
        && now < session.last_seen_at + settings.session.idle_timeout
}

/// The live session a cookie names, if any.
///
/// # Errors
/// The store failed.
pub async fn live_session(
    ctx: &GrantContext<'_>,
    token: Option<&SessionToken>,
    now: OffsetDateTime,
) -> Result<Option<BrowserSessionRecord>, OAuthError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let session = ctx.store.find_session(&token.hash()).await?;
    Ok(session.filter(|s| is_live(s, ctx.settings, now)))
}

/// What comes after a valid request, for a person with `session` (live, or none).
///
/// # Errors
/// The store failed.
pub async fn next_step(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    session: Option<&BrowserSessionRecord>,
    now: OffsetDateTime,
) -> Result<Step, OAuthError> {
    let Some(session) = session.filter(|_| !request.prompt.login) else {
        if request.prompt.none {
            let e = OAuthError::LoginRequired("nobody is signed in".into());
            return Ok(Step::Redirect(request.error_redirect(ctx.settings, &e)));
        }
        return Ok(Step::Login);
    };
    after_login(ctx, request, session, now).await
}

/// What comes once the person is signed in: consent when the client needs it,
/// else the code.
///
/// # Errors
/// The store failed.
pub async fn after_login(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    session: &BrowserSessionRecord,
    now: OffsetDateTime,
) -> Result<Step, OAuthError> {
    if needs_consent(ctx, request, session).await? {
        if request.prompt.none {
            let e = OAuthError::ConsentRequired("the client needs the person's consent".into());
            return Ok(Step::Redirect(request.error_redirect(ctx.settings, &e)));
        }
        return Ok(Step::Consent);
    }
    ctx.store.touch_session(session.id, now).await?;
    issue_code(ctx, request, session, now)
        .await
        .map(Step::Redirect)
}

/// Whether the person must be asked: a third-party client, and no standing consent
/// covering every requested scope (or `prompt=consent`).
async fn needs_consent(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    session: &BrowserSessionRecord,
) -> Result<bool, OAuthError> {
    if request.client.code_flow.consent == Consent::FirstParty {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    let given = ctx
        .store
        .find_consent(session.user_id, &request.client.id)
        .await?;
    Ok(!given.is_some_and(|given| {
        Scope::parse(&given).is_ok_and(|given| request.scope.is_subset_of(&given))
    }))
}

/// Signs a person in at the login page: checks the credentials exactly as the
/// password grant does (same hashing pool, lockout and audit), then starts a
/// browser session. Returns the session's cookie value and record.
///
/// # Errors
/// `invalid_grant` for bad, locked or disabled credentials; `invalid_request` for
/// an over-long username; `temporarily_unavailable` when saturated.
pub async fn sign_in(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    username: &str,
    password: Password,
    now: OffsetDateTime,
) -> Result<(SessionToken, BrowserSessionRecord), OAuthError> {
    let user = verify_credentials(ctx, &request.client.id, username, password, now).await?;
    let token = SessionToken::generate();
    let session = NewBrowserSession {
        id: Uuid::new_v4(),
        hash: token.hash(),
        user_id: user.id,
        created_at: now,
        expires_at: now + ctx.settings.session.max_lifetime,
        ip: ctx.client_ip.map(|ip| ip.to_string()),
    };
    ctx.store.create_session(&session).await?;
    Ok((
        token,
        BrowserSessionRecord {
            id: session.id,
            user_id: user.id,
            username: user.username,
            user_disabled: false,
            created_at: now,
            last_seen_at: now,
            expires_at: session.expires_at,
            ended_at: None,
            ip: session.ip.clone(),
        },
    ))
}

/// The person's answer on the consent page: `allow` records the consent and sends
/// a code; a refusal sends `access_denied`.
///
/// # Errors
/// The store failed.
pub async fn answer_consent(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    session: &BrowserSessionRecord,
    allow: bool,
    now: OffsetDateTime,
) -> Result<String, OAuthError> {
    let audit = |outcome| {
        Audit::new(ctx, AuditKind::Consent, outcome, now)
            .username(&session.username)
            .client(&request.client.id)
    };
    if !allow {
        audit(Outcome::Denied).record(ctx).await;
        let e = OAuthError::AccessDenied("the person did not allow the request".into());
        return Ok(request.error_redirect(ctx.settings, &e));
    }
    // The consent covers what was asked now and what was allowed before.
    let before = ctx
        .store
        .find_consent(session.user_id, &request.client.id)
        .await?
        .and_then(|s| Scope::parse(&s).ok())
        .unwrap_or_default();
    let mut all = before.tokens().to_vec();
    all.extend(request.scope.tokens().iter().cloned());
    let all = Scope::from_stored(&all);
    ctx.store
        .grant_consent(session.user_id, &request.client.id, &all.to_string(), now)
        .await?;
    audit(Outcome::Success).record(ctx).await;
    ctx.store.touch_session(session.id, now).await?;
    issue_code(ctx, request, session, now).await
}

/// Stores a fresh code for `request` and `session` and returns the redirect that
/// carries it, with `state` and `iss` (RFC 6749 §4.1.2, RFC 9207 §2).
async fn issue_code(
    ctx: &GrantContext<'_>,
    request: &AuthorizationRequest,
    session: &BrowserSessionRecord,
    now: OffsetDateTime,
) -> Result<String, OAuthError> {
    let code = AuthorizationCode::generate();
    ctx.store
        .create_code(&NewAuthorizationCode {
            hash: code.hash(),
            client_id: request.client.id.clone(),
            user_id: session.user_id,
            session_id: session.id,
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_sent: request.redirect_uri_sent,
            code_challenge: request.challenge.as_ref().map(|c| c.as_str().to_owned()),
            scope: request.scope.to_string(),
            offline: request.offline(),
            dpop_jkt: request.dpop_jkt.clone(),
            created_at: now,
            expires_at: now + ctx.settings.authorize.code_ttl,
        })
        .await?;
    let mut params = vec![("code", code.expose())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", &ctx.settings.tokens.issuer));
    Ok(redirect::with_params(&request.redirect_uri, params))
}

/// Ends the browser session `token` names (logout), and with it every family born
/// from it that is not offline. Returns whether a live session ended.
///
/// # Errors
/// The store failed.
pub async fn sign_out(
    ctx: &GrantContext<'_>,
    token: &SessionToken,
    now: OffsetDateTime,
) -> Result<bool, OAuthError> {
    let Some(session) = ctx.store.find_session(&token.hash()).await? else {
        return Ok(false);
    };
    let ended = ctx.store.end_session(session.id, now).await?;
    if ended {
        Audit::new(ctx, AuditKind::Logout, Outcome::Success, now)
            .username(&session.username)
            .record(ctx)
            .await;
    }
    Ok(ended)
}

/// The text of a page for a store that cannot be reached.
fn unavailable(e: OAuthError) -> String {
    tracing::warn!(error = %e, "authorization request could not be checked");
    "The server cannot check this request right now; try again shortly.".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CodeFlowSettings;

    fn client(offline: bool) -> ClientRecord {
        ClientRecord {
            id: "spa".into(),
            secret_hash: None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: vec!["read".into(), "write".into()],
            refresh_tokens: true,
            refresh_ttl: None,
            max_refreshes: None,
            grace_period: None,
            code_flow: CodeFlowSettings {
                offline_access: offline,
                ..CodeFlowSettings::default()
            },
            dpop: Default::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn without_a_scope_the_flow_grants_the_clients_scopes_but_not_offline_access() {
        let granted = grantable_scope(&client(true), None).unwrap();
        assert_eq!(granted.to_string(), "read write");
        let offline = grantable_scope(
            &client(true),
            Some(Scope::parse("read offline_access").unwrap()),
        )
        .unwrap();
        assert_eq!(offline.to_string(), "read offline_access");
    }

    #[test]
    fn offline_access_needs_the_clients_switch() {
        let err = grantable_scope(
            &client(false),
            Some(Scope::parse("offline_access").unwrap()),
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
        let err = grantable_scope(&client(true), Some(Scope::parse("admin").unwrap())).unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse(Some("none")).unwrap().none);
        let both = Prompt::parse(Some("login consent")).unwrap();
        assert!(both.login && both.consent);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("sometimes")).is_err());
    }

    fn session(now: OffsetDateTime) -> BrowserSessionRecord {
        BrowserSessionRecord {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            username: "alice".into(),
            user_disabled: false,
            created_at: now,
            last_seen_at: now,
            expires_at: now + time::Duration::hours(10),
            ended_at: None,
            ip: None,
        }
    }

    #[test]
    fn a_session_dies_idle_at_its_end_or_when_ended() {
        let settings = Settings::load(None).unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let s = session(t0);
        assert!(is_live(&s, &settings, t0 + time::Duration::minutes(29)));
        assert!(!is_live(&s, &settings, t0 + time::Duration::minutes(30)));
        let active = BrowserSessionRecord {
            last_seen_at: t0 + time::Duration::hours(9) + time::Duration::minutes(50),
            ..s.clone()
        };
        assert!(is_live(
            &active,
            &settings,
            t0 + time::Duration::hours(9) + time::Duration::minutes(55)
        ));
        assert!(!is_live(&active, &settings, t0 + time::Duration::hours(10)));
        let ended = BrowserSessionRecord {
            ended_at: Some(t0),
            ..s.clone()
        };
        assert!(!is_live(&ended, &settings, t0));
        let disabled = BrowserSessionRecord {
            user_disabled: true,
            ..s
        };
        assert!(!is_live(&disabled, &settings, t0));
    }
}
