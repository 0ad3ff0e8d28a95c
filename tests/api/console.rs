//! The admin console (`/admin/`): its login through rotor's own authorization
//! code flow, who may use it, its security headers, its form tokens, and that
//! its changes are audited.

use rotor::store::{AuditFilter, AuditKind};

use crate::browser::{Browser, Seen};
use crate::helpers::{Db, TestApp, add_user, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    without_a_session_the_console_redirects_to_authorize_with_pkce,
    an_admin_signs_in_and_every_page_is_served_with_the_security_headers,
    a_user_who_is_not_an_admin_is_refused_with_403,
    a_forged_post_without_csrf_token_is_refused_and_changes_nothing,
    a_client_created_through_the_form_shows_its_secret_once_and_is_audited,
    signing_out_ends_the_console_session_and_its_token,
    a_console_switched_off_is_not_served_but_the_admin_api_is,
);

const ISSUER: &str = "https://rotor.test";
const ROOT_PASSWORD: &str = "root password";

async fn add_admin(app: &TestApp) {
    add_user(app.store.as_ref(), &app.settings, "root", ROOT_PASSWORD).await;
    app.store.set_user_admin("root", true).await.unwrap();
}

/// Opens the console, signs in on rotor's login page, and follows the redirect
/// to the callback; the callback's answer.
async fn sign_in(browser: &mut Browser<'_>, username: &str, password: &str) -> Seen {
    let start = browser.get("/admin/").await;
    assert_eq!(start.status, 302, "{}", start.html);
    let login = browser.get(start.location.as_deref().unwrap()).await;
    let answer = browser.sign_in(&login, username, password).await;
    assert!(
        answer.redirects_to(&format!("{ISSUER}/admin/callback?")),
        "{answer:?}"
    );
    let callback = answer.location.unwrap();
    browser.get(callback.strip_prefix(ISSUER).unwrap()).await
}

fn assert_secure_page(page: &Seen) {
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(!page.html.contains("<script"), "{}", page.html);
}

fn set_cookie<'a>(page: &'a Seen, name: &str) -> &'a str {
    page.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no cookie {name}: {:?}", page.headers))
}

/// A signed-in admin's browser.
async fn admin_browser(app: &TestApp) -> Browser<'_> {
    add_admin(app).await;
    let mut browser = Browser::new(app);
    let callback = sign_in(&mut browser, "root", ROOT_PASSWORD).await;
    assert_eq!(callback.status, 302, "{}", callback.html);
    assert_eq!(callback.location.as_deref(), Some("/admin/"));
    browser
}

async fn without_a_session_the_console_redirects_to_authorize_with_pkce(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = Browser::new(&app);

    // Act
    let answer = browser.get("/admin/").await;

    // Assert
    assert_eq!(answer.status, 302);
    assert!(answer.redirects_to("/oauth2/authorize?"), "{answer:?}");
    assert_eq!(
        answer.location_param("client_id").as_deref(),
        Some("rotor-console")
    );
    assert_eq!(
        answer.location_param("redirect_uri").as_deref(),
        Some("https://rotor.test/admin/callback")
    );
    assert_eq!(
        answer.location_param("scope").as_deref(),
        Some("rotor:admin")
    );
    assert_eq!(
        answer.location_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(answer.location_param("state").unwrap().len() >= 32);
    let cookie = set_cookie(&answer, "__Secure-rotor_console_login");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/admin", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The client was registered on the way, once however many ask.
    browser.get("/admin/").await;
    let client = app
        .store
        .find_client("rotor-console")
        .await
        .unwrap()
        .unwrap();
    assert!(client.is_public());
    assert_eq!(client.scopes, ["rotor:admin"]);
}

async fn an_admin_signs_in_and_every_page_is_served_with_the_security_headers(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    add_admin(&app).await;
    let mut browser = Browser::new(&app);

    // Act
    let callback = sign_in(&mut browser, "root", ROOT_PASSWORD).await;

    // Assert
    assert_eq!(callback.status, 302, "{}", callback.html);
    let cookie = set_cookie(&callback, "__Secure-rotor_console");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    for (path, title) in [
        ("/admin/", "Overview"),
        ("/admin/clients", "Clients"),
        ("/admin/users", "Users"),
        ("/admin/families?user=root", "Logins of root"),
        ("/admin/keys", "Keys"),
        ("/admin/audit", "Audit"),
        ("/admin/audit?user=root&client=rotor-console", "Audit"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        assert_eq!(page.title(), format!("{title} · rotor console"));
        assert_secure_page(&page);
        assert!(page.html.contains("root"), "{path}");
    }
    let families = app
        .store
        .list_families(
            app.store.find_user("root").await.unwrap().unwrap().id,
            app.clock.now(),
            10,
        )
        .await
        .unwrap();
    let chain = browser
        .get(&format!("/admin/families/{}", families[0].id))
        .await;
    assert_eq!(chain.status, 200, "{}", chain.html);
    assert!(chain.html.contains("issued"));
    assert_secure_page(&chain);
    let unknown = browser
        .get("/admin/families/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(unknown.status, 404);
}

async fn a_user_who_is_not_an_admin_is_refused_with_403(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = Browser::new(&app);

    // Act
    let callback = sign_in(&mut browser, &app.user.username, &app.user.password).await;

    // Assert
    assert_eq!(callback.status, 403, "{}", callback.html);
    assert_secure_page(&callback);
    assert!(!browser.cookies.contains_key("__Secure-rotor_console"));
    let user = app
        .store
        .find_user(&app.user.username)
        .await
        .unwrap()
        .unwrap();
    let families = app
        .store
        .list_families(user.id, app.clock.now(), 10)
        .await
        .unwrap();
    assert_eq!(families[0].state(), "revoked");
}

async fn a_forged_post_without_csrf_token_is_refused_and_changes_nothing(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let page = browser.get("/admin/clients").await;
    let mut form: Vec<(String, String)> = page
        .form_inputs("/admin/clients")
        .into_iter()
        .filter(|(name, _)| name != "csrf_token")
        .collect();
    for (name, value) in [
        ("client_id", "forged"),
        ("type", "confidential"),
        ("grant_password", "on"),
        ("scopes", "read"),
    ] {
        form.push((name.into(), value.into()));
    }

    // Act
    let without = browser.post("/admin/clients", &form).await;
    form.push(("csrf_token".into(), "AAAA".into()));
    let wrong = browser.post("/admin/clients", &form).await;
    let mut other = Browser::new(&app);
    let no_session = other.post("/admin/clients", &form).await;

    // Assert
    assert_eq!(without.status, 400, "{}", without.html);
    assert_eq!(wrong.status, 400, "{}", wrong.html);
    assert_eq!(no_session.status, 303);
    assert_secure_page(&without);
    assert!(app.store.find_client("forged").await.unwrap().is_none());
}

async fn a_client_created_through_the_form_shows_its_secret_once_and_is_audited(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let page = browser.get("/admin/clients").await;
    let mut form = page.form_inputs("/admin/clients");
    for (name, value) in [
        ("client_id", "billing"),
        ("type", "confidential"),
        ("grant_client_credentials", "on"),
        ("scopes", "read write"),
    ] {
        form.push((name.into(), value.into()));
    }

    // Act
    let created = browser.post("/admin/clients", &form).await;

    // Assert
    assert_eq!(created.status, 201, "{}", created.html);
    let client = app.store.find_client("billing").await.unwrap().unwrap();
    assert!(!client.is_public());
    assert_eq!(client.scopes, ["read", "write"]);
    assert!(created.html.contains("shown this once"));
    let listed = browser.get("/admin/clients").await;
    assert!(listed.html.contains("billing"));
    assert!(!listed.html.contains("shown this once"));
    let events = app
        .store
        .audit_events(&AuditFilter {
            username: Some("root".into()),
            limit: 50,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::AdminChange
                && e.target.as_deref() == Some("client billing")),
        "{events:?}"
    );
    // The same rules and messages as the CLI.
    let page = browser.get("/admin/clients").await;
    let mut form = page.form_inputs("/admin/clients");
    for (name, value) in [
        ("client_id", "billing"),
        ("type", "confidential"),
        ("grant_password", "on"),
    ] {
        form.push((name.into(), value.into()));
    }
    let taken = browser.post("/admin/clients", &form).await;
    assert_eq!(taken.status, 400);
    assert!(taken.html.contains("already exists"), "{}", taken.html);
}

async fn signing_out_ends_the_console_session_and_its_token(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let token = browser.cookies["__Secure-rotor_console"].clone();
    let page = browser.get("/admin/").await;
    let form = page.form_inputs("/admin/logout");

    // Act
    let out = browser.post("/admin/logout", &form).await;

    // Assert
    assert_eq!(out.status, 200, "{}", out.html);
    assert!(!browser.cookies.contains_key("__Secure-rotor_console"));
    let api = app.get("/admin/api/v1/users", Some(&token)).await;
    assert_eq!(api.status, 401);
    let again = browser.get("/admin/").await;
    assert_eq!(again.status, 302);
}

async fn a_console_switched_off_is_not_served_but_the_admin_api_is(db: Db) {
    // Arrange
    let app = spawn_app_with(db, |s| s.console.enabled = false).await;
    let mut browser = Browser::new(&app);
    // Act
    let console = browser.get("/admin/").await;
    let api = app.get("/admin/api/v1/clients", None).await;
    // Assert
    assert_eq!(console.status, 404, "{}", console.html);
    api.assert_error(401, "invalid_token");
}
