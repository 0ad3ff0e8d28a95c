//! `GET|POST /oauth2/authorize` (RFC 6749 §3.1, §4.1.1) and `GET|POST
//! /oauth2/logout`: the browser's side of the authorization code flow. The
//! decisions are `oauth::authorize`'s; this file reads cookies and forms, checks
//! the form tokens, and renders pages.
//!
//! A form carries the authorization request as the query string it arrived with
//! (`request`), the time the page was shown (`issued`) and a token binding both to
//! a cookie (`csrf_token`, see `crypto::csrf`). On every POST the request is
//! validated again from scratch.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use time::OffsetDateTime;

use super::super::{
    AppState, Routes,
    extract::{ClientIp, CookieJar, Cookies},
    pages::{
        ConsentPage, LoginPage, LogoutPage, MessagePage, Page, Redirect, WebError, fresh_issue_time,
    },
};
use crate::{
    crypto::{
        csrf,
        password::Password,
        token::{SessionToken, generate_form_key},
    },
    oauth::{
        GrantContext, GrantReport, OAuthError, Params,
        authorize::{self, AuthorizationRequest, Refusal, Step},
        credentials,
    },
    store::BrowserSessionRecord,
};

/// The form purposes a token is bound to.
const LOGIN: &str = "login";
const CONSENT: &str = "consent";
const LOGOUT: &str = "logout";

/// The authorization and logout endpoints' routes.
pub fn router() -> Routes {
    Routes::new()
        .get_post("/oauth2/authorize", get_authorize, post_authorize)
        .get_post("/oauth2/logout", get_logout, post_logout)
}

/// The start of the flow: validates the request and shows what comes next.
async fn get_authorize(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    cookies: Cookies,
    RawQuery(query): RawQuery,
) -> Response {
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = GrantContext {
        client_ip,
        ..state.grant_context(&settings, &report)
    };
    let now = state.clock.now();
    let raw = query.unwrap_or_default();
    let request = match validated(&ctx, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let jar = jar(&state);
    let token = cookies.get(jar.session_name()).map(session_token);
    let session = match authorize::live_session(&ctx, token.as_ref(), now).await {
        Ok(session) => session,
        Err(e) => return WebError::from(e).into_response(),
    };
    match authorize::next_step(&ctx, &request, session.as_ref(), now).await {
        Ok(Step::Login) => login_page(&state, &cookies, &request, None, StatusCode::OK, now),
        Ok(Step::Consent) => match (session, token) {
            (Some(session), Some(token)) => consent_page(&request, &session, &token, now),
            _ => WebError::internal().into_response(),
        },
        Ok(Step::Redirect(location)) => Redirect::found(location).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// The login and consent forms.
async fn post_authorize(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    cookies: Cookies,
    body: Bytes,
) -> Response {
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = GrantContext {
        client_ip,
        ..state.grant_context(&settings, &report)
    };
    let now = state.clock.now();
    let mut form = match Params::from_form(&body) {
        Ok(form) => form,
        Err(e) => return WebError::from(e).into_response(),
    };
    let raw = form.take("request").unwrap_or_default();
    let Some(issued) = fresh_issue_time(&state.settings(), form.get("issued"), now) else {
        return WebError::stale_form().into_response();
    };
    let presented = form.take("csrf_token").unwrap_or_default();
    let jar = jar(&state);
    // The form token first: a forged form learns nothing, not even whether its
    // request would be valid.
    let step = form.get("step").unwrap_or_default().to_owned();
    let session_token = cookies.get(jar.session_name()).map(session_token);
    let key = match step.as_str() {
        LOGIN => cookies.get(jar.form_key_name()).unwrap_or_default(),
        CONSENT => session_token.as_ref().map_or("", SessionToken::expose),
        _ => "",
    };
    if key.is_empty() || !csrf::verify(key, &step, issued, &raw, &presented) {
        return WebError::stale_form().into_response();
    }
    let request = match validated(&ctx, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if step == LOGIN {
        return sign_in(&state, &ctx, &cookies, &request, form, now).await;
    }
    let session = match authorize::live_session(&ctx, session_token.as_ref(), now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            let message = "Your sign-in has ended. Sign in again.";
            return login_page(
                &state,
                &cookies,
                &request,
                Some(message),
                StatusCode::OK,
                now,
            );
        }
        Err(e) => return WebError::from(e).into_response(),
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return WebError::bad_request("Choose Allow or Deny.").into_response(),
    };
    match authorize::answer_consent(&ctx, &request, &session, allow, now).await {
        Ok(location) => Redirect::see_other(location).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// The login form's credentials: a session and the next step, or the login page
/// again with a message that does not say whether the user exists.
async fn sign_in(
    state: &AppState,
    ctx: &GrantContext<'_>,
    cookies: &Cookies,
    request: &AuthorizationRequest,
    mut form: Params,
    now: OffsetDateTime,
) -> Response {
    let username = form.take("username").unwrap_or_default();
    let Some(password) = form.take("password").filter(|_| !username.is_empty()) else {
        let message = "Enter your username and password.";
        return login_page(
            state,
            cookies,
            request,
            Some(message),
            StatusCode::BAD_REQUEST,
            now,
        );
    };
    let (token, session) =
        match authorize::sign_in(ctx, request, &username, Password::new(password), now).await {
            Ok(signed_in) => signed_in,
            Err(e) => {
                let (message, status) = login_failure(&e);
                let mut page = login_page(state, cookies, request, Some(message), status, now);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    page.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from_static("1"),
                    );
                }
                if let OAuthError::Internal(cause) = e {
                    tracing::error!(error = format!("{cause:#}"), "sign-in failed");
                }
                return page;
            }
        };
    let jar = jar(state);
    let max_age = state.settings().session.max_lifetime.as_secs();
    let cookie = jar.set(jar.session_name(), token.expose(), Some(max_age));
    match authorize::after_login(ctx, request, &session, now).await {
        Ok(Step::Redirect(location)) => Redirect::see_other(location)
            .with_cookie(cookie)
            .into_response(),
        Ok(Step::Consent) => {
            let mut page = consent_page(request, &session, &token, now);
            if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
                page.headers_mut()
                    .append(axum::http::header::SET_COOKIE, value);
            }
            page
        }
        Ok(Step::Login) => WebError::internal().into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// What the login page says after a refused sign-in, and with which status.
fn login_failure(e: &OAuthError) -> (&'static str, StatusCode) {
    match e {
        OAuthError::InvalidGrant(d) if d == credentials::LOCKED_OUT => (
            "Too many failed sign-ins. This sign-in is temporarily locked; try again later.",
            StatusCode::BAD_REQUEST,
        ),
        OAuthError::InvalidGrant(d) if d == "the user account is disabled" => {
            ("This account is disabled.", StatusCode::BAD_REQUEST)
        }
        OAuthError::InvalidGrant(_) | OAuthError::InvalidRequest(_) => (
            "The username or password is incorrect.",
            StatusCode::BAD_REQUEST,
        ),
        OAuthError::TemporarilyUnavailable(_) => (
            "Too many sign-ins right now. Try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        _ => (
            "Something went wrong on the server. Try again later.",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

/// Asks to confirm the logout (a GET alone must not end a session: any site could
/// link to it).
async fn get_logout(State(state): State<AppState>, cookies: Cookies) -> Response {
    let now = state.clock.now();
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    let token = cookies.get(jar(&state).session_name()).map(session_token);
    match authorize::live_session(&ctx, token.as_ref(), now).await {
        Ok(Some(session)) => {
            let Some(token) = token else {
                return WebError::internal().into_response();
            };
            let issued = now.unix_timestamp();
            let csrf_token = csrf::token(token.expose(), LOGOUT, issued, "");
            Page::render(
                StatusCode::OK,
                &LogoutPage {
                    username: &session.username,
                    issued,
                    csrf_token: &csrf_token,
                },
            )
            .into_response()
        }
        Ok(None) => message(StatusCode::OK, "Signed out", "You are not signed in."),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// Ends the session: the browser's cookie, the stored session, and every family
/// born from it that is not offline.
async fn post_logout(State(state): State<AppState>, cookies: Cookies, body: Bytes) -> Response {
    let now = state.clock.now();
    let jar = jar(&state);
    let form = match Params::from_form(&body) {
        Ok(form) => form,
        Err(e) => return WebError::from(e).into_response(),
    };
    let Some(issued) = fresh_issue_time(&state.settings(), form.get("issued"), now) else {
        return WebError::stale_form().into_response();
    };
    let Some(token) = cookies.get(jar.session_name()).map(session_token) else {
        return message(StatusCode::OK, "Signed out", "You are not signed in.");
    };
    let presented = form.get("csrf_token").unwrap_or_default();
    if !csrf::verify(token.expose(), LOGOUT, issued, "", presented) {
        return WebError::stale_form().into_response();
    }
    let report = GrantReport::default();
    let settings = state.settings();
    let ctx = state.grant_context(&settings, &report);
    if let Err(e) = authorize::sign_out(&ctx, &token, now).await {
        return WebError::from(e).into_response();
    }
    let mut response = message(StatusCode::OK, "Signed out", "You are signed out.");
    if let Ok(value) = axum::http::HeaderValue::from_str(&jar.clear(jar.session_name())) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    response
}

/// Parses and validates the authorization request `raw`; the response for a
/// refusal.
async fn validated(ctx: &GrantContext<'_>, raw: &str) -> Result<AuthorizationRequest, Response> {
    let params = Params::from_pairs(
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
    )
    .map_err(|e| WebError::from(e).into_response())?;
    authorize::validate(ctx, &params, raw.to_owned())
        .await
        .map_err(|refusal| match refusal {
            Refusal::Page(message) => WebError::bad_request(message).into_response(),
            Refusal::Redirect(location) => Redirect::found(location).into_response(),
        })
}

/// The login page, with a form key cookie (the one the browser has, or a new one).
fn login_page(
    state: &AppState,
    cookies: &Cookies,
    request: &AuthorizationRequest,
    error: Option<&str>,
    status: StatusCode,
    now: OffsetDateTime,
) -> Response {
    let jar = jar(state);
    let existing = cookies.get(jar.form_key_name()).map(str::to_owned);
    let key = existing.clone().unwrap_or_else(generate_form_key);
    let issued = now.unix_timestamp();
    let csrf_token = csrf::token(&key, LOGIN, issued, &request.raw);
    let page = Page::render(
        status,
        &LoginPage {
            client_id: &request.client.id,
            request: &request.raw,
            issued,
            csrf_token: &csrf_token,
            username: request.login_hint.as_deref().unwrap_or_default(),
            error,
        },
    );
    let page = if existing.is_none() {
        page.with_cookie(jar.set(jar.form_key_name(), &key, None))
    } else {
        page
    };
    page.into_response()
}

/// The consent page, its form token keyed by the session cookie.
fn consent_page(
    request: &AuthorizationRequest,
    session: &BrowserSessionRecord,
    token: &SessionToken,
    now: OffsetDateTime,
) -> Response {
    let issued = now.unix_timestamp();
    let csrf_token = csrf::token(token.expose(), CONSENT, issued, &request.raw);
    Page::render(
        StatusCode::OK,
        &ConsentPage {
            client_id: &request.client.id,
            username: &session.username,
            scopes: request.scope.tokens(),
            request: &request.raw,
            issued,
            csrf_token: &csrf_token,
        },
    )
    .into_response()
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    Page::render(
        status,
        &MessagePage {
            title,
            message: text,
            is_error: false,
        },
    )
    .into_response()
}

fn jar(state: &AppState) -> CookieJar {
    CookieJar::for_issuer(&state.settings().tokens.issuer)
}

fn session_token(value: &str) -> SessionToken {
    SessionToken::parse(value.to_owned())
}
