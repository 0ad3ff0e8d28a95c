//! The admin console (`/admin/`): its login through rotor's own authorization
//! code flow, who may use it, its security headers, its form tokens, and that
//! its changes are audited.

use rotor::store::{AuditFilter, AuditKind, CreatedPage};

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
    a_client_edited_in_the_console_and_its_new_secret_are_audited,
    a_clients_dpop_nonce_rule_is_chosen_in_the_console,
    settings_changed_in_the_console_are_in_force_and_audited,
    a_password_reset_and_an_unlock_in_the_console,
    sessions_end_and_all_logins_are_revoked_from_the_console,
    a_pasted_token_is_looked_up_and_never_shown_back,
    the_audit_page_filters_pages_and_exports,
    every_new_form_refuses_a_post_without_its_token,
    with_console_bind_the_console_has_a_listener_of_its_own,
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
pub(crate) async fn admin_browser(app: &TestApp) -> Browser<'_> {
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
        ("/admin/audit?kind=login&outcome=success", "Audit"),
        ("/admin/users?q=ro", "Users"),
        ("/admin/settings", "Settings"),
        ("/admin/lookup", "Token lookup"),
        ("/admin/clients/edit?client_id=app", "Client app"),
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
            &CreatedPage {
                before: None,
                limit: 10,
            },
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
        .list_families(
            user.id,
            app.clock.now(),
            &CreatedPage {
                before: None,
                limit: 10,
            },
        )
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

/// `page`'s form posting to `action`, with `fields` set (replacing any hidden
/// input of the same name).
fn filled(page: &Seen, action: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = page
        .form_inputs(action)
        .into_iter()
        .filter(|(name, _)| !fields.iter().any(|(n, _)| n == name))
        .collect();
    for (name, value) in fields {
        form.push(((*name).into(), (*value).into()));
    }
    form
}

/// The admin changes of `target` by root.
async fn changes_of(app: &TestApp, target: &str) -> usize {
    app.store
        .audit_events(&AuditFilter {
            kind: Some(AuditKind::AdminChange),
            limit: 200,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|e| e.target.as_deref() == Some(target) && e.actor.as_deref() == Some("user root"))
        .count()
}

async fn a_client_edited_in_the_console_and_its_new_secret_are_audited(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let page = browser.get("/admin/clients/edit?client_id=app").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let form = filled(
        &page,
        "/admin/clients/edit",
        &[
            ("grant_password", "on"),
            ("grant_refresh_token", "on"),
            ("refresh_tokens", "on"),
            ("pkce_required", "on"),
            ("scopes", "read"),
            ("max_refreshes", "2"),
            ("grace_period", "30s"),
        ],
    );

    // Act
    let saved = browser.post("/admin/clients/edit", &form).await;
    let page = browser.get("/admin/clients/edit?client_id=app").await;
    let renewed = browser
        .post(
            "/admin/clients/secret",
            &page.form_inputs("/admin/clients/secret"),
        )
        .await;

    // Assert
    assert_eq!(saved.status, 303, "{}", saved.html);
    let client = app.store.find_client("app").await.unwrap().unwrap();
    assert_eq!(client.scopes, ["read"]);
    assert_eq!(client.max_refreshes, Some(2));
    assert_eq!(
        client.grace_period,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(renewed.status, 200, "{}", renewed.html);
    assert!(renewed.html.contains("shown this once"));
    assert_secure_page(&renewed);
    app.login().await.assert_error(401, "invalid_client");
    assert_eq!(changes_of(&app, "client app").await, 1);
    assert_eq!(changes_of(&app, "client app secret").await, 1);
    let again = browser.get("/admin/clients/edit?client_id=app").await;
    assert!(!again.html.contains("shown this once"));
    // The rules and messages of the CLI; the console's own client stays as it is.
    let refused = browser
        .post(
            "/admin/clients/edit",
            &filled(&again, "/admin/clients/edit", &[("grace_period", "10m")]),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.html.contains("--grace-period must be at most 120s"),
        "{}",
        refused.html
    );
    let console_client = browser
        .post(
            "/admin/clients/edit",
            &filled(
                &again,
                "/admin/clients/edit",
                &[("client_id", "rotor-console")],
            ),
        )
        .await;
    assert_eq!(console_client.status, 400, "{}", console_client.html);
}

async fn a_clients_dpop_nonce_rule_is_chosen_in_the_console(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let page = browser.get("/admin/clients/edit?client_id=app").await;
    assert!(
        page.html.contains(r#"<option value="server" selected>"#),
        "{}",
        page.html
    );

    for (choice, rule) in [
        ("required", Some(true)),
        ("not_required", Some(false)),
        ("server", None),
    ] {
        // Act
        let page = browser.get("/admin/clients/edit?client_id=app").await;
        let saved = browser
            .post(
                "/admin/clients/edit",
                &filled(&page, "/admin/clients/edit", &[("dpop_nonce", choice)]),
            )
            .await;

        // Assert
        assert_eq!(saved.status, 303, "{choice}: {}", saved.html);
        let client = app.store.find_client("app").await.unwrap().unwrap();
        assert_eq!(client.dpop.require_nonce, rule, "{choice}");
        let shown = browser.get("/admin/clients/edit?client_id=app").await;
        assert!(
            shown
                .html
                .contains(&format!(r#"<option value="{choice}" selected>"#)),
            "{choice}: {}",
            shown.html
        );
    }
    let page = browser.get("/admin/clients/edit?client_id=app").await;
    let refused = browser
        .post(
            "/admin/clients/edit",
            &filled(&page, "/admin/clients/edit", &[("dpop_nonce", "sometimes")]),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.html);
    assert!(
        refused
            .html
            .contains("DPoP nonces must be server, required or not_required"),
        "{}",
        refused.html
    );
}

async fn settings_changed_in_the_console_are_in_force_and_audited(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let page = browser.get("/admin/settings").await;
    assert!(page.html.contains("refresh.max_refreshes"), "{}", page.html);

    // Act
    let set = browser
        .post(
            "/admin/settings",
            &filled(
                &page,
                "/admin/settings",
                &[
                    ("key", "refresh.max_refreshes"),
                    ("value", "1"),
                    ("action", "set"),
                ],
            ),
        )
        .await;
    let refused = browser
        .post(
            "/admin/settings",
            &filled(
                &page,
                "/admin/settings",
                &[
                    ("key", "refresh.grace_period"),
                    ("value", "1h"),
                    ("action", "set"),
                ],
            ),
        )
        .await;

    // Assert
    assert_eq!(set.status, 200, "{}", set.html);
    assert!(
        set.html.contains("refresh.max_refreshes = 1 stored."),
        "{}",
        set.html
    );
    assert!(set.html.contains("database"));
    let login = app.login().await;
    let first = app.refresh(&login.refresh_token()).await;
    first.assert_ok();
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .html
            .contains("refresh.grace_period: must be at most 120s"),
        "{}",
        refused.html
    );
    assert_eq!(changes_of(&app, "setting refresh.max_refreshes").await, 1);
    assert_eq!(changes_of(&app, "setting refresh.grace_period").await, 0);
    // Back to the file's value.
    let unset = browser
        .post(
            "/admin/settings",
            &filled(
                &set,
                "/admin/settings",
                &[("key", "refresh.max_refreshes"), ("action", "unset")],
            ),
        )
        .await;
    assert_eq!(unset.status, 200, "{}", unset.html);
    assert_eq!(changes_of(&app, "setting refresh.max_refreshes").await, 2);
}

async fn a_password_reset_and_an_unlock_in_the_console(db: Db) {
    // Arrange: alice locked out.
    let app = spawn_app_with(db, |s| s.lockout.max_failures_per_user = 2).await;
    let mut browser = admin_browser(&app).await;
    for _ in 0..2 {
        app.post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .await;
    }
    let page = browser.get("/admin/users?q=alice").await;
    assert!(page.html.contains("locked until"), "{}", page.html);
    assert!(!page.html.contains("<td>root</td>"), "{}", page.html);

    // Act
    let unlocked = browser
        .post(
            "/admin/users/update",
            &filled(&page, "/admin/users/update", &[("action", "unlock")]),
        )
        .await;
    let page = browser.get("/admin/users?q=alice").await;
    let reset = browser
        .post(
            "/admin/users/password",
            &filled(&page, "/admin/users/password", &[("password", "")]),
        )
        .await;

    // Assert
    assert_eq!(unlocked.status, 303, "{}", unlocked.html);
    assert!(!page.html.contains("locked until"), "{}", page.html);
    assert_eq!(reset.status, 200, "{}", reset.html);
    assert_secure_page(&reset);
    let shown = reset
        .html
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("{}", reset.html))
        .to_owned();
    app.login().await.assert_error(400, "invalid_grant");
    app.post_form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", &shown),
    ])
    .await
    .assert_ok();
    assert_eq!(changes_of(&app, "user alice lockout").await, 1);
    assert_eq!(changes_of(&app, "user alice password").await, 1);
}

async fn sessions_end_and_all_logins_are_revoked_from_the_console(db: Db) {
    // Arrange: root's own browser session (from signing in) and a login of alice.
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let alice = app.login().await;
    let page = browser.get("/admin/families?user=root").await;
    assert!(page.html.contains("Browser sessions"), "{}", page.html);
    assert!(page.html.contains("End session"), "{}", page.html);

    // Act
    let revoked = browser
        .post(
            "/admin/users/revoke-logins",
            &filled(
                &page,
                "/admin/users/revoke-logins",
                &[("username", "alice")],
            ),
        )
        .await;
    let ended = browser
        .post(
            "/admin/sessions/end",
            &page.form_inputs("/admin/sessions/end"),
        )
        .await;

    // Assert
    assert_eq!(revoked.status, 303, "{}", revoked.html);
    assert_eq!(
        revoked.location.as_deref(),
        Some("/admin/families?user=alice")
    );
    app.refresh(&alice.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(ended.status, 303, "{}", ended.html);
    let root = app.store.find_user("root").await.unwrap().unwrap();
    let sessions = app
        .store
        .list_sessions(
            root.id,
            &CreatedPage {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert!(sessions[0].ended_at.is_some());
    assert_eq!(changes_of(&app, "user alice families").await, 1);
    assert_eq!(
        changes_of(&app, &format!("session {}", sessions[0].id)).await,
        1
    );
}

async fn a_pasted_token_is_looked_up_and_never_shown_back(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let token = app.login().await.refresh_token();
    let page = browser.get("/admin/lookup").await;

    // Act
    let found = browser
        .post(
            "/admin/lookup",
            &filled(&page, "/admin/lookup", &[("token", &token)]),
        )
        .await;
    let unknown = browser
        .post(
            "/admin/lookup",
            &filled(&page, "/admin/lookup", &[("token", "nope")]),
        )
        .await;

    // Assert
    assert_eq!(found.status, 200, "{}", found.html);
    assert_secure_page(&found);
    assert!(found.html.contains("A refresh_token"), "{}", found.html);
    assert!(found.html.contains("alice"));
    assert!(!found.html.contains(&token));
    assert_eq!(unknown.status, 404);
    assert!(
        !app.store
            .audit_events(&AuditFilter {
                limit: 500,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|e| format!("{e:?}").contains(&token))
    );
}

async fn the_audit_page_filters_pages_and_exports(db: Db) {
    // Arrange: more refreshes than a page holds.
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let mut token = app.login().await.refresh_token();
    for _ in 0..101 {
        let answer = app.refresh(&token).await;
        answer.assert_ok();
        token = answer.refresh_token();
    }

    // Act
    let first = browser.get("/admin/audit?kind=refresh").await;
    let next = first
        .html
        .split("<a href=\"")
        .filter_map(|a| a.split_once("\" rel=\"next\""))
        .map(|(href, _)| href.replace("&#38;", "&").replace("&amp;", "&"))
        .next()
        .unwrap_or_else(|| panic!("no next link: {}", first.html));
    let second = browser.get(&next).await;
    let export = browser.get("/admin/audit/export?kind=refresh").await;

    // Assert
    assert_eq!(first.status, 200);
    assert_eq!(first.html.matches("<td>refresh</td>").count(), 100);
    assert!(!first.html.contains("<td>login</td>"));
    assert_eq!(second.status, 200, "{}", second.html);
    assert_eq!(second.html.matches("<td>refresh</td>").count(), 1, "{next}");
    assert!(!second.html.contains("rel=\"next\""));
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    assert_eq!(export.html.lines().count(), 101);
    let bad = browser.get("/admin/audit?kind=nope").await;
    assert_eq!(bad.status, 400);
    assert_secure_page(&bad);
}

async fn every_new_form_refuses_a_post_without_its_token(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut browser = admin_browser(&app).await;
    let before = app.store.find_client("app").await.unwrap().unwrap();
    let field = |name: &str, value: &str| (name.to_owned(), value.to_owned());

    // Act / Assert: each form without csrf_token changes nothing.
    for (action, form) in [
        (
            "/admin/clients/edit",
            vec![field("client_id", "app"), field("scopes", "x")],
        ),
        ("/admin/clients/secret", vec![field("client_id", "app")]),
        (
            "/admin/clients/revoke-logins",
            vec![field("client_id", "app")],
        ),
        ("/admin/users/password", vec![field("username", "alice")]),
        (
            "/admin/users/revoke-logins",
            vec![field("username", "alice")],
        ),
        (
            "/admin/sessions/end",
            vec![field("session_id", "00000000-0000-0000-0000-000000000000")],
        ),
        (
            "/admin/settings",
            vec![field("key", "refresh.enabled"), field("value", "false")],
        ),
        ("/admin/lookup", vec![field("token", "x")]),
    ] {
        let mut form = form;
        form.push(field(
            "issued",
            &app.clock.now().unix_timestamp().to_string(),
        ));
        let refused = browser.post(action, &form).await;
        assert_eq!(refused.status, 400, "{action}: {}", refused.html);
        assert_secure_page(&refused);
    }
    let after = app.store.find_client("app").await.unwrap().unwrap();
    assert_eq!(
        (after.scopes, after.secret_hash),
        (before.scopes, before.secret_hash)
    );
    assert!(app.store.list_settings().await.unwrap().is_empty());
    app.login().await.assert_ok();
}

async fn with_console_bind_the_console_has_a_listener_of_its_own(db: Db) {
    // Arrange: a free loopback port for the console's listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console_url = format!("http://127.0.0.1:{port}");
    let mut settings = crate::helpers::test_settings();
    settings.console.bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    settings.console.url = Some(console_url.clone());
    let store = db.open_store().await;
    let server = rotor::Application::with_store(settings, store.clone())
        .await
        .unwrap();
    let main = format!("http://{}", server.local_addr().unwrap());
    let console = format!("http://{}", server.console_addr().unwrap().unwrap());
    tokio::spawn(server.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Act
    let on_main = http.get(format!("{main}/admin/")).send().await.unwrap();
    let on_console = http.get(format!("{console}/admin/")).send().await.unwrap();
    let token_on_console = http
        .post(format!("{console}/oauth2/token"))
        .send()
        .await
        .unwrap();
    let api_on_main = http
        .get(format!("{main}/admin/api/v1/users"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(console, console_url);
    assert_eq!(on_main.status(), 404);
    assert_eq!(on_console.status(), 302);
    let location = on_console.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://rotor.test/oauth2/authorize?"),
        "{location}"
    );
    let redirect_uri = format!("{console_url}/admin/callback");
    assert!(
        location.contains(
            &form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
        ),
        "{location}"
    );
    let client = store.find_client("rotor-console").await.unwrap().unwrap();
    assert_eq!(client.code_flow.redirect_uris, [redirect_uri]);
    assert_eq!(token_on_console.status(), 404);
    assert_eq!(api_on_main.status(), 401);
}
