//! The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636, OAuth 2.1
//! §4.1, RFC 9207): the login page, browser sessions, consent, offline_access and
//! the code exchange, through HTTP on both stores.

use std::time::Duration;

use rotor::{
    store::{CodeFlowSettings, Consent, Pkce as PkcePolicy},
    wire::GrantType,
};

use crate::browser::{Browser, Pkce, Seen, authorize_path};
use crate::helpers::{
    Answer, Db, PASSWORD, TestApp, TestClient, USERNAME, client_record, spawn_app, spawn_instance,
};
use crate::on_both_stores;

on_both_stores!(
    a_person_signs_in_and_the_app_gets_tokens_that_refresh,
    a_live_session_signs_in_without_the_login_page,
    logout_ends_the_session_and_its_families_but_not_offline_ones,
    a_third_party_client_asks_for_consent_once_and_deny_is_access_denied,
    errors_about_the_client_or_redirect_uri_are_pages_never_redirects,
    other_errors_go_back_to_the_client_with_state_and_iss,
    pkce_is_required_and_checked_at_the_exchange,
    a_replayed_code_revokes_what_it_gave,
    a_code_expires_and_belongs_to_its_client_and_redirect_uri,
    forms_without_their_token_are_refused,
    wrong_credentials_show_the_login_page_again_and_share_the_lockout,
    prompt_none_answers_without_a_page,
    a_session_is_seen_by_every_instance,
    reuse_of_a_browser_born_refresh_token_ends_the_session,
    concurrent_exchanges_of_one_code_give_one_success,
    offline_access_needs_the_clients_switch,
    pages_carry_the_security_headers,
    hostile_input_on_the_pages_is_a_page_never_a_500,
);

const CALLBACK: &str = "http://127.0.0.1/callback";
const CALLBACK_ON_PORT: &str = "http://127.0.0.1:5555/callback";

/// Registers a public client `id` for the flow.
async fn flow_client(app: &TestApp, id: &str, configure: impl FnOnce(&mut CodeFlowSettings)) {
    let mut record = client_record(id, None, "read write");
    record.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    record.code_flow.redirect_uris = vec![CALLBACK.into()];
    configure(&mut record.code_flow);
    app.store.create_client(&record).await.unwrap();
}

/// A confidential client `web` for the flow, PKCE optional.
async fn confidential_client(app: &TestApp) -> TestClient {
    let secret = "web-secret-web-secret-web-secret-00";
    let mut record = client_record("web", Some(secret), "read write");
    record.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    record.code_flow.redirect_uris = vec!["https://web.example/cb".into()];
    record.code_flow.pkce = PkcePolicy::Optional;
    app.store.create_client(&record).await.unwrap();
    TestClient {
        id: "web".into(),
        secret: Some(secret.into()),
    }
}

/// The authorize path of client `id` with PKCE, state `st` and `extra` parameters.
fn authorize(id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", CALLBACK_ON_PORT),
        ("state", "st-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    authorize_path(&params)
}

/// Signs `alice` in from scratch and returns the redirect that carries the code.
async fn sign_in_for_code(browser: &mut Browser<'_>, path: &str) -> Seen {
    let page = browser.get(path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    browser.sign_in(&page, USERNAME, PASSWORD).await
}

/// POSTs a form to the token endpoint without client authentication (a public
/// client names itself with `client_id`).
async fn post_public(app: &TestApp, form: &[(&str, &str)]) -> Answer {
    let response = app
        .http
        .post(app.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    TestApp::read(response).await
}

/// Exchanges a code for public client `id`.
async fn exchange(app: &TestApp, id: &str, code: &str, verifier: &str) -> Answer {
    post_public(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", code),
            ("redirect_uri", CALLBACK_ON_PORT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// A public client's refresh.
async fn refresh_public(app: &TestApp, id: &str, refresh_token: &str) -> Answer {
    post_public(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn a_person_signs_in_and_the_app_gets_tokens_that_refresh(db: Db) {
    // Arrange
    let app = spawn_app(db.clone()).await;
    flow_client(&app, "spa", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    // Act
    let page = browser.get(&authorize("spa", &pkce, &[])).await;
    let done = browser.sign_in(&page, USERNAME, PASSWORD).await;
    // Assert: 303 to the loopback URI on the port the request named.
    assert_eq!(page.title(), "Sign in");
    assert_eq!(done.status, 303, "{}", done.html);
    assert!(done.redirects_to(CALLBACK_ON_PORT), "{:?}", done.location);
    assert_eq!(done.location_param("state").as_deref(), Some("st-1"));
    assert_eq!(
        done.location_param("iss").as_deref(),
        Some("https://rotor.test")
    );
    let session_cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-rotor_session="))
        .expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly"));
    assert!(session_cookie.contains("SameSite=Lax"));
    assert!(session_cookie.contains("Secure"));
    // The session keeps the address it signed in from, for the console.
    let cookie = browser.cookies.get("__Host-rotor_session").unwrap();
    let session = app
        .store
        .find_session(&rotor::crypto::token::TokenHash::of(cookie))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.ip.as_deref(), Some("127.0.0.1"));
    let code = done.location_param("code").unwrap();
    let tokens = exchange(&app, "spa", &code, &pkce.verifier).await;
    tokens.assert_ok();
    assert_eq!(tokens.str("token_type"), "Bearer");
    assert_eq!(tokens.str("scope"), "read write");
    let claims = app.verify_access_token(tokens.str("access_token")).await;
    assert_eq!(claims.client_id, "spa");
    let refreshed = refresh_public(&app, "spa", &tokens.refresh_token()).await;
    refreshed.assert_ok();
    // No code, token or cookie value is stored in clear.
    let dump = db.dump().await;
    for secret in [
        code.as_str(),
        tokens.str("refresh_token"),
        browser
            .cookies
            .get("__Host-rotor_session")
            .unwrap()
            .as_str(),
    ] {
        assert!(!dump.contains(secret));
    }
}

async fn a_live_session_signs_in_without_the_login_page(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let mut browser = Browser::new(&app);
    sign_in_for_code(&mut browser, &authorize("spa", &Pkce::new(), &[])).await;
    // Act
    let again = browser.get(&authorize("spa", &Pkce::new(), &[])).await;
    let forced = browser
        .get(&authorize("spa", &Pkce::new(), &[("prompt", "login")]))
        .await;
    // Assert
    assert_eq!(again.status, 302, "{}", again.html);
    assert!(again.location_param("code").is_some());
    assert_eq!(forced.title(), "Sign in");
}

async fn logout_ends_the_session_and_its_families_but_not_offline_ones(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |f| f.offline_access = true).await;
    let mut browser = Browser::new(&app);
    let online = Pkce::new();
    let done = sign_in_for_code(&mut browser, &authorize("spa", &online, &[])).await;
    let online_tokens = exchange(
        &app,
        "spa",
        &done.location_param("code").unwrap(),
        &online.verifier,
    )
    .await;
    let offline = Pkce::new();
    let again = browser
        .get(&authorize(
            "spa",
            &offline,
            &[("scope", "read offline_access")],
        ))
        .await;
    let offline_tokens = exchange(
        &app,
        "spa",
        &again.location_param("code").unwrap(),
        &offline.verifier,
    )
    .await;
    offline_tokens.assert_ok();
    assert_eq!(offline_tokens.str("scope"), "read offline_access");
    // Act
    let out = browser.log_out().await;
    // Assert
    assert_eq!(out.status, 200);
    assert_eq!(out.title(), "Signed out");
    refresh_public(&app, "spa", &online_tokens.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    let introspected = app.introspect(online_tokens.str("access_token")).await;
    assert_eq!(introspected.body["active"], false);
    refresh_public(&app, "spa", &offline_tokens.refresh_token())
        .await
        .assert_ok();
    let page = browser.get(&authorize("spa", &Pkce::new(), &[])).await;
    assert_eq!(page.title(), "Sign in");
}

async fn a_third_party_client_asks_for_consent_once_and_deny_is_access_denied(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "partner", |f| f.consent = Consent::ThirdParty).await;
    let mut browser = Browser::new(&app);
    // Act: deny first.
    let consent = sign_in_for_code(
        &mut browser,
        &authorize("partner", &Pkce::new(), &[("scope", "read")]),
    )
    .await;
    let denied = browser.decide(&consent, "deny").await;
    // Assert
    assert_eq!(consent.status, 200);
    assert!(
        consent.html.contains("<code>read</code>"),
        "{}",
        consent.html
    );
    assert_eq!(denied.status, 303);
    assert_eq!(
        denied.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(denied.location_param("state").as_deref(), Some("st-1"));
    // Act: allow; then the same scopes again need no page.
    let asked = browser
        .get(&authorize("partner", &Pkce::new(), &[("scope", "read")]))
        .await;
    let allowed = browser.decide(&asked, "allow").await;
    let remembered = browser
        .get(&authorize("partner", &Pkce::new(), &[("scope", "read")]))
        .await;
    let wider = browser
        .get(&authorize(
            "partner",
            &Pkce::new(),
            &[("scope", "read write")],
        ))
        .await;
    let forced = browser
        .get(&authorize(
            "partner",
            &Pkce::new(),
            &[("scope", "read"), ("prompt", "consent")],
        ))
        .await;
    // Assert
    assert!(allowed.location_param("code").is_some(), "{:?}", allowed);
    assert_eq!(remembered.status, 302);
    assert!(remembered.location_param("code").is_some());
    assert_eq!(wider.title(), "Authorize");
    assert!(wider.html.contains("<code>write</code>"));
    assert_eq!(forced.title(), "Authorize");
}

async fn errors_about_the_client_or_redirect_uri_are_pages_never_redirects(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let bad_redirects = [
        "https://evil.example/callback",
        "http://127.0.0.1:5555/callback/extra",
        "http://127.0.0.1.evil.example/callback",
    ];
    // Act / Assert
    for path in [
        authorize_path(&[("response_type", "code"), ("client_id", "nobody")]),
        authorize_path(&[("response_type", "code")]),
        authorize_path(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("client_id", "x"),
        ]),
    ]
    .into_iter()
    .chain(bad_redirects.iter().map(|uri| {
        authorize_path(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", uri),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
    })) {
        let seen = browser.get(&path).await;
        assert_eq!(seen.status, 400, "{path}: {}", seen.html);
        assert_eq!(seen.location, None, "{path}");
        assert_eq!(seen.title(), "Error");
    }
}

async fn other_errors_go_back_to_the_client_with_state_and_iss(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("client_id", "spa"),
            ("redirect_uri", CALLBACK_ON_PORT),
            ("state", "st-9"),
        ];
        p.extend_from_slice(extra);
        p
    };
    let challenge: &'static str = Box::leak(pkce.challenge.clone().into_boxed_str());
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            base(&[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (base(&[]), "invalid_request"),
        (base(&[("response_type", "code")]), "invalid_request"),
        (
            base(&[
                ("response_type", "code"),
                ("code_challenge", challenge),
                ("code_challenge_method", "plain"),
            ]),
            "invalid_request",
        ),
        (
            base(&[
                ("response_type", "code"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("scope", "admin"),
            ]),
            "invalid_scope",
        ),
    ];
    for (params, error) in cases {
        // Act
        let seen = browser.get(&authorize_path(&params)).await;
        // Assert
        assert_eq!(seen.status, 302, "{params:?}: {}", seen.html);
        assert!(seen.redirects_to(CALLBACK_ON_PORT));
        assert_eq!(
            seen.location_param("error").as_deref(),
            Some(error),
            "{params:?}"
        );
        assert_eq!(seen.location_param("state").as_deref(), Some("st-9"));
        assert_eq!(
            seen.location_param("iss").as_deref(),
            Some("https://rotor.test")
        );
    }
    // A client not allowed the grant.
    let seen = browser
        .get(&authorize_path(&[
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", CALLBACK_ON_PORT),
        ]))
        .await;
    assert_eq!(seen.status, 400, "app has no redirect URI: a page");
}

async fn pkce_is_required_and_checked_at_the_exchange(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let web = confidential_client(&app).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let done = sign_in_for_code(&mut browser, &authorize("spa", &pkce, &[])).await;
    let code = done.location_param("code").unwrap();
    // Act / Assert: a wrong verifier, then none, then a malformed one.
    let other = Pkce::new();
    exchange(&app, "spa", &code, &other.verifier)
        .await
        .assert_error(400, "invalid_grant");
    post_public(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", CALLBACK_ON_PORT),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    exchange(&app, "spa", &code, "short")
        .await
        .assert_error(400, "invalid_request");
    // The failed attempts did not spend the code.
    exchange(&app, "spa", &code, &pkce.verifier)
        .await
        .assert_ok();

    // A confidential client without PKCE: a verifier at the exchange is a
    // downgrade (RFC 9700 §4.8.2).
    let plain = browser
        .get(&authorize_path(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("state", "s"),
        ]))
        .await;
    assert_eq!(plain.status, 302, "{}", plain.html);
    let code = plain.location_param("code").unwrap();
    let with_verifier = app
        .post_form_as(
            &web,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    with_verifier.assert_error(400, "invalid_grant");
    app.post_form_as(
        &web,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await
    .assert_ok();
}

async fn a_replayed_code_revokes_what_it_gave(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let done = sign_in_for_code(&mut browser, &authorize("spa", &pkce, &[])).await;
    let code = done.location_param("code").unwrap();
    let tokens = exchange(&app, "spa", &code, &pkce.verifier).await;
    tokens.assert_ok();
    // Act
    let replay = exchange(&app, "spa", &code, &pkce.verifier).await;
    // Assert
    replay.assert_error(400, "invalid_grant");
    refresh_public(&app, "spa", &tokens.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.introspect(tokens.str("access_token")).await.body["active"],
        false
    );
}

async fn a_code_expires_and_belongs_to_its_client_and_redirect_uri(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    flow_client(&app, "other", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let first = sign_in_for_code(&mut browser, &authorize("spa", &pkce, &[])).await;
    let code = first.location_param("code").unwrap();
    // Act / Assert: another client, another redirect URI.
    exchange(&app, "other", &code, &pkce.verifier)
        .await
        .assert_error(400, "invalid_grant");
    post_public(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:5556/callback"),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    // An unknown code.
    exchange(&app, "spa", "rotor_ac_unknown", &pkce.verifier)
        .await
        .assert_error(400, "invalid_grant");
    // Past its lifetime (authorize.code_ttl, 60 s).
    let second = browser.get(&authorize("spa", &pkce, &[])).await;
    let late = second.location_param("code").unwrap();
    app.advance(Duration::from_secs(61));
    let expired = exchange(&app, "spa", &late, &pkce.verifier).await;
    expired.assert_error(400, "invalid_grant");
    assert!(
        expired.body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

async fn forms_without_their_token_are_refused(db: Db) {
    // Arrange
    let app = spawn_app(db.clone()).await;
    flow_client(&app, "spa", |_| {}).await;
    let path = authorize("spa", &Pkce::new(), &[]);
    let mut browser = Browser::new(&app);
    let page = browser.get(&path).await;
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = page
            .hidden_inputs()
            .into_iter()
            .filter(|(n, _)| n != name)
            .collect();
        if !value.is_empty() {
            form.push((name.into(), value.into()));
        }
        form.push(("username".into(), USERNAME.into()));
        form.push(("password".into(), PASSWORD.into()));
        form
    };
    // Act / Assert: no token, a wrong one, another request under the right one, no cookie.
    for form in [
        with("csrf_token", ""),
        with("csrf_token", "AAAA"),
        with("request", "client_id=spa&response_type=code"),
        with("issued", "1"),
    ] {
        let seen = browser.post("/oauth2/authorize", &form).await;
        assert_eq!(seen.status, 400, "{form:?}");
        assert_eq!(seen.location, None);
    }
    let mut stranger = Browser::new(&app);
    let seen = stranger.post("/oauth2/authorize", &with("", "")).await;
    assert_eq!(seen.status, 400);
    assert_eq!(db.count("select count(*) from browser_sessions").await, 0);
    // The genuine form still works.
    let done = browser.sign_in(&page, USERNAME, PASSWORD).await;
    assert_eq!(done.status, 303);
}

async fn wrong_credentials_show_the_login_page_again_and_share_the_lockout(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let mut browser = Browser::new(&app);
    let path = authorize("spa", &Pkce::new(), &[]);
    let max = app.settings.lockout.max_failures_per_user;
    // Act
    let mut page = browser.get(&path).await;
    let mut unknown_user = None;
    for attempt in 0..max {
        page = browser.sign_in(&page, USERNAME, "wrong password").await;
        assert_eq!(page.status, 400);
        assert_eq!(page.title(), "Sign in");
        if attempt == 0 {
            let mut other = Browser::new(&app);
            let p = other.get(&path).await;
            unknown_user = Some(other.sign_in(&p, "nobody", "wrong password").await);
        }
    }
    // Assert: the same message for an unknown user; then the password grant is locked too.
    let message = |seen: &Seen| {
        seen.html
            .split("role=\"alert\"")
            .nth(1)
            .map(|s| s.split('<').next().unwrap_or_default().to_owned())
    };
    let first_failure = message(unknown_user.as_ref().unwrap());
    assert!(first_failure.is_some());
    let locked = app.login().await;
    locked.assert_error(400, "invalid_grant");
    assert!(
        locked.body["error_description"]
            .as_str()
            .unwrap()
            .contains("temporarily locked")
    );
    let after = browser.sign_in(&page, USERNAME, PASSWORD).await;
    assert_eq!(after.status, 400);
    assert!(message(&after).unwrap().contains("temporarily locked"));
}

async fn prompt_none_answers_without_a_page(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "partner", |f| f.consent = Consent::ThirdParty).await;
    let mut browser = Browser::new(&app);
    // Act
    let nobody = browser
        .get(&authorize("partner", &Pkce::new(), &[("prompt", "none")]))
        .await;
    sign_in_for_code(&mut browser, &authorize("partner", &Pkce::new(), &[])).await;
    let no_consent = browser
        .get(&authorize("partner", &Pkce::new(), &[("prompt", "none")]))
        .await;
    // Assert
    assert_eq!(
        nobody.location_param("error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        no_consent.location_param("error").as_deref(),
        Some("consent_required")
    );
}

async fn a_session_is_seen_by_every_instance(db: Db) {
    // Arrange
    let app = spawn_app(db.clone()).await;
    flow_client(&app, "spa", |_| {}).await;
    let other = spawn_instance(db, app.settings.clone()).await;
    let mut browser = Browser::new(&app);
    sign_in_for_code(&mut browser, &authorize("spa", &Pkce::new(), &[])).await;
    // Act: the login page of one instance posted to the other, then SSO there.
    let mut elsewhere = browser.on(&other);
    let sso = elsewhere.get(&authorize("spa", &Pkce::new(), &[])).await;
    let mut fresh = Browser::new(&app);
    let page = fresh.get(&authorize("spa", &Pkce::new(), &[])).await;
    let mut fresh_elsewhere = fresh.on(&other);
    let posted = fresh_elsewhere.sign_in(&page, USERNAME, PASSWORD).await;
    // Assert
    assert_eq!(sso.status, 302, "{}", sso.html);
    assert!(sso.location_param("code").is_some());
    assert_eq!(posted.status, 303, "{}", posted.html);
}

async fn reuse_of_a_browser_born_refresh_token_ends_the_session(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let mut browser = Browser::new(&app);
    let pkce = Pkce::new();
    let done = sign_in_for_code(&mut browser, &authorize("spa", &pkce, &[])).await;
    let tokens = exchange(
        &app,
        "spa",
        &done.location_param("code").unwrap(),
        &pkce.verifier,
    )
    .await;
    let second = Pkce::new();
    let again = browser.get(&authorize("spa", &second, &[])).await;
    let sibling = exchange(
        &app,
        "spa",
        &again.location_param("code").unwrap(),
        &second.verifier,
    )
    .await;
    refresh_public(&app, "spa", &tokens.refresh_token())
        .await
        .assert_ok();
    // Act
    refresh_public(&app, "spa", &tokens.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    // Assert: the session and the sibling family of it are gone.
    refresh_public(&app, "spa", &sibling.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    let page = browser.get(&authorize("spa", &Pkce::new(), &[])).await;
    assert_eq!(page.title(), "Sign in");
}

async fn concurrent_exchanges_of_one_code_give_one_success(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let done = sign_in_for_code(&mut browser, &authorize("spa", &pkce, &[])).await;
    let code = done.location_param("code").unwrap();
    // Act
    let answers = futures_join_all(
        (0..8)
            .map(|_| exchange(&app, "spa", &code, &pkce.verifier))
            .collect(),
    )
    .await;
    // Assert
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        a.assert_error(400, "invalid_grant");
    }
}

async fn offline_access_needs_the_clients_switch(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    flow_client(&app, "strict", |f| {
        f.offline_access = true;
        f.refresh_requires_offline = true;
    })
    .await;
    let mut browser = Browser::new(&app);
    // Act
    let refused = browser
        .get(&authorize(
            "spa",
            &Pkce::new(),
            &[("scope", "offline_access")],
        ))
        .await;
    let pkce = Pkce::new();
    let done = sign_in_for_code(&mut browser, &authorize("strict", &pkce, &[])).await;
    let tokens = exchange(
        &app,
        "strict",
        &done.location_param("code").unwrap(),
        &pkce.verifier,
    )
    .await;
    // Assert
    assert_eq!(
        refused.location_param("error").as_deref(),
        Some("invalid_scope")
    );
    tokens.assert_ok();
    assert!(
        tokens.body.get("refresh_token").is_none(),
        "no refresh token without offline_access for this client"
    );
}

async fn pages_carry_the_security_headers(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let mut browser = Browser::new(&app);
    // Act
    let login = browser.get(&authorize("spa", &Pkce::new(), &[])).await;
    let error = browser.get("/oauth2/authorize?client_id=nobody").await;
    let logout = browser.get("/oauth2/logout").await;
    // Assert
    for seen in [&login, &error, &logout] {
        let csp = seen.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(seen.headers["x-content-type-options"], "nosniff");
        assert_eq!(seen.headers["referrer-policy"], "no-referrer");
        assert!(!seen.html.contains("<script"));
        assert!(
            seen.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(login.html.matches("<form method=\"post\"").count(), 1);
    assert!(login.html.contains("name=\"username\""));
    assert!(login.html.contains("name=\"password\""));
    assert!(login.hidden_inputs().iter().any(|(n, _)| n == "csrf_token"));
}

/// Runs futures at once (on one task), in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

async fn hostile_input_on_the_pages_is_a_page_never_a_500(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    flow_client(&app, "spa", |_| {}).await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize("spa", &Pkce::new(), &[])).await;
    let long = "x".repeat(5000);
    // Act / Assert: NUL bytes, control characters and over-long values in the
    // query and in both forms, on both stores (PostgreSQL refuses U+0000).
    for path in [
        "/oauth2/authorize?client_id=spa%00&response_type=code",
        "/oauth2/authorize?client_id=%00",
        "/oauth2/authorize?client_id=spa&state=%0d%0a",
        "/oauth2/authorize?client_id=caf%C3%A9",
        "/oauth2/authorize?client_id=%FF%FE",
        &format!("/oauth2/authorize?client_id={long}"),
    ] {
        let seen = browser.get(path).await;
        assert_eq!(seen.status, 400, "{path}: {}", seen.html);
        assert_eq!(seen.location, None, "{path}");
    }
    for (name, value) in [
        ("username", "alice\0"),
        ("username", "al\u{0}ice"),
        ("password", "pass\u{0}word"),
        ("username", &*"é".repeat(300)),
        ("request", "client_id=spa\u{0}"),
        ("issued", "99999999999999999999999"),
        ("step", "\u{0}"),
    ] {
        let mut form: Vec<(String, String)> = page
            .hidden_inputs()
            .into_iter()
            .filter(|(n, _)| n != name)
            .collect();
        form.push((name.into(), value.into()));
        if name != "username" {
            form.push(("username".into(), USERNAME.into()));
        }
        if name != "password" {
            form.push(("password".into(), PASSWORD.into()));
        }
        let seen = browser.post("/oauth2/authorize", &form).await;
        assert!(
            seen.status == 400 || seen.status == 200,
            "{name}: {} {}",
            seen.status,
            seen.html
        );
        assert_eq!(seen.location, None, "{name}");
    }
    let seen = browser
        .post("/oauth2/logout", &[("csrf_token".into(), "\u{0}".into())])
        .await;
    assert!(seen.status < 500);
}
