//! The admin API (`/admin/api/v1/…`): JSON in and out, bearer tokens with the
//! scope `rotor:admin` (see [`oauth::bearer::authenticate_admin`]). The handlers
//! are thin: the rules are `crate::admin`'s, shared with the CLI. Every change is
//! an audit event naming the acting admin and what was changed.
//!
//! Errors are `{"error", "error_description"}`: 401 without a valid token (with
//! `WWW-Authenticate: Bearer`), 403 for a token that may not administer, 400 for
//! bad input, 404 for an unknown id, 409 for an id that is taken.

use axum::{
    Json,
    extract::{
        FromRequestParts, Path, RawQuery, State,
        rejection::{JsonRejection, PathRejection},
    },
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppState, Routes};
use crate::{
    admin::{self, AdminError, clients, families, keys, users},
    crypto::token::ClientSecret,
    oauth::{
        GrantReport,
        bearer::{Actor, AdminRefusal, BearerError, authenticate_admin},
        request::syntax,
    },
    store::{
        AuditEvent, AuditFilter, ClientRecord, CodeFlowSettings, Consent, DpopClientSettings,
        FamilyRecord, Outcome, Pkce, StoreError, UserRecord,
    },
    wire::GrantType,
};

/// The admin API's routes.
pub fn router() -> Routes {
    use axum::http::Method;
    Routes::new()
        .resource(
            "/admin/api/v1/clients",
            &[Method::GET, Method::POST],
            "GET, POST",
            routing::get(list_clients).post(create_client),
        )
        .resource(
            "/admin/api/v1/clients/{client_id}",
            &[Method::GET, Method::PATCH, Method::DELETE],
            "DELETE, GET, PATCH",
            routing::get(get_client)
                .patch(patch_client)
                .delete(delete_client),
        )
        .resource(
            "/admin/api/v1/clients/{client_id}/secret",
            &[Method::POST],
            "POST",
            routing::post(regenerate_secret),
        )
        .resource(
            "/admin/api/v1/clients/{client_id}/families",
            &[Method::DELETE],
            "DELETE",
            routing::delete(revoke_client_families),
        )
        .resource(
            "/admin/api/v1/users",
            &[Method::GET, Method::POST],
            "GET, POST",
            routing::get(list_users).post(create_user),
        )
        .resource(
            "/admin/api/v1/users/{username}",
            &[Method::GET, Method::PATCH],
            "GET, PATCH",
            routing::get(get_user).patch(patch_user),
        )
        .resource(
            "/admin/api/v1/users/{username}/families",
            &[Method::GET, Method::DELETE],
            "DELETE, GET",
            routing::get(user_families).delete(revoke_user_families),
        )
        .resource(
            "/admin/api/v1/users/{username}/password",
            &[Method::POST],
            "POST",
            routing::post(reset_password),
        )
        .resource(
            "/admin/api/v1/users/{username}/lockout",
            &[Method::DELETE],
            "DELETE",
            routing::delete(unlock_user),
        )
        .resource(
            "/admin/api/v1/users/{username}/sessions",
            &[Method::GET],
            "GET",
            routing::get(user_sessions),
        )
        .resource(
            "/admin/api/v1/sessions/{session_id}",
            &[Method::DELETE],
            "DELETE",
            routing::delete(end_session),
        )
        .resource(
            "/admin/api/v1/overview",
            &[Method::GET],
            "GET",
            routing::get(get_overview),
        )
        .resource(
            "/admin/api/v1/tokens/lookup",
            &[Method::POST],
            "POST",
            routing::post(lookup_token),
        )
        .resource(
            "/admin/api/v1/families/{family_id}",
            &[Method::GET, Method::DELETE],
            "DELETE, GET",
            routing::get(get_family).delete(revoke_family),
        )
        .resource(
            "/admin/api/v1/keys",
            &[Method::GET],
            "GET",
            routing::get(list_keys),
        )
        .resource(
            "/admin/api/v1/keys/rotate",
            &[Method::POST],
            "POST",
            routing::post(rotate_key),
        )
        .resource(
            "/admin/api/v1/settings",
            &[Method::GET, Method::PATCH],
            "GET, PATCH",
            routing::get(get_settings).patch(patch_settings),
        )
        .resource(
            "/admin/api/v1/audit",
            &[Method::GET],
            "GET",
            routing::get(audit),
        )
        .resource(
            "/admin/api/v1/audit/export",
            &[Method::GET],
            "GET",
            routing::get(export_audit),
        )
}

/// An admin API error: status, code and description.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            description: description.into(),
        }
    }

    fn bad_request(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn not_found(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", description)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            error_description: syntax::error_text(&self.description),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="rotor-admin""#),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        match e {
            AdminError::ClientExists(_) | AdminError::UserExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            AdminError::NoSuchClient(_)
            | AdminError::NoSuchUser(_)
            | AdminError::NoSuchFamily
            | AdminError::NoSuchSession
            | AdminError::UnknownToken => ApiError::not_found(e.to_string()),
            AdminError::Store(store) => store.into(),
            AdminError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "admin request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the store is unavailable, retry shortly",
            ),
            other => {
                tracing::error!(error = %other, "admin request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        ApiError::bad_request(format!(
            "the body is not the JSON expected: {}",
            e.body_text()
        ))
    }
}

/// The authenticated admin of a request.
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", d);
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(unauthorized(
                "a bearer token with the scope rotor:admin is required",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned())
            .ok_or_else(|| unauthorized("a bearer token with the scope rotor:admin is required"))?;
        let report = GrantReport::default();
        let settings = state.settings();
        let ctx = state.grant_context(&settings, &report);
        match authenticate_admin(&ctx, &token, state.clock.now()).await {
            Ok(actor) => Ok(Admin(actor)),
            Err(AdminRefusal::Forbidden(why)) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                why,
            )),
            Err(AdminRefusal::Bearer(BearerError::Server(e))) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                e.description(),
            )),
            Err(AdminRefusal::Bearer(e)) => Err(unauthorized(&e.to_string())),
        }
    }
}

/// A path segment (a client id, username or family id), refused when it holds a
/// control character: such a name exists nowhere, and PostgreSQL refuses U+0000.
fn path_text(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if text.chars().any(syntax::is_control) {
        return Err(ApiError::bad_request(
            "the path contains a control character",
        ));
    }
    Ok(text)
}

/// Records an admin change, naming the actor and the target.
pub(crate) async fn audited(state: &AppState, actor: &Actor, target: String, now: OffsetDateTime) {
    let actor = crate::admin::Actor::from(actor.clone());
    crate::admin::record_change(
        state.store.as_ref(),
        &actor,
        target,
        Outcome::Success,
        None,
        now,
    )
    .await;
}

// --- clients ---------------------------------------------------------------

/// A client as the API shows it, with RFC 7591 metadata names.
#[derive(Serialize)]
struct ClientView {
    client_id: String,
    grant_types: Vec<&'static str>,
    redirect_uris: Vec<String>,
    scope: String,
    token_endpoint_auth_method: &'static str,
    refresh_tokens: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_refreshes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grace_period: Option<String>,
    third_party: bool,
    pkce_required: bool,
    offline_access: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline_ttl: Option<String>,
    refresh_requires_offline: bool,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    dpop_bound_access_tokens: bool,
    /// Whether its proofs need a nonce; absent: the server's `dpop.require_nonce`.
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_require_nonce: Option<bool>,
    created_at: String,
    /// Shown once, in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

fn duration_text(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl ClientView {
    fn of(c: &ClientRecord, secret: Option<&ClientSecret>) -> ClientView {
        ClientView {
            client_id: c.id.clone(),
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect(),
            redirect_uris: c.code_flow.redirect_uris.clone(),
            scope: c.scopes.join(" "),
            token_endpoint_auth_method: if c.is_public() {
                "none"
            } else {
                "client_secret_basic"
            },
            refresh_tokens: c.refresh_tokens,
            refresh_ttl: c.refresh_ttl.map(duration_text),
            max_refreshes: c.max_refreshes,
            grace_period: c.grace_period.map(duration_text),
            third_party: c.code_flow.consent == Consent::ThirdParty,
            pkce_required: c.code_flow.pkce == Pkce::Required,
            offline_access: c.code_flow.offline_access,
            offline_ttl: c.code_flow.offline_ttl.map(duration_text),
            refresh_requires_offline: c.code_flow.refresh_requires_offline,
            dpop_bound_access_tokens: c.dpop.bound_access_tokens,
            dpop_require_nonce: c.dpop.require_nonce,
            created_at: rfc3339(c.created_at),
            client_secret: secret.map(|s| s.expose().to_owned()),
        }
    }
}

/// A client to register: RFC 7591 §2 names, and rotor's own settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientBody {
    client_id: String,
    /// Accepted for RFC 7591 clients; rotor names clients by id only.
    #[serde(default)]
    #[allow(dead_code)]
    client_name: Option<String>,
    #[serde(default = "default_grants")]
    grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    scope: String,
    #[serde(default = "default_auth_method")]
    token_endpoint_auth_method: String,
    #[serde(default = "yes")]
    refresh_tokens: bool,
    #[serde(default, with = "humantime_serde")]
    refresh_ttl: Option<std::time::Duration>,
    #[serde(default)]
    max_refreshes: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    grace_period: Option<std::time::Duration>,
    #[serde(default)]
    third_party: bool,
    #[serde(default)]
    pkce_optional: bool,
    #[serde(default)]
    offline_access: bool,
    #[serde(default, with = "humantime_serde")]
    offline_ttl: Option<std::time::Duration>,
    #[serde(default)]
    refresh_requires_offline: bool,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    #[serde(default)]
    dpop_require_nonce: Option<bool>,
}

fn default_grants() -> Vec<String> {
    vec![
        GrantType::Password.as_str().into(),
        GrantType::RefreshToken.as_str().into(),
    ]
}

fn default_auth_method() -> String {
    "client_secret_basic".into()
}

fn yes() -> bool {
    true
}

/// `GET clients`: a JSON array of one page of the clients, by id (`q`: those
/// whose id contains the text); when there are more, the `Link` header names the
/// next page (`rel="next"`, its `after` this page's last id: keyset pagination).
async fn list_clients(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = list_query(query.as_deref())?.page()?;
    let clients = clients::page(state.store.as_ref(), &page).await?;
    let views: Vec<ClientView> = clients
        .items
        .iter()
        .map(|c| ClientView::of(c, None))
        .collect();
    Ok(with_next(
        Json(views).into_response(),
        "/admin/api/v1/clients",
        query.as_deref(),
        clients.next.map(|id| ("after", id)),
    ))
}

async fn get_client(
    State(state): State<AppState>,
    Admin(_): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ClientView>, ApiError> {
    let client_id = path_text(path)?;
    match state.store.find_client(&client_id).await? {
        Some(c) => Ok(Json(ClientView::of(&c, None))),
        None => Err(AdminError::NoSuchClient(client_id).into()),
    }
}

async fn create_client(
    State(state): State<AppState>,
    Admin(actor): Admin,
    body: Result<Json<NewClientBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ClientView>), ApiError> {
    let Json(body) = body?;
    // RFC 7591 §2: "none" is a public client; both secret methods a confidential one.
    let public = match body.token_endpoint_auth_method.as_str() {
        "none" => true,
        "client_secret_basic" | "client_secret_post" => false,
        _ => {
            return Err(ApiError::bad_request(
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none",
            ));
        }
    };
    let valid = clients::NewClient {
        id: body.client_id,
        grant_types: body.grant_types,
        scopes: body.scope,
        refresh_tokens: body.refresh_tokens,
        refresh_ttl: body.refresh_ttl,
        max_refreshes: body.max_refreshes,
        grace_period: body.grace_period,
        public,
        code_flow: CodeFlowSettings {
            redirect_uris: body.redirect_uris,
            consent: if body.third_party {
                Consent::ThirdParty
            } else {
                Consent::FirstParty
            },
            pkce: if body.pkce_optional {
                Pkce::Optional
            } else {
                Pkce::Required
            },
            offline_access: body.offline_access,
            offline_ttl: body.offline_ttl,
            refresh_requires_offline: body.refresh_requires_offline,
        },
        dpop: DpopClientSettings {
            bound_access_tokens: body.dpop_bound_access_tokens,
            require_nonce: body.dpop_require_nonce,
        },
    }
    .validate()?;
    let secret = (!public).then(clients::generate_secret);
    let now = state.clock.now();
    let record = clients::create(state.store.as_ref(), valid, secret.as_ref(), now).await?;
    audited(&state, &actor, format!("client {}", record.id), now).await;
    Ok((
        StatusCode::CREATED,
        Json(ClientView::of(&record, secret.as_ref())),
    ))
}

/// `PATCH clients/{id}`: the fields to change, with the names of a new client;
/// a lifetime or limit of `null` goes back to the server's setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientPatch {
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_tokens: Option<bool>,
    #[serde(default, deserialize_with = "some_duration")]
    refresh_ttl: Option<Option<std::time::Duration>>,
    #[serde(default, deserialize_with = "some")]
    max_refreshes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "some_duration")]
    grace_period: Option<Option<std::time::Duration>>,
    #[serde(default)]
    third_party: Option<bool>,
    #[serde(default)]
    pkce_required: Option<bool>,
    #[serde(default)]
    offline_access: Option<bool>,
    #[serde(default, deserialize_with = "some_duration")]
    offline_ttl: Option<Option<std::time::Duration>>,
    #[serde(default)]
    refresh_requires_offline: Option<bool>,
    #[serde(default)]
    dpop_bound_access_tokens: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    dpop_require_nonce: Option<Option<bool>>,
}

/// A field that is present (`Some`), perhaps as `null` (`Some(None)`).
fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// [`some`] for a human duration (`"30d"`).
fn some_duration<'de, D>(d: D) -> Result<Option<Option<std::time::Duration>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    humantime_serde::deserialize(d).map(Some)
}

async fn patch_client(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ClientPatch>, JsonRejection>,
) -> Result<Json<ClientView>, ApiError> {
    let client_id = path_text(path)?;
    let Json(p) = body?;
    let changes = clients::ClientChanges {
        grant_types: p.grant_types,
        scopes: p.scope,
        redirect_uris: p.redirect_uris,
        refresh_tokens: p.refresh_tokens,
        refresh_ttl: p.refresh_ttl,
        max_refreshes: p.max_refreshes,
        grace_period: p.grace_period,
        third_party: p.third_party,
        pkce_required: p.pkce_required,
        offline_access: p.offline_access,
        offline_ttl: p.offline_ttl,
        refresh_requires_offline: p.refresh_requires_offline,
        dpop_bound_access_tokens: p.dpop_bound_access_tokens,
        dpop_require_nonce: p.dpop_require_nonce,
    };
    let record = clients::update(state.store.as_ref(), &client_id, changes).await?;
    audited(
        &state,
        &actor,
        format!("client {client_id}"),
        state.clock.now(),
    )
    .await;
    Ok(Json(ClientView::of(&record, None)))
}

/// `POST clients/{id}/secret`: a new secret, shown this once; the old one stops
/// working at once.
async fn regenerate_secret(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ClientView>, ApiError> {
    let client_id = path_text(path)?;
    let secret = clients::regenerate_secret(state.store.as_ref(), &client_id).await?;
    audited(
        &state,
        &actor,
        format!("client {client_id} secret"),
        state.clock.now(),
    )
    .await;
    let record = state
        .store
        .find_client(&client_id)
        .await?
        .ok_or_else(|| AdminError::NoSuchClient(client_id.clone()))?;
    Ok(Json(ClientView::of(&record, Some(&secret))))
}

/// How many logins a "revoke all" ended.
#[derive(Serialize)]
struct RevokedView {
    revoked: u64,
}

async fn revoke_all(
    state: &AppState,
    actor: &Actor,
    owner: families::Owner,
) -> Result<Json<RevokedView>, ApiError> {
    let now = state.clock.now();
    let revoked = families::revoke_all(state.store.as_ref(), &owner, now).await?;
    audited(state, actor, format!("{} families", owner.target()), now).await;
    Ok(Json(RevokedView { revoked }))
}

/// `DELETE clients/{id}/families`: every login through the client.
async fn revoke_client_families(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RevokedView>, ApiError> {
    let client_id = path_text(path)?;
    revoke_all(&state, &actor, families::Owner::Client(client_id)).await
}

/// `DELETE users/{name}/families`: every login of the user.
async fn revoke_user_families(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RevokedView>, ApiError> {
    let username = path_text(path)?;
    revoke_all(&state, &actor, families::Owner::User(username)).await
}

async fn delete_client(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let client_id = path_text(path)?;
    clients::remove(state.store.as_ref(), &client_id).await?;
    audited(
        &state,
        &actor,
        format!("client {client_id}"),
        state.clock.now(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// --- users -----------------------------------------------------------------

#[derive(Serialize)]
struct UserView {
    username: String,
    admin: bool,
    disabled: bool,
    created_at: String,
    /// The end of a lockout of the username, while one holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<String>,
    /// A generated password, shown once in the answer that created the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

impl UserView {
    fn of(u: &UserRecord) -> UserView {
        UserView {
            username: u.username.clone(),
            admin: u.admin,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
            locked_until: None,
            password: None,
        }
    }

    fn of_state(u: &users::UserState) -> UserView {
        UserView {
            locked_until: u.locked_until.map(rfc3339),
            ..UserView::of(&u.user)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    /// Generated (and shown once) when left out.
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
}

/// `GET users`, or `GET users?q=TEXT`: a JSON array of one page of the users
/// whose name contains the text, by name; when there are more, the `Link` header
/// names the next page (`rel="next"`, its `after` this page's last name).
async fn list_users(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = list_query(query.as_deref())?.page()?;
    let users = users::search(state.store.as_ref(), &page, state.clock.now()).await?;
    let views: Vec<UserView> = users.items.iter().map(UserView::of_state).collect();
    Ok(with_next(
        Json(views).into_response(),
        "/admin/api/v1/users",
        query.as_deref(),
        users.next.map(|name| ("after", name)),
    ))
}

/// The `q`, `after` and `limit` of a list's query.
fn list_query(query: Option<&str>) -> Result<admin::lists::Query, ApiError> {
    let mut q = admin::lists::Query::default();
    for (name, value) in list_params(query)? {
        match name.as_str() {
            "q" => q.q = Some(value),
            "after" => q.after = Some(value),
            "limit" => q.limit = Some(list_limit(&value)?),
            _ => {
                return Err(ApiError::bad_request(
                    "unknown parameter; use q, after or limit",
                ));
            }
        }
    }
    Ok(q)
}

/// The parameters of a list's query; a value with a control character is
/// refused by its parameter's name.
fn list_params(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(name, value)| {
            if value.chars().any(syntax::is_control) {
                Err(ApiError::bad_request(format!(
                    "{name} must not contain a control character"
                )))
            } else {
                Ok((name.into_owned(), value.into_owned()))
            }
        })
        .collect()
}

/// A list's `limit`.
fn list_limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request("limit must be a whole number"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    /// Generated (and shown once) when left out.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Serialize)]
struct PasswordView {
    /// The generated password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<Json<PasswordView>, ApiError> {
    let username = path_text(path)?;
    let Json(body) = body?;
    let chosen = body.password.map(users::NewPassword::parse).transpose()?;
    let generated =
        users::reset_password(state.store.as_ref(), &state.hasher, &username, chosen).await?;
    audited(
        &state,
        &actor,
        format!("user {username} password"),
        state.clock.now(),
    )
    .await;
    Ok(Json(PasswordView {
        password: generated.map(|p| p.expose().to_owned()),
    }))
}

async fn unlock_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let username = path_text(path)?;
    users::unlock(state.store.as_ref(), &username).await?;
    audited(
        &state,
        &actor,
        format!("user {username} lockout"),
        state.clock.now(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn find_user(state: &AppState, username: &str) -> Result<UserRecord, ApiError> {
    state
        .store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()).into())
}

async fn get_user(
    State(state): State<AppState>,
    Admin(_): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let username = path_text(path)?;
    Ok(Json(UserView::of(&find_user(&state, &username).await?)))
}

async fn create_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let Json(body) = body?;
    let username = users::Username::parse(&body.username)?;
    let (password, generated) = match body.password {
        Some(text) => (users::NewPassword::parse(text)?, false),
        None => (users::NewPassword::generate(), true),
    };
    let now = state.clock.now();
    users::add_with_role(
        state.store.as_ref(),
        &state.hasher,
        &username,
        &password,
        body.admin,
        now,
    )
    .await?;
    audited(&state, &actor, format!("user {username}"), now).await;
    let mut view = UserView::of(&find_user(&state, username.as_str()).await?);
    view.password = generated.then(|| password.expose().to_owned());
    Ok((StatusCode::CREATED, Json(view)))
}

async fn patch_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<UserPatch>, JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
    let username = path_text(path)?;
    let Json(patch) = body?;
    find_user(&state, &username).await?;
    if let Some(disabled) = patch.disabled {
        users::set_disabled(state.store.as_ref(), &username, disabled).await?;
    }
    if let Some(admin) = patch.admin {
        users::set_admin(state.store.as_ref(), &username, admin).await?;
    }
    audited(
        &state,
        &actor,
        format!("user {username}"),
        state.clock.now(),
    )
    .await;
    Ok(Json(UserView::of(&find_user(&state, &username).await?)))
}

// --- families and their chains --------------------------------------------------

#[derive(Serialize)]
struct FamilyView {
    id: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    scope: String,
    refresh_count: u32,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    /// When it was last refreshed; absent before its first refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_refresh_at: Option<String>,
    /// The address of its last refresh, or of its login.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    state: &'static str,
    offline: bool,
    browser_session: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<Vec<ChainEventView>>,
}

impl FamilyView {
    fn of(f: &FamilyRecord) -> FamilyView {
        FamilyView {
            id: f.id.to_string(),
            client_id: f.client_id.clone(),
            username: f.subject.username().map(str::to_owned),
            scope: f.scope.clone(),
            refresh_count: f.refresh_count,
            created_at: rfc3339(f.created_at),
            revoked_at: f.revoked_at.map(rfc3339),
            last_refresh_at: f.last_refresh_at().map(rfc3339),
            ip: f.last_ip.clone(),
            state: f.state(),
            offline: f.offline,
            browser_session: f.session_id.is_some(),
            chain: None,
        }
    }
}

/// One event of a login's refresh chain, oldest first.
#[derive(Serialize)]
struct ChainEventView {
    kind: &'static str,
    at: String,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    /// Who, when an admin revoked the family.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    /// For `retried`: how many retries one spent token answered inside its
    /// window, the last at `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
}

impl ChainEventView {
    fn of(e: families::ChainEvent) -> ChainEventView {
        ChainEventView {
            kind: e.kind,
            at: rfc3339(e.at),
            outcome: e.outcome,
            times: (e.kind == "retried").then_some(e.times),
            ip: e.ip,
            by: e.by,
        }
    }
}

/// `GET users/{name}/families`: a JSON array of one page of the user's logins,
/// newest first; when there are more, the `Link` header names the next page
/// (`rel="next"`, its `before` the position of this page's last login).
async fn user_families(
    State(state): State<AppState>,
    Admin(_): Admin,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let username = path_text(path)?;
    let page = recent_query(query.as_deref())?.page()?;
    let families =
        families::of_user(state.store.as_ref(), &username, &page, state.clock.now()).await?;
    let views: Vec<FamilyView> = families.items.iter().map(FamilyView::of).collect();
    Ok(with_next(
        Json(views).into_response(),
        &user_path(&username, "families"),
        query.as_deref(),
        families.next.map(|c| ("before", c)),
    ))
}

/// `/admin/api/v1/users/{name}/{what}`, the name percent-encoded as a path
/// segment.
fn user_path(username: &str, what: &str) -> String {
    let name: String = form_urlencoded::byte_serialize(username.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("/admin/api/v1/users/{name}/{what}")
}

/// The `before` and `limit` of a newest-first list; anything else is refused.
fn recent_query(query: Option<&str>) -> Result<admin::lists::RecentQuery, ApiError> {
    let mut q = admin::lists::RecentQuery::default();
    for (name, value) in list_params(query)? {
        match name.as_str() {
            "before" => q.before = Some(value),
            "limit" => q.limit = Some(list_limit(&value)?),
            _ => {
                return Err(ApiError::bad_request(
                    "unknown parameter; use before or limit",
                ));
            }
        }
    }
    Ok(q)
}

async fn get_family(
    State(state): State<AppState>,
    Admin(_): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FamilyView>, ApiError> {
    let id = families::parse_id(&path_text(path)?)?;
    let (family, chain) = families::chain(state.store.as_ref(), id, state.clock.now()).await?;
    let mut view = FamilyView::of(&family);
    view.chain = Some(chain.into_iter().map(ChainEventView::of).collect());
    Ok(Json(view))
}

async fn revoke_family(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = families::parse_id(&path_text(path)?)?;
    let now = state.clock.now();
    families::revoke(state.store.as_ref(), id, now).await?;
    audited_revocation(&state, &actor, id, now).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Records an admin's revocation of a family, in the family's chain too.
pub(crate) async fn audited_revocation(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    now: OffsetDateTime,
) {
    let actor = crate::admin::Actor::from(actor.clone());
    crate::admin::record_change(
        state.store.as_ref(),
        &actor,
        format!("family {id}"),
        Outcome::Family,
        Some(id),
        now,
    )
    .await;
}

// --- browser sessions, overview, token lookup -------------------------------

#[derive(Serialize)]
struct SessionView {
    id: String,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    /// The address it signed in from.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    state: &'static str,
}

/// `GET users/{name}/sessions`: a JSON array of one page of the user's browser
/// sessions, newest first, paged as `GET users/{name}/families` is.
async fn user_sessions(
    State(state): State<AppState>,
    Admin(_): Admin,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let username = path_text(path)?;
    let now = state.clock.now();
    let page = recent_query(query.as_deref())?.page()?;
    let list = admin::sessions::of_user(state.store.as_ref(), &username, &page).await?;
    let views: Vec<SessionView> = list
        .items
        .iter()
        .map(|s| SessionView {
            id: s.id.to_string(),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            ended_at: s.ended_at.map(rfc3339),
            ip: s.ip.clone(),
            state: admin::sessions::state(s, now),
        })
        .collect();
    Ok(with_next(
        Json(views).into_response(),
        &user_path(&username, "sessions"),
        query.as_deref(),
        list.next.map(|c| ("before", c)),
    ))
}

/// `DELETE sessions/{id}`: ends a browser session and the logins born from it
/// that are not offline.
async fn end_session(
    State(state): State<AppState>,
    Admin(actor): Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = admin::sessions::parse_id(&path_text(path)?)?;
    let now = state.clock.now();
    admin::sessions::end(state.store.as_ref(), id, now).await?;
    audited(&state, &actor, format!("session {id}"), now).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct CountsView {
    logins: u64,
    refreshes: u64,
    reuse_detections: u64,
    lockouts: u64,
    failed_logins: u64,
}

impl CountsView {
    fn of(c: admin::overview::Counts) -> CountsView {
        CountsView {
            logins: c.logins,
            refreshes: c.refreshes,
            reuse_detections: c.reuse_detections,
            lockouts: c.lockouts,
            failed_logins: c.failed_logins,
        }
    }
}

#[derive(Serialize)]
struct OverviewView {
    clients: usize,
    users: usize,
    live_logins: u64,
    last_hour: CountsView,
    last_day: CountsView,
    keys: Vec<KeyView>,
    instances: Vec<InstanceView>,
}

/// A running instance, as the overview lists it.
#[derive(Serialize)]
struct InstanceView {
    id: String,
    name: String,
    version: String,
    started_at: String,
    seen_at: String,
    signing_kid: Option<String>,
}

impl InstanceView {
    fn of(i: crate::store::InstanceRecord) -> InstanceView {
        InstanceView {
            id: i.id.to_string(),
            name: i.name,
            version: i.version,
            started_at: rfc3339(i.started_at),
            seen_at: rfc3339(i.seen_at),
            signing_kid: i.signing_kid,
        }
    }
}

async fn get_overview(
    State(state): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<OverviewView>, ApiError> {
    let o = admin::overview::overview(state.store.as_ref(), state.clock.now()).await?;
    Ok(Json(OverviewView {
        clients: o.clients,
        users: o.users,
        live_logins: o.live_logins,
        last_hour: CountsView::of(o.last_hour),
        last_day: CountsView::of(o.last_day),
        keys: o.keys.into_iter().map(KeyView::of).collect(),
        instances: o.instances.into_iter().map(InstanceView::of).collect(),
    }))
}

/// `POST tokens/lookup`: `{"token": "…"}`, in the body so that the token is in
/// no address or access log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    token: String,
}

/// What a pasted token is; never the token itself.
#[derive(Serialize)]
struct TokenView {
    token_type: &'static str,
    family_id: String,
    client_id: String,
    subject: String,
    issued_at: String,
    expires_at: String,
    state: &'static str,
}

async fn lookup_token(
    State(state): State<AppState>,
    Admin(_): Admin,
    body: Result<Json<LookupBody>, JsonRejection>,
) -> Result<Json<TokenView>, ApiError> {
    let Json(body) = body?;
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    let info = admin::lookup::find(&ctx, &body.token, state.clock.now()).await?;
    Ok(Json(TokenView {
        token_type: info.kind,
        family_id: info.family_id.to_string(),
        client_id: info.client_id,
        subject: info.subject,
        issued_at: rfc3339(info.issued_at),
        expires_at: rfc3339(info.expires_at),
        state: info.state,
    }))
}

// --- keys and audit -----------------------------------------------------------

#[derive(Serialize)]
struct KeyView {
    kid: String,
    alg: &'static str,
    created_at: String,
    active: bool,
}

impl KeyView {
    fn of(k: keys::KeyInfo) -> KeyView {
        KeyView {
            kid: k.kid,
            alg: k.alg.as_str(),
            created_at: rfc3339(k.created_at),
            active: k.active,
        }
    }
}

async fn list_keys(
    State(state): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = keys::list(state.store.as_ref()).await?;
    Ok(Json(keys.into_iter().map(KeyView::of).collect()))
}

async fn rotate_key(
    State(state): State<AppState>,
    Admin(actor): Admin,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let now = state.clock.now();
    let settings = state.settings();
    let key = keys::rotate(
        state.store.as_ref(),
        &settings,
        state.keys.max_token_lifetime(),
        now,
    )
    .await?;
    audited(&state, &actor, format!("key {}", key.kid), now).await;
    Ok((StatusCode::CREATED, Json(KeyView::of(key))))
}

/// `GET audit`'s filters: `user`, `client`, `kind`, `outcome`, `since` (RFC
/// 3339), `before` (the `next` of a previous page) and `limit`.
fn audit_query(query: Option<&str>) -> Result<admin::audit::Query, ApiError> {
    let mut q = admin::audit::Query::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.chars().any(syntax::is_control) {
            return Err(ApiError::bad_request(
                "a filter contains a control character",
            ));
        }
        let text = value.into_owned();
        let value = Some(text.clone());
        match name.as_ref() {
            "user" => q.user = value,
            "client" => q.client = value,
            "kind" => q.kind = value,
            "outcome" => q.outcome = value,
            "since" => q.since = value,
            "before" => q.before = value,
            "limit" => q.limit = Some(list_limit(&text)?),
            _ => {
                return Err(ApiError::bad_request(
                    "unknown filter; use user, client, kind, outcome, since, before or limit",
                ));
            }
        }
    }
    Ok(q)
}

#[derive(Serialize)]
struct AuditView {
    at: String,
    kind: &'static str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}

impl AuditView {
    fn of(e: AuditEvent) -> AuditView {
        AuditView {
            at: rfc3339(e.at),
            kind: e.kind.as_str(),
            outcome: e.outcome.as_str(),
            username: e.username,
            client_id: e.client_id,
            family_id: e.family_id.map(|id| id.to_string()),
            ip: e.ip,
            target: e.target,
            actor: e.actor,
        }
    }
}

/// `GET audit`: a JSON array of one page, newest first; when there may be more,
/// the `Link` header names the next page (`rel="next"`, its `before` the
/// position of this page's last event: keyset pagination, RFC 8288 links).
async fn audit(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = audit_query(query.as_deref())?.filter(admin::audit::PAGE)?;
    let page = admin::audit::page(state.store.as_ref(), &filter).await?;
    let events: Vec<AuditView> = page
        .events
        .into_iter()
        .map(|e| AuditView::of(e.event))
        .collect();
    let mut response = Json(events).into_response();
    if let Some(link) = next_link(
        "/admin/api/v1/audit",
        query.as_deref(),
        page.next.map(|c| ("before", c.as_text())),
    ) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `GET audit/export`: the events of `GET audit`'s filters as JSON lines
/// (`application/x-ndjson`), newest first, at most
/// [`admin::audit::EXPORT_MAX`]; when there may be more, the `Link` header names
/// the next part.
async fn export_audit(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = audit_query(query.as_deref())?;
    q.limit = Some(q.limit.unwrap_or(admin::audit::EXPORT_MAX));
    let filter = q.filter(admin::audit::EXPORT_MAX)?;
    Ok(json_lines(
        &state,
        filter,
        "/admin/api/v1/audit/export",
        query.as_deref(),
    )
    .await?)
}

/// The JSON-lines export of `filter` served at `path`, shared with the console.
pub(crate) async fn json_lines(
    state: &AppState,
    filter: AuditFilter,
    path: &str,
    query: Option<&str>,
) -> Result<Response, AdminError> {
    let page = admin::audit::page(state.store.as_ref(), &filter).await?;
    let mut body = String::new();
    for e in page.events {
        if let Ok(line) = serde_json::to_string(&AuditView::of(e.event)) {
            body.push_str(&line);
            body.push('\n');
        }
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(link) = next_link(path, query, page.next.map(|c| ("before", c.as_text()))) {
        headers.insert(header::LINK, link);
    }
    Ok(response)
}

/// `<PATH?QUERY>; rel="next"`: `query` with the position parameter set to
/// `next`'s value (RFC 8288 link).
fn next_link(path: &str, query: Option<&str>, next: Option<(&str, String)>) -> Option<HeaderValue> {
    let (key, value) = next?;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != key {
            rest.append_pair(&name, &v);
        }
    }
    let rest = rest.append_pair(key, &value).finish();
    HeaderValue::from_str(&format!("<{path}?{rest}>; rel=\"next\"")).ok()
}

/// `response` with the `Link` header of [`next_link`] when there is a next page.
fn with_next(
    mut response: Response,
    path: &str,
    query: Option<&str>,
    next: Option<(&str, String)>,
) -> Response {
    if let Some(link) = next_link(path, query, next) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

// --- settings ---------------------------------------------------------------

/// A changeable setting: its value in force and where it comes from.
#[derive(Serialize)]
struct SettingJson {
    key: &'static str,
    value: String,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_by: Option<String>,
}

impl SettingJson {
    fn of(v: crate::admin::settings::SettingView) -> SettingJson {
        SettingJson {
            key: v.key.as_str(),
            value: v.value,
            source: v.source.as_str(),
            updated_at: v.updated.as_ref().map(|u| rfc3339(u.at)),
            updated_by: v.updated.map(|u| u.by),
        }
    }
}

async fn get_settings(
    State(state): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<Vec<SettingJson>>, ApiError> {
    let views = crate::admin::settings::show(state.store.as_ref(), state.settings.file()).await?;
    Ok(Json(views.into_iter().map(SettingJson::of).collect()))
}

/// `PATCH settings`: an object of dotted keys, e.g. `{"refresh.max_refreshes": 2}`;
/// every value is checked before any is stored. It applies on this instance at
/// once and on the others within `settings.reload_interval`.
async fn patch_settings(
    State(state): State<AppState>,
    Admin(actor): Admin,
    body: Result<Json<serde_json::Map<String, serde_json::Value>>, JsonRejection>,
) -> Result<Json<Vec<SettingJson>>, ApiError> {
    let Json(object) = body?;
    if object.is_empty() {
        return Err(ApiError::bad_request("name at least one setting to change"));
    }
    let texts: Vec<(String, String)> = object
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => {
                    return Err(ApiError::bad_request(format!(
                        "{}: a value is required",
                        syntax::error_text(&key)
                    )));
                }
                other => other.to_string(),
            };
            Ok((key, text))
        })
        .collect::<Result<_, _>>()?;
    if texts
        .iter()
        .any(|(k, v)| k.chars().any(syntax::is_control) || v.chars().any(syntax::is_control))
    {
        return Err(ApiError::bad_request(
            "a key or value contains a control character",
        ));
    }
    let changes: Vec<(&str, &str)> = texts
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let actor = crate::admin::Actor::from(actor);
    crate::admin::settings::update(
        state.store.as_ref(),
        state.settings.file(),
        &changes,
        &actor,
        state.clock.now(),
    )
    .await?;
    state.reload_settings().await?;
    let views = crate::admin::settings::show(state.store.as_ref(), state.settings.file()).await?;
    Ok(Json(views.into_iter().map(SettingJson::of).collect()))
}
