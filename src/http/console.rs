//! The admin console (`/admin/`): server-rendered pages over `crate::admin`, the
//! same rules and messages as the CLI and the admin API.
//!
//! The console is a first-party client of rotor itself (`rotor-console`, see
//! [`admin::console`]): `GET /admin/` without a console session redirects to
//! `/oauth2/authorize` with a state and an S256 challenge, kept with the verifier
//! in a short-lived cookie; `GET /admin/callback` checks `state` and `iss` (RFC
//! 9207), redeems the code in-process, and keeps the access token in the console
//! session cookie (`HttpOnly`, `SameSite=Strict`, path `/admin`). Every page
//! authenticates that token as the admin API does
//! ([`authenticate_admin`]). Every form carries a token keyed by the session
//! cookie (`crypto::csrf`), bound to the form's action and the time it was shown.
//! No page runs script; the headers are those of every page ([`pages::secure`]).

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    body::Bytes,
    extract::{FromRequestParts, Path, RawQuery, State, rejection::PathRejection},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{
    AppState, Routes,
    admin_api::{audited, audited_revocation},
    extract::{CookieJar, Cookies},
    pages::{self, MessagePage, Page, Redirect, WebError},
};
use crate::{
    admin::{self, AdminError, clients, families, keys, users},
    crypto::{
        csrf,
        token::{AuthorizationCode, generate_form_key},
    },
    oauth::{
        AuthenticatedClient, GrantReport, Params,
        bearer::{self, ADMIN_SCOPE, Actor, AdminRefusal, BearerError, authenticate_admin},
        grant::authorization_code,
        request::syntax,
    },
    store::{
        AuditEvent, AuditFilter, AuditKind, ClientRecord, CodeFlowSettings, Consent,
        DpopClientSettings, FamilyRecord, Outcome, Pkce, StoreError,
    },
    wire::GrantType,
};

/// The purpose every console form token is bound to (with the form's action).
const PURPOSE: &str = "console";

/// The console's stylesheet.
const STYLESHEET: &str = include_str!("../../assets/console.css");

/// The console's routes.
pub fn router() -> Routes {
    Routes::new()
        .get("/admin/", get_overview)
        .get("/admin/callback", get_callback)
        .post("/admin/logout", post_logout)
        .get("/admin/assets/console.css", stylesheet)
        .get_post("/admin/clients", get_clients, post_clients)
        .post("/admin/clients/delete", post_delete_client)
        .get_post("/admin/clients/edit", get_client, post_edit_client)
        .post("/admin/clients/secret", post_client_secret)
        .post("/admin/clients/revoke-logins", post_revoke_client_logins)
        .get_post("/admin/users", get_users, post_users)
        .post("/admin/users/update", post_update_user)
        .post("/admin/users/password", post_reset_password)
        .post("/admin/users/revoke-logins", post_revoke_user_logins)
        .get("/admin/families", get_families)
        .post("/admin/families/revoke", post_revoke_family)
        .get("/admin/families/{family_id}", get_family)
        .post("/admin/sessions/end", post_end_session)
        .get_post("/admin/settings", get_settings, post_settings)
        .get_post("/admin/lookup", get_lookup, post_lookup)
        .get("/admin/keys", get_keys)
        .post("/admin/keys/rotate", post_rotate_key)
        .get("/admin/audit", get_audit)
        .get("/admin/audit/export", get_audit_export)
}

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    pages::secure(headers);
    response
}

/// The console's cookies, for where the console is reached (`console.url` on a
/// listener of its own, else the issuer).
fn jar(state: &AppState) -> CookieJar {
    let settings = state.settings();
    CookieJar::for_issuer(settings.console.base_url(&settings.tokens.issuer))
}

/// Where the console is reached, and so where its redirect URI points.
fn console_base(state: &AppState) -> String {
    let settings = state.settings();
    settings
        .console
        .base_url(&settings.tokens.issuer)
        .to_owned()
}

// --- the console session -----------------------------------------------------

/// An admin signed in to the console: who, and the session cookie's token (the
/// key of the page's form tokens).
pub struct Console {
    actor: Actor,
    token: String,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(cookies) = Cookies::from_request_parts(parts, state).await;
        let jar = jar(state);
        let post = parts.method == Method::POST;
        let Some(token) = cookies.get_token(jar.console_session_name()) else {
            return Err(signed_out(state, post).await);
        };
        let report = GrantReport::default();
        let settings = state.settings();
        let ctx = state.grant_context(&settings, &report);
        match authenticate_admin(&ctx, token, state.clock.now()).await {
            Ok(actor) => Ok(Console {
                actor,
                token: token.to_owned(),
            }),
            Err(AdminRefusal::Forbidden(_)) => Err(not_an_admin()),
            Err(AdminRefusal::Bearer(BearerError::Server(e))) => {
                Err(WebError::from(e).into_response())
            }
            // Expired or revoked: sign in again.
            Err(AdminRefusal::Bearer(_)) => {
                let mut response = signed_out(state, post).await;
                if let Ok(value) = HeaderValue::from_str(&clear_session(state)) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(response)
            }
        }
    }
}

fn not_an_admin() -> Response {
    WebError::forbidden("The console is for admins. Ask an admin to grant you the admin role.")
        .into_response()
}

fn clear_session(state: &AppState) -> String {
    let jar = jar(state);
    jar.set_console(jar.console_session_name(), "", "Strict", Some(0))
}

/// Without a session: a page starts the login, a form goes back to the console
/// (a form never starts a login: it could not be resubmitted after it).
async fn signed_out(state: &AppState, post: bool) -> Response {
    if post {
        Redirect::see_other("/admin/".into()).into_response()
    } else {
        start_login(state).await
    }
}

/// Redirects to rotor's authorization endpoint with a fresh state and PKCE
/// challenge (RFC 7636 §4.1–4.3, S256), which the login cookie keeps.
async fn start_login(state: &AppState) -> Response {
    let settings = state.settings();
    let base = console_base(state);
    if let Err(e) =
        admin::console::ensure_client(state.store.as_ref(), &base, state.clock.now()).await
    {
        return web_error(e).into_response();
    }
    let login_state = generate_form_key();
    let verifier = generate_form_key();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", admin::console::CLIENT_ID)
        .append_pair("redirect_uri", &admin::console::redirect_uri(&base))
        .append_pair("scope", ADMIN_SCOPE)
        .append_pair("state", &login_state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let jar = jar(state);
    // Lax: the way back from the login page is a redirect the browser follows
    // as a navigation, which Strict could leave without the cookie.
    let cookie = jar.set_console(
        jar.console_login_name(),
        &format!("{login_state}.{verifier}"),
        "Lax",
        Some(state.settings().authorize.page_ttl.as_secs()),
    );
    // On a listener of its own, the console sends the browser to the issuer's
    // sign-in; on the main one, a relative address does.
    let authorize = if settings.console.bind.is_some() {
        format!(
            "{}/oauth2/authorize",
            settings.tokens.issuer.trim_end_matches('/')
        )
    } else {
        "/oauth2/authorize".to_owned()
    };
    Redirect::found(format!("{authorize}?{query}"))
        .with_cookie(cookie)
        .into_response()
}

/// The end of the login: checks the state and the issuer, redeems the code, and
/// starts the console session, for admins only.
async fn get_callback(
    State(state): State<AppState>,
    cookies: Cookies,
    RawQuery(query): RawQuery,
) -> Response {
    let jar = jar(&state);
    let clear_login = jar.set_console(jar.console_login_name(), "", "Lax", Some(0));
    let refuse = |message: &str| {
        WebError::bad_request(message)
            .page()
            .with_cookie(clear_login.clone())
            .into_response()
    };
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let pending = cookies
        .get_token(jar.console_login_name())
        .and_then(|v| v.split_once('.'));
    let Some((expected_state, verifier)) = pending else {
        return refuse(
            "This sign-in did not start here, or took too long. Open the console again.",
        );
    };
    let presented_state = params.get("state").map_or("", String::as_str);
    if !bool::from(presented_state.as_bytes().ct_eq(expected_state.as_bytes())) {
        return refuse("This sign-in did not start here. Open the console again.");
    }
    // RFC 9207 §2.4: the client MUST compare `iss` with the issuer it expects.
    let settings = state.settings();
    let issuer = &settings.tokens.issuer;
    if params.get("iss") != Some(issuer) {
        return refuse("The sign-in answer came from another server.");
    }
    if params.contains_key("error") {
        return refuse("The sign-in was refused. Open the console again.");
    }
    let Some(code) = params.get("code") else {
        return refuse("The sign-in answer has no code.");
    };
    let now = state.clock.now();
    let base = console_base(&state);
    let client = match admin::console::ensure_client(state.store.as_ref(), &base, now).await {
        Ok(client) => client,
        Err(e) => return web_error(e).into_response(),
    };
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    let answer = authorization_code::grant(
        &ctx,
        &AuthenticatedClient(client),
        authorization_code::Exchange {
            code: AuthorizationCode::parse(code.clone()),
            redirect_uri: Some(admin::console::redirect_uri(&base)),
            code_verifier: Some(verifier.to_owned()),
        },
        None,
        now,
    )
    .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            return WebError::from(e)
                .page()
                .with_cookie(clear_login)
                .into_response();
        }
    };
    match authenticate_admin(&ctx, &answer.access_token, now).await {
        Ok(_) => {
            let session = jar.set_console(
                jar.console_session_name(),
                &answer.access_token,
                "Strict",
                Some(answer.expires_in),
            );
            Redirect::found("/admin/".into())
                .with_cookie(clear_login)
                .with_cookie(session)
                .into_response()
        }
        Err(AdminRefusal::Forbidden(_)) => {
            // The login is of no use to anyone: end it.
            end_login(&state, &answer.access_token, now).await;
            let mut response = not_an_admin();
            if let Ok(value) = HeaderValue::from_str(&clear_login) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(AdminRefusal::Bearer(BearerError::Server(e))) => WebError::from(e).into_response(),
        Err(AdminRefusal::Bearer(_)) => WebError::internal().into_response(),
    }
}

/// Revokes the family of the console's access token `token`, if it has one.
async fn end_login(state: &AppState, token: &str, now: OffsetDateTime) {
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    let Ok(claims) = bearer::authenticate(&ctx, token, now, false).await else {
        return;
    };
    let Ok(jti) = uuid::Uuid::parse_str(&claims.jti) else {
        return;
    };
    match state.store.find_access_token(jti).await {
        Ok(Some(record)) => {
            if let Err(e) = state.store.revoke_family(record.family_id, now).await {
                tracing::error!(error = %e, "revoking the console login failed");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "finding the console login failed"),
    }
}

/// Ends the console session: the cookie, and the login behind it. The browser
/// session at rotor stays (`/oauth2/logout` ends it).
async fn post_logout(State(state): State<AppState>, cookies: Cookies, body: Bytes) -> Response {
    let jar = jar(&state);
    let Some(token) = cookies.get_token(jar.console_session_name()) else {
        return Redirect::see_other("/admin/".into()).into_response();
    };
    let now = state.clock.now();
    if let Err(e) = checked_form(&state, token, "/admin/logout", &body, now) {
        return e.into_response();
    }
    end_login(&state, token, now).await;
    Page::render(
        StatusCode::OK,
        &MessagePage {
            title: "Signed out",
            message: "You are signed out of the console. Sign out of rotor at /oauth2/logout.",
            is_error: false,
        },
    )
    .with_cookie(clear_session(&state))
    .into_response()
}

// --- forms and queries -------------------------------------------------------

/// What a page needs to sign its forms.
pub struct Csrf {
    key: String,
    pub issued: i64,
}

impl Csrf {
    fn of(console: &Console, now: OffsetDateTime) -> Csrf {
        Csrf {
            key: console.token.clone(),
            issued: now.unix_timestamp(),
        }
    }

    /// The token of the form posting to `action`.
    pub fn token(&self, action: &str) -> String {
        csrf::token(&self.key, PURPOSE, self.issued, action)
    }
}

/// A posted form whose token is the one for `action` under the session `key`,
/// shown within `authorize.page_ttl`.
fn checked_form(
    state: &AppState,
    key: &str,
    action: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Params, WebError> {
    let mut form = Params::from_form(body).map_err(WebError::from)?;
    let Some(issued) = super::pages::fresh_issue_time(&state.settings(), form.get("issued"), now)
    else {
        return Err(WebError::stale_form());
    };
    let presented = form.take("csrf_token").unwrap_or_default();
    if !csrf::verify(key, PURPOSE, issued, action, &presented) {
        return Err(WebError::stale_form());
    }
    Ok(form)
}

/// The query string of a page, first value of each name; a control character is
/// refused (no name or id holds one).
fn query_params(query: Option<&str>) -> Result<BTreeMap<String, String>, WebError> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.chars().any(syntax::is_control) || name.chars().any(syntax::is_control) {
            return Err(WebError::bad_request(
                "The address contains a control character.",
            ));
        }
        params
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    Ok(params)
}

/// A form's text field, trimmed; empty when missing.
fn field(form: &mut Params, name: &str) -> String {
    form.take(name).unwrap_or_default().trim().to_owned()
}

fn checked(form: &Params, name: &str) -> bool {
    form.get(name).is_some_and(|v| !v.is_empty())
}

fn web_error(e: AdminError) -> WebError {
    match e {
        AdminError::NoSuchClient(_)
        | AdminError::NoSuchUser(_)
        | AdminError::NoSuchFamily
        | AdminError::NoSuchSession => WebError::not_found(e.to_string()),
        AdminError::Store(StoreError::Unavailable(_)) => WebError::unavailable(),
        AdminError::Store(other) => {
            tracing::error!(error = %other, "console request failed");
            WebError::internal()
        }
        AdminError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "console request failed");
            WebError::internal()
        }
        other => WebError::bad_request(other.to_string()),
    }
}

fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        t.date(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn render(status: StatusCode, template: &impl Template) -> Response {
    Page::render(status, template).into_response()
}

/// A page built from the store, or the error page of why it could not be.
fn rendered(status: StatusCode, page: Result<impl Template, AdminError>) -> Response {
    match page {
        Ok(page) => render(status, &page),
        Err(e) => web_error(e).into_response(),
    }
}

// --- overview ----------------------------------------------------------------

/// One audit event as the pages show it.
pub struct AuditRow {
    pub at: String,
    pub kind: &'static str,
    pub outcome: &'static str,
    pub username: String,
    pub client_id: String,
    pub family_id: String,
    pub target: String,
}

impl AuditRow {
    fn of(e: AuditEvent) -> AuditRow {
        AuditRow {
            at: when(e.at),
            kind: e.kind.as_str(),
            outcome: e.outcome.as_str(),
            username: e.username.unwrap_or_default(),
            client_id: e.client_id.unwrap_or_default(),
            family_id: e.family_id.map(|id| id.to_string()).unwrap_or_default(),
            target: e.target.unwrap_or_default(),
        }
    }
}

/// One line of the overview's counts.
pub struct CountRow {
    pub what: &'static str,
    pub hour: u64,
    pub day: u64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    actor: String,
    csrf: Csrf,
    clients: usize,
    users: usize,
    live_logins: u64,
    counts: Vec<CountRow>,
    keys: Vec<KeyRow>,
    instances: Vec<InstanceRow>,
    events: Vec<AuditRow>,
}

/// A running instance on the overview.
pub struct InstanceRow {
    pub name: String,
    pub version: String,
    pub started: String,
    pub seen: String,
    pub signing_kid: String,
}

async fn get_overview(State(state): State<AppState>, console: Console) -> Response {
    rendered(StatusCode::OK, overview(&state, &console).await)
}

async fn overview(state: &AppState, console: &Console) -> Result<OverviewPage, AdminError> {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let o = admin::overview::overview(store, now).await?;
    let events = store
        .audit_events(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await?;
    let (h, d) = (o.last_hour, o.last_day);
    let row = |what, hour, day| CountRow { what, hour, day };
    Ok(OverviewPage {
        actor: console.actor.name().to_owned(),
        csrf: Csrf::of(console, now),
        clients: o.clients,
        users: o.users,
        live_logins: o.live_logins,
        counts: vec![
            row("logins", h.logins, d.logins),
            row("refreshes", h.refreshes, d.refreshes),
            row("reuse detections", h.reuse_detections, d.reuse_detections),
            row("lockouts", h.lockouts, d.lockouts),
            row("refused sign-ins", h.failed_logins, d.failed_logins),
        ],
        keys: o.keys.into_iter().map(KeyRow::of).collect(),
        instances: o
            .instances
            .into_iter()
            .map(|i| InstanceRow {
                name: i.name,
                version: i.version,
                started: when(i.started_at),
                seen: when(i.seen_at),
                signing_kid: i.signing_kid.unwrap_or_default(),
            })
            .collect(),
        events: events.into_iter().map(AuditRow::of).collect(),
    })
}

// --- clients -----------------------------------------------------------------

pub struct ClientRow {
    pub id: String,
    /// `/admin/clients/edit?client_id=ID`, encoded.
    pub link: String,
    pub kind: &'static str,
    pub grants: String,
    pub scopes: String,
    pub redirect_uris: String,
    pub refresh_tokens: bool,
    pub offline_access: bool,
    pub third_party: bool,
    /// RFC 9449 §5.2: its token requests must carry a DPoP proof.
    pub dpop_required: bool,
    pub created: String,
}

/// What a client form held, shown again when it was refused.
#[derive(Default)]
pub struct ClientForm {
    pub client_id: String,
    pub public: bool,
    pub scopes: String,
    pub redirect_uris: String,
}

/// A client just created: its secret, shown this once.
pub struct Created {
    pub id: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage {
    actor: String,
    csrf: Csrf,
    clients: Vec<ClientRow>,
    /// The address of the next page, when there is one.
    next: Option<String>,
    error: Option<String>,
    created: Option<Created>,
    form: ClientForm,
}

/// The clients page, listing the page of clients that starts after `after`
/// (the first page when `None`).
async fn clients_page(
    state: &AppState,
    console: &Console,
    after: Option<String>,
    error: Option<String>,
    created: Option<Created>,
    form: ClientForm,
) -> Result<ClientsPage, AdminError> {
    let page = admin::lists::Query {
        after,
        ..admin::lists::Query::default()
    }
    .page()?;
    let clients = clients::page(state.store.as_ref(), &page).await?;
    Ok(ClientsPage {
        actor: console.actor.name().to_owned(),
        csrf: Csrf::of(console, state.clock.now()),
        clients: clients.items.iter().map(client_row).collect(),
        next: clients
            .next
            .map(|id| page_address("/admin/clients", None, &id)),
        error,
        created,
        form,
    })
}

async fn get_clients(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let after = match query_params(query.as_deref()) {
        Ok(mut params) => params.remove("after"),
        Err(e) => return e.into_response(),
    };
    rendered(
        StatusCode::OK,
        clients_page(&state, &console, after, None, None, ClientForm::default()).await,
    )
}

/// The grant checkboxes of the client form, by grant.
const GRANTS: [GrantType; 4] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::Password,
    GrantType::ClientCredentials,
];

async fn post_clients(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/clients", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let public = match form.get("type") {
        Some("public") => true,
        Some("confidential") => false,
        _ => {
            return refused_client(
                &state,
                &console,
                "Choose public or confidential.".into(),
                ClientForm::default(),
            )
            .await;
        }
    };
    let grant_types: Vec<String> = GRANTS
        .iter()
        .filter(|g| checked(&form, &format!("grant_{}", g.as_str())))
        .map(|g| g.as_str().to_owned())
        .collect();
    let offline_access = checked(&form, "offline_access");
    let third_party = checked(&form, "third_party");
    let dpop_required = checked(&form, "dpop_required");
    let shown = ClientForm {
        client_id: field(&mut form, "client_id"),
        public,
        scopes: field(&mut form, "scopes"),
        redirect_uris: field(&mut form, "redirect_uris"),
    };
    if grant_types.is_empty() {
        return refused_client(&state, &console, "Choose at least one grant.".into(), shown).await;
    }
    let valid = clients::NewClient {
        id: shown.client_id.clone(),
        refresh_tokens: grant_types
            .iter()
            .any(|g| g == GrantType::RefreshToken.as_str()),
        grant_types,
        scopes: shown.scopes.clone(),
        refresh_ttl: None,
        max_refreshes: None,
        grace_period: None,
        public,
        code_flow: CodeFlowSettings {
            redirect_uris: shown
                .redirect_uris
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            consent: if third_party {
                Consent::ThirdParty
            } else {
                Consent::FirstParty
            },
            pkce: Pkce::Required,
            offline_access,
            offline_ttl: None,
            refresh_requires_offline: false,
        },
        dpop: DpopClientSettings {
            bound_access_tokens: dpop_required,
            require_nonce: None,
        },
    }
    .validate();
    let valid = match valid {
        Ok(valid) => valid,
        Err(e) => return refused_client(&state, &console, e.to_string(), shown).await,
    };
    let secret = (!public).then(clients::generate_secret);
    let record = match clients::create(state.store.as_ref(), valid, secret.as_ref(), now).await {
        Ok(record) => record,
        Err(e @ AdminError::ClientExists(_)) => {
            return refused_client(&state, &console, e.to_string(), shown).await;
        }
        Err(e) => return web_error(e).into_response(),
    };
    audited(&state, &console.actor, format!("client {}", record.id), now).await;
    let created = Created {
        id: record.id.clone(),
        secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
    };
    match clients_page(
        &state,
        &console,
        None,
        None,
        Some(created),
        ClientForm::default(),
    )
    .await
    {
        Ok(page) => render(StatusCode::CREATED, &page),
        Err(e) => web_error(e).into_response(),
    }
}

async fn refused_client(
    state: &AppState,
    console: &Console,
    message: String,
    form: ClientForm,
) -> Response {
    rendered(
        StatusCode::BAD_REQUEST,
        clients_page(state, console, None, Some(message), None, form).await,
    )
}

async fn post_delete_client(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/clients/delete", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let id = form.take("client_id").unwrap_or_default();
    if let Err(e) = clients::remove(state.store.as_ref(), &id).await {
        return web_error(e).into_response();
    }
    audited(&state, &console.actor, format!("client {id}"), now).await;
    Redirect::see_other("/admin/clients".into()).into_response()
}

/// The edit page of one client.
#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage {
    actor: String,
    csrf: Csrf,
    client: ClientRow,
    edit: ClientEdit,
    grants: Vec<GrantBox>,
    error: Option<String>,
    /// A secret just generated, shown this once.
    secret: Option<String>,
    /// How many logins a "revoke all" just ended.
    revoked: Option<u64>,
}

/// One grant checkbox of the edit form.
pub struct GrantBox {
    pub name: &'static str,
    pub checked: bool,
}

/// The edit form's values: the client's settings as text.
pub struct ClientEdit {
    pub scopes: String,
    pub redirect_uris: String,
    pub refresh_tokens: bool,
    pub refresh_ttl: String,
    pub max_refreshes: String,
    pub grace_period: String,
    pub pkce_required: bool,
    pub offline_access: bool,
    pub offline_ttl: String,
    pub refresh_requires_offline: bool,
    pub third_party: bool,
    pub dpop_required: bool,
    /// The client's nonce rule (RFC 9449 §8), one of [`DPOP_NONCE_CHOICES`].
    pub dpop_nonce: &'static str,
}

/// The choices of the edit form's DPoP nonce rule: the server's
/// `dpop.require_nonce`, or this client's own.
pub const DPOP_NONCE_CHOICES: [(&str, Option<bool>); 3] = [
    ("server", None),
    ("required", Some(true)),
    ("not_required", Some(false)),
];

fn dpop_nonce_choice(rule: Option<bool>) -> &'static str {
    DPOP_NONCE_CHOICES
        .iter()
        .find(|(_, r)| *r == rule)
        .map_or("server", |(name, _)| name)
}

fn client_row(c: &ClientRecord) -> ClientRow {
    ClientRow {
        kind: if c.is_public() {
            "public"
        } else {
            "confidential"
        },
        grants: c
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        scopes: c.scopes.join(" "),
        redirect_uris: c.code_flow.redirect_uris.join(" "),
        refresh_tokens: c.refresh_tokens,
        offline_access: c.code_flow.offline_access,
        third_party: c.code_flow.consent == Consent::ThirdParty,
        dpop_required: c.dpop.bound_access_tokens,
        created: when(c.created_at),
        link: client_link(&c.id),
        id: c.id.clone(),
    }
}

async fn client_page(
    state: &AppState,
    console: &Console,
    id: &str,
    error: Option<String>,
    secret: Option<String>,
    revoked: Option<u64>,
) -> Result<ClientPage, AdminError> {
    let c = state
        .store
        .find_client(id)
        .await?
        .ok_or_else(|| AdminError::NoSuchClient(id.to_owned()))?;
    let text = |d: Option<std::time::Duration>| {
        d.map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_default()
    };
    Ok(ClientPage {
        actor: console.actor.name().to_owned(),
        csrf: Csrf::of(console, state.clock.now()),
        grants: GRANTS
            .iter()
            .map(|g| GrantBox {
                name: g.as_str(),
                checked: c.grant_types.contains(g),
            })
            .collect(),
        edit: ClientEdit {
            scopes: c.scopes.join(" "),
            redirect_uris: c.code_flow.redirect_uris.join(" "),
            refresh_tokens: c.refresh_tokens,
            refresh_ttl: text(c.refresh_ttl),
            max_refreshes: c.max_refreshes.map(|m| m.to_string()).unwrap_or_default(),
            grace_period: text(c.grace_period),
            pkce_required: c.code_flow.pkce == Pkce::Required,
            offline_access: c.code_flow.offline_access,
            offline_ttl: text(c.code_flow.offline_ttl),
            refresh_requires_offline: c.code_flow.refresh_requires_offline,
            third_party: c.code_flow.consent == Consent::ThirdParty,
            dpop_required: c.dpop.bound_access_tokens,
            dpop_nonce: dpop_nonce_choice(c.dpop.require_nonce),
        },
        client: client_row(&c),
        error,
        secret,
        revoked,
    })
}

/// `GET /admin/clients/edit?client_id=ID`: the client's page. The id is in the
/// query, so that no client id is mistaken for one of the page's actions.
async fn get_client(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let Some(id) = params.get("client_id") else {
        return WebError::bad_request("Choose a client on the clients page.").into_response();
    };
    rendered(
        StatusCode::OK,
        client_page(&state, &console, id, None, None, None).await,
    )
}

/// The edit form as [`clients::ClientChanges`]: every field is sent, so every
/// field is a change; an empty lifetime or limit is the server's.
fn client_changes(form: &mut Params) -> Result<clients::ClientChanges, AdminError> {
    let grant_types = GRANTS
        .iter()
        .filter(|g| checked(form, &format!("grant_{}", g.as_str())))
        .map(|g| g.as_str().to_owned())
        .collect();
    let bools = |form: &Params, name: &str| Some(checked(form, name));
    Ok(clients::ClientChanges {
        grant_types: Some(grant_types),
        refresh_tokens: bools(form, "refresh_tokens"),
        pkce_required: bools(form, "pkce_required"),
        offline_access: bools(form, "offline_access"),
        refresh_requires_offline: bools(form, "refresh_requires_offline"),
        third_party: bools(form, "third_party"),
        dpop_bound_access_tokens: bools(form, "dpop_required"),
        // A form without the choice leaves the client's rule as it is.
        dpop_require_nonce: match field(form, "dpop_nonce").as_str() {
            "" => None,
            choice => Some(
                DPOP_NONCE_CHOICES
                    .iter()
                    .find(|(name, _)| *name == choice)
                    .map(|(_, rule)| *rule)
                    .ok_or_else(|| {
                        AdminError::InvalidCodeFlow(
                            "DPoP nonces must be server, required or not_required".into(),
                        )
                    })?,
            ),
        },
        scopes: Some(field(form, "scopes")),
        redirect_uris: Some(
            field(form, "redirect_uris")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        ),
        refresh_ttl: Some(clients::optional_duration(
            "--refresh-ttl",
            &field(form, "refresh_ttl"),
        )?),
        grace_period: Some(clients::optional_duration(
            "--grace-period",
            &field(form, "grace_period"),
        )?),
        offline_ttl: Some(clients::optional_duration(
            "--offline-ttl",
            &field(form, "offline_ttl"),
        )?),
        max_refreshes: Some(clients::optional_count(
            "--max-refreshes",
            &field(form, "max_refreshes"),
        )?),
    })
}

async fn post_edit_client(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/clients/edit", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let id = form.take("client_id").unwrap_or_default();
    let result = match client_changes(&mut form) {
        Ok(changes) => clients::update(state.store.as_ref(), &id, changes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            audited(&state, &console.actor, format!("client {id}"), now).await;
            Redirect::see_other(client_link(&id)).into_response()
        }
        Err(e @ (AdminError::NoSuchClient(_) | AdminError::Store(_) | AdminError::Internal(_))) => {
            web_error(e).into_response()
        }
        Err(e) => rendered(
            StatusCode::BAD_REQUEST,
            client_page(&state, &console, &id, Some(e.to_string()), None, None).await,
        ),
    }
}

/// `/admin/clients/edit?client_id=ID`, encoded.
fn client_link(id: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", id)
        .finish();
    format!("/admin/clients/edit?{query}")
}

async fn post_client_secret(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/clients/secret", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let id = form.take("client_id").unwrap_or_default();
    let secret = match clients::regenerate_secret(state.store.as_ref(), &id).await {
        Ok(secret) => secret,
        Err(e) => return web_error(e).into_response(),
    };
    audited(&state, &console.actor, format!("client {id} secret"), now).await;
    let shown = Some(secret.expose().to_owned());
    rendered(
        StatusCode::OK,
        client_page(&state, &console, &id, None, shown, None).await,
    )
}

async fn post_revoke_client_logins(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let action = "/admin/clients/revoke-logins";
    let mut form = match checked_form(&state, &console.token, action, &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let owner = families::Owner::Client(form.take("client_id").unwrap_or_default());
    let revoked = match families::revoke_all(state.store.as_ref(), &owner, now).await {
        Ok(n) => n,
        Err(e) => return web_error(e).into_response(),
    };
    audited(
        &state,
        &console.actor,
        format!("{} families", owner.target()),
        now,
    )
    .await;
    let families::Owner::Client(id) = owner else {
        return WebError::internal().into_response();
    };
    rendered(
        StatusCode::OK,
        client_page(&state, &console, &id, None, None, Some(revoked)).await,
    )
}

// --- users -------------------------------------------------------------------

pub struct UserRow {
    pub username: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: String,
    /// The end of a lockout of the username, while one holds; else empty.
    pub locked_until: String,
    /// `/admin/families?user=…`, encoded.
    pub logins: String,
}

/// A user just created with a generated password, shown this once.
pub struct NewUser {
    pub username: String,
    pub password: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    actor: String,
    csrf: Csrf,
    /// The search typed, if any.
    q: String,
    users: Vec<UserRow>,
    /// The address of the next page, when there is one.
    next: Option<String>,
    error: Option<String>,
    created: Option<NewUser>,
    /// A password just reset, shown this once.
    reset: Option<NewUser>,
    /// What a change just did, for the notice.
    done: Option<String>,
}

/// What a users page shows besides the list.
#[derive(Default)]
struct UsersNotice {
    q: String,
    /// The last name of the page before, from the address's `after`.
    after: Option<String>,
    error: Option<String>,
    created: Option<NewUser>,
    reset: Option<NewUser>,
    done: Option<String>,
}

/// The address of a list's next page: `path?q=Q&after=AFTER`, without an empty `q`.
fn page_address(path: &str, q: Option<&str>, after: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
        query.append_pair("q", q);
    }
    format!("{path}?{}", query.append_pair("after", after).finish())
}

fn families_link(username: &str) -> String {
    families_address(username, None, None)
}

async fn users_page(
    state: &AppState,
    console: &Console,
    notice: UsersNotice,
) -> Result<UsersPage, AdminError> {
    let now = state.clock.now();
    let page = admin::lists::Query {
        q: Some(notice.q.clone()),
        after: notice.after,
        limit: None,
    }
    .page()?;
    let users = users::search(state.store.as_ref(), &page, now).await?;
    Ok(UsersPage {
        actor: console.actor.name().to_owned(),
        csrf: Csrf::of(console, now),
        next: users
            .next
            .map(|name| page_address("/admin/users", Some(&notice.q), &name)),
        users: users
            .items
            .into_iter()
            .map(|u| UserRow {
                logins: families_link(&u.user.username),
                admin: u.user.admin,
                disabled: u.user.disabled,
                created: when(u.user.created_at),
                locked_until: u.locked_until.map(when).unwrap_or_default(),
                username: u.user.username,
            })
            .collect(),
        q: notice.q,
        error: notice.error,
        created: notice.created,
        reset: notice.reset,
        done: notice.done,
    })
}

async fn get_users(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let notice = UsersNotice {
        q: params.get("q").cloned().unwrap_or_default(),
        after: params.get("after").cloned(),
        ..UsersNotice::default()
    };
    rendered(StatusCode::OK, users_page(&state, &console, notice).await)
}

async fn users_notice(state: &AppState, console: &Console, notice: UsersNotice) -> Response {
    rendered(StatusCode::OK, users_page(state, console, notice).await)
}

/// Resets a password: the one typed, or a generated one shown once.
async fn post_reset_password(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/users/password", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let username = form.take("username").unwrap_or_default();
    let typed = form.take("password").unwrap_or_default();
    let result = async {
        let chosen = (!typed.is_empty())
            .then(|| users::NewPassword::parse(typed))
            .transpose()?;
        users::reset_password(state.store.as_ref(), &state.hasher, &username, chosen).await
    }
    .await;
    match result {
        Ok(generated) => {
            audited(
                &state,
                &console.actor,
                format!("user {username} password"),
                now,
            )
            .await;
            let notice = UsersNotice {
                done: Some(format!("The password of {username} is reset.")),
                reset: generated.map(|p| NewUser {
                    username: username.clone(),
                    password: p.expose().to_owned(),
                }),
                ..UsersNotice::default()
            };
            users_notice(&state, &console, notice).await
        }
        Err(e) => web_error(e).into_response(),
    }
}

/// Revokes every login of a user ("sign out everywhere").
async fn post_revoke_user_logins(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let action = "/admin/users/revoke-logins";
    let mut form = match checked_form(&state, &console.token, action, &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let username = form.take("username").unwrap_or_default();
    let owner = families::Owner::User(username.clone());
    match families::revoke_all(state.store.as_ref(), &owner, now).await {
        Ok(_) => {
            audited(
                &state,
                &console.actor,
                format!("{} families", owner.target()),
                now,
            )
            .await;
            Redirect::see_other(families_link(&username)).into_response()
        }
        Err(e) => web_error(e).into_response(),
    }
}

async fn post_users(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/users", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let admin = checked(&form, "admin");
    let password = form.take("password").unwrap_or_default();
    let result = async {
        let username = users::Username::parse(&field(&mut form, "username"))?;
        let (password, generated) = if password.is_empty() {
            (users::NewPassword::generate(), true)
        } else {
            (users::NewPassword::parse(password)?, false)
        };
        users::add_with_role(
            state.store.as_ref(),
            &state.hasher,
            &username,
            &password,
            admin,
            now,
        )
        .await?;
        Ok::<_, AdminError>((username, generated.then(|| password.expose().to_owned())))
    }
    .await;
    let (status, error, created) = match result {
        Ok((username, password)) => {
            audited(&state, &console.actor, format!("user {username}"), now).await;
            let created = password.map(|password| NewUser {
                username: username.to_string(),
                password,
            });
            (StatusCode::CREATED, None, created)
        }
        Err(e @ (AdminError::Store(_) | AdminError::Internal(_))) => {
            return web_error(e).into_response();
        }
        Err(e) => (StatusCode::BAD_REQUEST, Some(e.to_string()), None),
    };
    let notice = UsersNotice {
        error,
        created,
        ..UsersNotice::default()
    };
    rendered(status, users_page(&state, &console, notice).await)
}

async fn post_update_user(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/users/update", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let username = form.take("username").unwrap_or_default();
    let store = state.store.as_ref();
    let result = match form.get("action") {
        Some("disable") => users::set_disabled(store, &username, true).await,
        Some("enable") => users::set_disabled(store, &username, false).await,
        Some("grant-admin") => users::set_admin(store, &username, true).await,
        Some("revoke-admin") => users::set_admin(store, &username, false).await,
        Some("unlock") => users::unlock(store, &username).await,
        _ => {
            return WebError::bad_request(
                "Choose disable, enable, grant-admin, revoke-admin or unlock.",
            )
            .into_response();
        }
    };
    if let Err(e) = result {
        return web_error(e).into_response();
    }
    let target = match form.get("action") {
        Some("unlock") => format!("user {username} lockout"),
        _ => format!("user {username}"),
    };
    audited(&state, &console.actor, target, now).await;
    Redirect::see_other("/admin/users".into()).into_response()
}

// --- logins and their chains -------------------------------------------------------

pub struct FamilyRow {
    pub id: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    pub created: String,
    pub refresh_count: u32,
    pub last_refresh: String,
    pub address: String,
    pub state: &'static str,
    pub offline: bool,
}

impl FamilyRow {
    fn of(f: &FamilyRecord) -> FamilyRow {
        FamilyRow {
            id: f.id.to_string(),
            client_id: f.client_id.clone(),
            username: f.subject.username().unwrap_or_default().to_owned(),
            scope: f.scope.clone(),
            created: when(f.created_at),
            refresh_count: f.refresh_count,
            last_refresh: f.last_refresh_at().map(when).unwrap_or_default(),
            address: f.last_ip.clone().unwrap_or_default(),
            state: f.state(),
            offline: f.offline,
        }
    }
}

/// A browser session as the logins page lists it.
pub struct SessionRow {
    pub id: String,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    /// The address it signed in from.
    pub address: String,
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "console/families.html")]
struct FamiliesPage {
    actor: String,
    csrf: Csrf,
    username: String,
    families: Vec<FamilyRow>,
    sessions: Vec<SessionRow>,
    /// The address of the next page of logins, when there is one.
    next_families: Option<String>,
    /// The address of the next page of sessions, when there is one.
    next_sessions: Option<String>,
}

/// The families page of `username`, its logins from `before` and its sessions
/// from `sessions_before` (either empty for the newest).
fn families_address(username: &str, before: Option<&str>, sessions_before: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("user", username);
    if let Some(b) = before {
        query.append_pair("before", b);
    }
    if let Some(b) = sessions_before {
        query.append_pair("sessions_before", b);
    }
    format!("/admin/families?{}", query.finish())
}

async fn get_families(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let Some(username) = params.get("user") else {
        return WebError::bad_request("Choose a user on the users page.").into_response();
    };
    let now = state.clock.now();
    let store = state.store.as_ref();
    let before = params.get("before").map(String::as_str);
    let sessions_before = params.get("sessions_before").map(String::as_str);
    let found = async {
        let recent = |before: Option<&str>| {
            admin::lists::RecentQuery {
                before: before.map(str::to_owned),
                limit: None,
            }
            .page()
        };
        let families = families::of_user(store, username, &recent(before)?, now).await?;
        let sessions = admin::sessions::of_user(store, username, &recent(sessions_before)?).await?;
        Ok::<_, AdminError>((families, sessions))
    }
    .await;
    match found {
        Ok((list, sessions)) => render(
            StatusCode::OK,
            &FamiliesPage {
                actor: console.actor.name().to_owned(),
                csrf: Csrf::of(&console, now),
                username: username.clone(),
                next_families: list
                    .next
                    .map(|next| families_address(username, Some(&next), sessions_before)),
                next_sessions: sessions
                    .next
                    .as_deref()
                    .map(|next| families_address(username, before, Some(next))),
                families: list.items.iter().map(FamilyRow::of).collect(),
                sessions: sessions
                    .items
                    .iter()
                    .map(|s| SessionRow {
                        id: s.id.to_string(),
                        created: when(s.created_at),
                        last_seen: when(s.last_seen_at),
                        expires: when(s.expires_at),
                        address: s.ip.clone().unwrap_or_default(),
                        state: admin::sessions::state(s, now),
                    })
                    .collect(),
            },
        ),
        Err(e) => web_error(e).into_response(),
    }
}

pub struct ChainRow {
    pub kind: &'static str,
    /// `×N` for retries; else empty.
    pub times: String,
    pub at: String,
    pub outcome: &'static str,
    pub ip: String,
    pub by: String,
}

#[derive(Template)]
#[template(path = "console/family.html")]
struct FamilyPage {
    actor: String,
    csrf: Csrf,
    family: FamilyRow,
    logins: String,
    chain: Vec<ChainRow>,
}

async fn get_family(
    State(state): State<AppState>,
    console: Console,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return WebError::not_found("no such family").into_response();
    };
    let now = state.clock.now();
    let chain = match families::parse_id(&id) {
        Ok(id) => families::chain(state.store.as_ref(), id, now).await,
        Err(e) => Err(e),
    };
    match chain {
        Ok((family, chain)) => {
            let row = FamilyRow::of(&family);
            render(
                StatusCode::OK,
                &FamilyPage {
                    actor: console.actor.name().to_owned(),
                    csrf: Csrf::of(&console, now),
                    logins: families_link(&row.username),
                    family: row,
                    chain: chain
                        .into_iter()
                        .map(|e| ChainRow {
                            times: if e.kind == "retried" {
                                format!("×{}", e.times)
                            } else {
                                String::new()
                            },
                            kind: e.kind,
                            at: when(e.at),
                            outcome: e.outcome,
                            ip: e.ip.unwrap_or_default(),
                            by: e.by.unwrap_or_default(),
                        })
                        .collect(),
                },
            )
        }
        Err(e) => web_error(e).into_response(),
    }
}

async fn post_revoke_family(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let form = match checked_form(&state, &console.token, "/admin/families/revoke", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let result = match families::parse_id(form.get("family_id").unwrap_or_default()) {
        Ok(id) => families::revoke(state.store.as_ref(), id, now)
            .await
            .map(|()| id),
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => {
            audited_revocation(&state, &console.actor, id, now).await;
            Redirect::see_other(format!("/admin/families/{id}")).into_response()
        }
        Err(e) => web_error(e).into_response(),
    }
}

/// Ends a browser session (and its logins that are not offline).
async fn post_end_session(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/sessions/end", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let username = form.take("username").unwrap_or_default();
    let result = match admin::sessions::parse_id(form.get("session_id").unwrap_or_default()) {
        Ok(id) => admin::sessions::end(state.store.as_ref(), id, now)
            .await
            .map(|()| id),
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => {
            audited(&state, &console.actor, format!("session {id}"), now).await;
            Redirect::see_other(families_link(&username)).into_response()
        }
        Err(e) => web_error(e).into_response(),
    }
}

// --- keys and audit -----------------------------------------------------------

pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    pub created: String,
    pub active: bool,
}

impl KeyRow {
    fn of(k: keys::KeyInfo) -> KeyRow {
        KeyRow {
            kid: k.kid,
            alg: k.alg.as_str(),
            created: when(k.created_at),
            active: k.active,
        }
    }
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    actor: String,
    csrf: Csrf,
    keys: Vec<KeyRow>,
}

async fn get_keys(State(state): State<AppState>, console: Console) -> Response {
    match keys::list(state.store.as_ref()).await {
        Ok(list) => render(
            StatusCode::OK,
            &KeysPage {
                actor: console.actor.name().to_owned(),
                csrf: Csrf::of(&console, state.clock.now()),
                keys: list.into_iter().map(KeyRow::of).collect(),
            },
        ),
        Err(e) => web_error(e).into_response(),
    }
}

async fn post_rotate_key(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let now = state.clock.now();
    if let Err(e) = checked_form(&state, &console.token, "/admin/keys/rotate", &body, now) {
        return e.into_response();
    }
    let settings = state.settings();
    let lifetime = state.keys.max_token_lifetime();
    match keys::rotate(state.store.as_ref(), &settings, lifetime, now).await {
        Ok(key) => {
            audited(&state, &console.actor, format!("key {}", key.kid), now).await;
            Redirect::see_other("/admin/keys".into()).into_response()
        }
        Err(e) => web_error(e).into_response(),
    }
}

/// One choice of a filter's list.
pub struct Choice {
    pub name: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    actor: String,
    csrf: Csrf,
    user: String,
    client: String,
    kinds: Vec<Choice>,
    outcomes: Vec<Choice>,
    events: Vec<AuditRow>,
    /// The address of the next page, when there may be one.
    next: Option<String>,
    /// The address of the JSON-lines export of these filters.
    export: String,
}

/// A console page's audit filters, as [`admin::audit::Query`].
fn audit_query(params: &BTreeMap<String, String>) -> admin::audit::Query {
    let get = |name: &str| params.get(name).cloned();
    admin::audit::Query {
        user: get("user"),
        client: get("client"),
        kind: get("kind"),
        outcome: get("outcome"),
        since: get("since"),
        before: get("before"),
        limit: None,
    }
}

/// `query` without `before`, then `extra`.
fn audit_address(
    path: &str,
    params: &BTreeMap<String, String>,
    extra: Option<(&str, &str)>,
) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if name != "before" && !value.is_empty() {
            q.append_pair(name, value);
        }
    }
    if let Some((name, value)) = extra {
        q.append_pair(name, value);
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

async fn get_audit(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let filter = match audit_query(&params).filter(100) {
        Ok(filter) => filter,
        Err(e) => return web_error(e).into_response(),
    };
    let page = match admin::audit::page(state.store.as_ref(), &filter).await {
        Ok(page) => page,
        Err(e) => return web_error(e).into_response(),
    };
    let chosen = |name: &str| params.get(name).map_or("", String::as_str).to_owned();
    let (kind, outcome) = (chosen("kind"), chosen("outcome"));
    render(
        StatusCode::OK,
        &AuditPage {
            actor: console.actor.name().to_owned(),
            csrf: Csrf::of(&console, state.clock.now()),
            user: chosen("user"),
            client: chosen("client"),
            kinds: AuditKind::ALL
                .iter()
                .map(|k| Choice {
                    name: k.as_str(),
                    selected: k.as_str() == kind,
                })
                .collect(),
            outcomes: Outcome::ALL
                .iter()
                .map(|o| Choice {
                    name: o.as_str(),
                    selected: o.as_str() == outcome,
                })
                .collect(),
            events: page
                .events
                .into_iter()
                .map(|e| AuditRow::of(e.event))
                .collect(),
            next: page
                .next
                .map(|c| audit_address("/admin/audit", &params, Some(("before", &c.as_text())))),
            export: audit_address("/admin/audit/export", &params, None),
        },
    )
}

/// The audit trail of the page's filters as JSON lines, as `GET
/// /admin/api/v1/audit/export` gives it.
async fn get_audit_export(
    State(state): State<AppState>,
    _console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match query_params(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let mut q = audit_query(&params);
    q.limit = Some(admin::audit::EXPORT_MAX);
    let filter = match q.filter(admin::audit::EXPORT_MAX) {
        Ok(filter) => filter,
        Err(e) => return web_error(e).into_response(),
    };
    match super::admin_api::json_lines(&state, filter, "/admin/audit/export", query.as_deref())
        .await
    {
        Ok(mut response) => {
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"rotor-audit.jsonl\""),
            );
            pages::secure(headers);
            response
        }
        Err(e) => web_error(e).into_response(),
    }
}

// --- settings ----------------------------------------------------------------

/// One changeable setting as the settings page shows it.
pub struct SettingRow {
    pub key: &'static str,
    pub value: String,
    pub source: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    actor: String,
    csrf: Csrf,
    settings: Vec<SettingRow>,
    error: Option<String>,
    done: Option<String>,
    reload: String,
}

async fn settings_page(
    state: &AppState,
    console: &Console,
    error: Option<String>,
    done: Option<String>,
) -> Result<SettingsPage, AdminError> {
    let views = admin::settings::show(state.store.as_ref(), state.settings.file()).await?;
    Ok(SettingsPage {
        actor: console.actor.name().to_owned(),
        csrf: Csrf::of(console, state.clock.now()),
        settings: views
            .into_iter()
            .map(|v| SettingRow {
                key: v.key.as_str(),
                value: v.value,
                source: v.source.as_str(),
                updated: v
                    .updated
                    .map(|u| format!("{} by {}", when(u.at), u.by))
                    .unwrap_or_default(),
            })
            .collect(),
        error,
        done,
        reload: humantime::format_duration(state.settings().settings.reload_interval).to_string(),
    })
}

async fn get_settings(State(state): State<AppState>, console: Console) -> Response {
    rendered(
        StatusCode::OK,
        settings_page(&state, &console, None, None).await,
    )
}

/// Stores one setting's value (`action=set`) or removes it (`action=unset`),
/// through the rules of `rotor settings set` and `PATCH settings`.
async fn post_settings(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/settings", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let key = field(&mut form, "key");
    let value = field(&mut form, "value");
    let actor = admin::Actor::from(console.actor.clone());
    let store = state.store.as_ref();
    let result = match form.get("action") {
        Some("unset") => admin::settings::unset(store, &key, &actor, now)
            .await
            .map(|_| format!("{key}: the configuration's value applies again.")),
        _ => admin::settings::set(store, state.settings.file(), &key, &value, &actor, now)
            .await
            .map(|v| format!("{} = {} stored.", v.key, v.value)),
    };
    let (status, error, done) = match result {
        Ok(done) => {
            if let Err(e) = state.reload_settings().await {
                return web_error(e.into()).into_response();
            }
            (StatusCode::OK, None, Some(done))
        }
        Err(e @ (AdminError::Store(_) | AdminError::Internal(_))) => {
            return web_error(e).into_response();
        }
        Err(e) => (StatusCode::BAD_REQUEST, Some(e.to_string()), None),
    };
    rendered(status, settings_page(&state, &console, error, done).await)
}

// --- token lookup ------------------------------------------------------------

/// What a pasted token turned out to be.
pub struct TokenRow {
    pub kind: &'static str,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub issued: String,
    pub expires: String,
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "console/lookup.html")]
struct LookupPage {
    actor: String,
    csrf: Csrf,
    found: Option<TokenRow>,
    error: Option<String>,
}

async fn get_lookup(State(state): State<AppState>, console: Console) -> Response {
    render(
        StatusCode::OK,
        &LookupPage {
            actor: console.actor.name().to_owned(),
            csrf: Csrf::of(&console, state.clock.now()),
            found: None,
            error: None,
        },
    )
}

/// Finds a pasted token by its hash (or signature); the answer never holds it.
async fn post_lookup(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let now = state.clock.now();
    let mut form = match checked_form(&state, &console.token, "/admin/lookup", &body, now) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let token = form.take("token").unwrap_or_default();
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    let (status, found, error) = match admin::lookup::find(&ctx, &token, now).await {
        Ok(t) => (
            StatusCode::OK,
            Some(TokenRow {
                kind: t.kind,
                family_id: t.family_id.to_string(),
                client_id: t.client_id,
                subject: t.subject,
                issued: when(t.issued_at),
                expires: when(t.expires_at),
                state: t.state,
            }),
            None,
        ),
        Err(e @ AdminError::UnknownToken) => (StatusCode::NOT_FOUND, None, Some(e.to_string())),
        Err(e) => return web_error(e).into_response(),
    };
    render(
        status,
        &LookupPage {
            actor: console.actor.name().to_owned(),
            csrf: Csrf::of(&console, now),
            found,
            error,
        },
    )
}
