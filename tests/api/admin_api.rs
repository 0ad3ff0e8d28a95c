//! The admin API (`/admin/api/v1/…`): who may use it, what it changes, what it
//! shows of a login's refresh chain, and that every change is audited.

use rotor::{store::AuditFilter, wire::GrantType};
use serde_json::{Value, json};

use crate::helpers::{Answer, Db, TestApp, TestClient, add_user, client_record, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    the_api_needs_an_admin_token,
    an_admin_creates_lists_and_removes_clients,
    an_admin_manages_users_and_roles,
    the_chain_of_a_login_shows_its_refreshes_and_the_reuse,
    a_revoked_family_stops_its_tokens_and_is_audited,
    keys_and_audit_are_listed,
    bad_input_is_a_json_error_never_a_500,
    settings_changed_through_the_api_apply_and_show_their_source,
);

const OPS_SECRET: &str = "ops-secret-ops-secret-ops-secret-000";

/// A confidential client `ops` allowed the admin scope through the password grant
/// and client_credentials.
pub(crate) async fn ops_client(app: &TestApp) -> TestClient {
    let mut record = client_record("ops", Some(OPS_SECRET), "rotor:admin read");
    record.grant_types = vec![
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];
    app.store.create_client(&record).await.unwrap();
    TestClient {
        id: "ops".into(),
        secret: Some(OPS_SECRET.into()),
    }
}

/// An access token of `username` through `ops` with `scope`.
pub(crate) async fn user_token(
    app: &TestApp,
    ops: &TestClient,
    username: &str,
    password: &str,
    scope: &str,
) -> String {
    let answer = app
        .post_form_as(
            ops,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", scope),
            ],
        )
        .await;
    answer.assert_ok();
    answer.str("access_token").to_owned()
}

/// An admin user `root` and its token.
pub(crate) async fn admin_token(app: &TestApp, ops: &TestClient) -> String {
    add_user(app.store.as_ref(), &app.settings, "root", "root password").await;
    app.store.set_user_admin("root", true).await.unwrap();
    user_token(app, ops, "root", "root password", "rotor:admin").await
}

pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let url = format!("{}/admin/api/v1/{path}", app.address);
    let mut request = app.http.request(method.parse().unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.unwrap()).await
}

async fn the_api_needs_an_admin_token(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let no_scope = user_token(&app, &ops, "root", "root password", "read").await;
    let not_admin = user_token(
        &app,
        &ops,
        "alice",
        "correct horse battery staple",
        "rotor:admin",
    )
    .await;
    let script = app
        .post_form_as(
            &ops,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "rotor:admin"),
            ],
        )
        .await;
    let script = script.str("access_token").to_owned();
    // Act / Assert
    let none = call(&app, "GET", "clients", None, None).await;
    none.assert_error(401, "invalid_token");
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    call(&app, "GET", "clients", Some("not-a-token"), None)
        .await
        .assert_error(401, "invalid_token");
    call(&app, "GET", "clients", Some(&no_scope), None)
        .await
        .assert_error(403, "insufficient_scope");
    call(&app, "GET", "clients", Some(&not_admin), None)
        .await
        .assert_error(403, "insufficient_scope");
    call(&app, "GET", "clients", Some(&admin), None)
        .await
        .assert_ok();
    call(&app, "GET", "clients", Some(&script), None)
        .await
        .assert_ok();
    // A disabled admin, and an admin whose role was withdrawn, are refused at once.
    app.store.set_user_disabled("root", true).await.unwrap();
    call(&app, "GET", "users", Some(&admin), None)
        .await
        .assert_error(403, "insufficient_scope");
    app.store.set_user_disabled("root", false).await.unwrap();
    app.store.set_user_admin("root", false).await.unwrap();
    call(&app, "GET", "users", Some(&admin), None)
        .await
        .assert_error(403, "insufficient_scope");
}

async fn an_admin_creates_lists_and_removes_clients(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    // Act
    let created = call(
        &app,
        "POST",
        "clients",
        Some(&admin),
        Some(json!({
            "client_id": "billing",
            "client_name": "Billing",
            "grant_types": ["client_credentials"],
            "scope": "read write",
            "token_endpoint_auth_method": "client_secret_basic"
        })),
    )
    .await;
    let spa = call(
        &app,
        "POST",
        "clients",
        Some(&admin),
        Some(json!({
            "client_id": "spa",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1/callback"],
            "scope": "read",
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true
        })),
    )
    .await;
    // Assert
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.str("client_secret").to_owned();
    let billing = TestClient {
        id: "billing".into(),
        secret: Some(secret),
    };
    app.post_form_as(&billing, &[("grant_type", "client_credentials")])
        .await
        .assert_ok();
    assert_eq!(spa.status, 201, "{:?}", spa.body);
    assert!(spa.body.get("client_secret").is_none());
    assert_eq!(spa.body["token_endpoint_auth_method"], "none");
    assert_eq!(spa.body["dpop_bound_access_tokens"], true);
    assert_eq!(created.body["dpop_bound_access_tokens"], false);
    let listed = call(&app, "GET", "clients", Some(&admin), None).await;
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"billing") && ids.contains(&"spa"));
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none())
    );
    call(
        &app,
        "POST",
        "clients",
        Some(&admin),
        Some(json!({"client_id": "spa"})),
    )
    .await
    .assert_error(409, "conflict");
    assert_eq!(
        call(&app, "DELETE", "clients/billing", Some(&admin), None)
            .await
            .status,
        204
    );
    call(&app, "GET", "clients/billing", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.post_form_as(&billing, &[("grant_type", "client_credentials")])
        .await
        .assert_error(401, "invalid_client");
    // Audited with the actor and the target.
    let events = app
        .store
        .audit_events(&AuditFilter {
            username: Some("root".into()),
            limit: 50,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let targets: Vec<&str> = events.iter().filter_map(|e| e.target.as_deref()).collect();
    assert!(targets.contains(&"client billing"), "{targets:?}");
    assert!(targets.contains(&"client spa"));
}

async fn an_admin_manages_users_and_roles(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    // Act
    let bob = call(
        &app,
        "POST",
        "users",
        Some(&admin),
        Some(json!({"username": "bob"})),
    )
    .await;
    let disabled = call(
        &app,
        "PATCH",
        "users/bob",
        Some(&admin),
        Some(json!({"disabled": true, "admin": true})),
    )
    .await;
    // Assert
    assert_eq!(bob.status, 201, "{:?}", bob.body);
    let password = bob.str("password").to_owned();
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(disabled.body["admin"], true);
    let login = app
        .post_form_as(
            &ops,
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", &password),
            ],
        )
        .await;
    login.assert_error(400, "invalid_grant");
    call(
        &app,
        "PATCH",
        "users/bob",
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await
    .assert_ok();
    let bob_admin = user_token(&app, &ops, "bob", &password, "rotor:admin").await;
    call(&app, "GET", "users/bob", Some(&bob_admin), None)
        .await
        .assert_ok();
    call(&app, "GET", "users/nobody", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    call(
        &app,
        "POST",
        "users",
        Some(&admin),
        Some(json!({"username": "bob"})),
    )
    .await
    .assert_error(409, "conflict");
}

async fn the_chain_of_a_login_shows_its_refreshes_and_the_reuse(db: Db) {
    // Arrange: alice logs in, refreshes twice, then presents a spent token.
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let first = app.login().await;
    let second = app.refresh(&first.refresh_token()).await;
    let third = app.refresh(&second.refresh_token()).await;
    third.assert_ok();
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    // Act
    let families = call(&app, "GET", "users/alice/families", Some(&admin), None).await;
    let family = &families.body.as_array().unwrap()[0];
    let id = family["id"].as_str().unwrap();
    let detail = call(&app, "GET", &format!("families/{id}"), Some(&admin), None).await;
    // Assert
    assert_eq!(family["client_id"], "app");
    assert_eq!(family["refresh_count"], 2);
    assert_eq!(family["state"], "revoked");
    assert!(family["created_at"].is_string());
    assert!(family["last_refresh_at"].is_string(), "{family}");
    // The address of its newest event: the reuse, from this test's loopback.
    assert_eq!(family["ip"], "127.0.0.1");
    let kinds: Vec<&str> = detail.body["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["issued", "refreshed", "refreshed", "reuse_detected"]
    );
    assert!(detail.body["chain"][0]["at"].is_string());
    assert_eq!(detail.body["chain"][3]["outcome"], "family_revoked");
}

async fn a_revoked_family_stops_its_tokens_and_is_audited(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let login = app.login().await;
    let families = call(&app, "GET", "users/alice/families", Some(&admin), None).await;
    let id = families.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(families.body[0]["state"], "active");
    // Act
    let revoked = call(
        &app,
        "DELETE",
        &format!("families/{id}"),
        Some(&admin),
        None,
    )
    .await;
    // Assert
    assert_eq!(revoked.status, 204);
    app.get("/api/v1/me", Some(login.str("access_token")))
        .await
        .assert_error(401, "invalid_token");
    app.refresh(&login.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    let chain = call(&app, "GET", &format!("families/{id}"), Some(&admin), None).await;
    let last = chain.body["chain"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["kind"], "revoked");
    assert_eq!(last["by"], "root");
    call(
        &app,
        "DELETE",
        "families/00000000-0000-0000-0000-000000000000",
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
}

async fn keys_and_audit_are_listed(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    // Act
    let before = call(&app, "GET", "keys", Some(&admin), None).await;
    let rotated = call(&app, "POST", "keys/rotate", Some(&admin), None).await;
    let after = call(&app, "GET", "keys", Some(&admin), None).await;
    let audit = call(&app, "GET", "audit?user=root&limit=10", Some(&admin), None).await;
    // Assert
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let keys = after.body.as_array().unwrap();
    assert_eq!(keys.len(), before.body.as_array().unwrap().len() + 1);
    let active: Vec<&Value> = keys.iter().filter(|k| k["active"] == true).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["kid"], rotated.body["kid"]);
    let kinds: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"admin_change"), "{kinds:?}");
    assert!(kinds.contains(&"login"));
    call(&app, "GET", "audit?since=yesterday", Some(&admin), None)
        .await
        .assert_error(400, "invalid_request");
}

async fn bad_input_is_a_json_error_never_a_500(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    // Act / Assert
    for (method, path, body) in [
        ("POST", "clients", Some(json!({"client_id": "a\u{0}b"}))),
        (
            "POST",
            "clients",
            Some(json!({"client_id": "x", "grant_types": ["implicit"]})),
        ),
        (
            "POST",
            "clients",
            Some(json!({"client_id": "x", "token_endpoint_auth_method": "tls"})),
        ),
        (
            "POST",
            "clients",
            Some(json!({"client_id": "x", "unknown": 1})),
        ),
        ("POST", "clients", Some(json!([1, 2]))),
        ("POST", "users", Some(json!({"username": ""}))),
        ("PATCH", "users/alice", Some(json!({"disabled": "yes"}))),
        ("GET", "audit?limit=many", None),
        ("GET", "audit?user=%00", None),
    ] {
        let answer = call(&app, method, path, Some(&admin), body).await;
        answer.assert_error(400, "invalid_request");
    }
    for path in ["clients/a%00b", "users/%00", "families/%00"] {
        let answer = call(&app, "GET", path, Some(&admin), None).await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{path}: {}",
            answer.status
        );
        assert!(answer.body["error"].is_string(), "{path}");
    }
    call(&app, "GET", "families/not-a-uuid", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
}

async fn settings_changed_through_the_api_apply_and_show_their_source(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let login = app.login().await;
    // Act
    let changed = call(
        &app,
        "PATCH",
        "settings",
        Some(&admin),
        Some(json!({"refresh.max_refreshes": 1})),
    )
    .await;
    let refused = call(
        &app,
        "PATCH",
        "settings",
        Some(&admin),
        Some(json!({"refresh.grace_period": "10m", "refresh.max_refreshes": 7})),
    )
    .await;
    let unknown = call(
        &app,
        "PATCH",
        "settings",
        Some(&admin),
        Some(json!({"server.bind": "x"})),
    )
    .await;
    let shown = call(&app, "GET", "settings", Some(&admin), None).await;
    // Assert
    changed.assert_ok();
    refused.assert_error(400, "invalid_request");
    unknown.assert_error(400, "invalid_request");
    let max = shown
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "refresh.max_refreshes")
        .unwrap()
        .clone();
    assert_eq!(max["value"], "1", "the refused change stored nothing");
    assert_eq!(max["source"], "database");
    assert_eq!(max["updated_by"], "user root");
    let first = app.refresh(&login.refresh_token()).await;
    first.assert_ok();
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
}
