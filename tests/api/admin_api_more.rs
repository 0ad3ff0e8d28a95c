//! The admin API's changes to clients, users, sessions and logins beyond create
//! and delete, the overview, the audit trail's filters, pages and export, and the
//! lookup of a pasted token: each on both stores, each change audited.

use rotor::{
    crypto::token::TokenHash,
    store::{AuditFilter, AuditKind, NewBrowserSession},
};
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use crate::admin_api::{admin_token, call, ops_client};
use crate::helpers::{Db, TestApp, TestClient, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    an_admin_edits_a_client_and_regenerates_its_secret,
    an_admin_resets_a_password_searches_users_and_unlocks_one,
    an_admin_lists_and_ends_browser_sessions_and_revokes_all_logins,
    the_overview_counts_what_happened_in_the_last_hour_and_day,
    the_overview_lists_the_running_instances_and_their_keys,
    the_audit_is_filtered_paged_by_key_and_exported_as_json_lines,
    a_pasted_token_is_found_by_its_hash_and_never_shown_back,
    retries_inside_the_window_show_in_the_chain_as_one_counted_event,
);

/// The admin changes whose target is `target`, newest first.
async fn changes_of(app: &TestApp, target: &str) -> Vec<rotor::store::AuditEvent> {
    app.store
        .audit_events(&AuditFilter {
            kind: Some(AuditKind::AdminChange),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target.as_deref() == Some(target))
        .collect()
}

async fn an_admin_edits_a_client_and_regenerates_its_secret(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let old = app.client.clone();

    // Act
    let patched = call(
        &app,
        "PATCH",
        "clients/app",
        Some(&admin),
        Some(json!({"scope": "read", "max_refreshes": 3, "refresh_ttl": "2h"})),
    )
    .await;
    let renewed = call(&app, "POST", "clients/app/secret", Some(&admin), None).await;

    // Assert
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["scope"], "read");
    assert_eq!(patched.body["max_refreshes"], 3);
    assert_eq!(patched.body["refresh_ttl"], "2h");
    assert_eq!(
        patched.body["grant_types"],
        json!(["password", "refresh_token"])
    );
    let stored = app.store.find_client("app").await.unwrap().unwrap();
    assert_eq!(stored.scopes, ["read"]);
    assert_eq!(stored.max_refreshes, Some(3));
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let secret = renewed.str("client_secret").to_owned();
    assert!(secret.len() >= 32);
    app.login_as(&old).await.assert_error(401, "invalid_client");
    let new = TestClient {
        id: "app".into(),
        secret: Some(secret),
    };
    let login = app.login_as(&new).await;
    login.assert_ok();
    assert_eq!(login.str("scope"), "read");
    // A null goes back to the server's setting.
    let back = call(
        &app,
        "PATCH",
        "clients/app",
        Some(&admin),
        Some(json!({"max_refreshes": null})),
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.get("max_refreshes").is_none(), "{}", back.body);
    assert_eq!(changes_of(&app, "client app").await.len(), 2);
    let secret_change = &changes_of(&app, "client app secret").await[0];
    assert_eq!(secret_change.actor.as_deref(), Some("user root"));
    assert_eq!(secret_change.username.as_deref(), Some("root"));
    // The rules of a new client, and the refusals of the API.
    call(
        &app,
        "PATCH",
        "clients/app",
        Some(&admin),
        Some(json!({"grant_types": ["implicit"]})),
    )
    .await
    .assert_error(400, "invalid_request");
    call(
        &app,
        "PATCH",
        "clients/app",
        Some(&admin),
        Some(json!({"colour": "blue"})),
    )
    .await
    .assert_error(400, "invalid_request");
    call(
        &app,
        "PATCH",
        "clients/nobody",
        Some(&admin),
        Some(json!({"scope": "read"})),
    )
    .await
    .assert_error(404, "not_found");
    call(&app, "POST", "clients/demo-cli/secret", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    call(&app, "POST", "clients/app/secret", None, None)
        .await
        .assert_error(401, "invalid_token");
}

async fn an_admin_resets_a_password_searches_users_and_unlocks_one(db: Db) {
    // Arrange: alice locked out by two wrong passwords.
    let app = spawn_app_with(db, |s| s.lockout.max_failures_per_user = 2).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    for _ in 0..2 {
        app.post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .await;
    }
    app.login().await.assert_error(400, "invalid_grant");

    // Act
    let found = call(&app, "GET", "users?q=ALI", Some(&admin), None).await;
    let unlocked = call(&app, "DELETE", "users/alice/lockout", Some(&admin), None).await;
    let after = call(&app, "GET", "users?q=alice", Some(&admin), None).await;
    let reset = call(
        &app,
        "POST",
        "users/alice/password",
        Some(&admin),
        Some(json!({})),
    )
    .await;

    // Assert
    let listed = found.body.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", found.body);
    assert_eq!(listed[0]["username"], "alice");
    assert!(listed[0]["locked_until"].is_string(), "{}", found.body);
    assert_eq!(unlocked.status, 204, "{}", unlocked.body);
    assert!(
        after.body[0].get("locked_until").is_none(),
        "{}",
        after.body
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    let password = reset.str("password").to_owned();
    app.login().await.assert_error(400, "invalid_grant");
    app.post_form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", &password),
    ])
    .await
    .assert_ok();
    // A chosen password is not shown back.
    let chosen = call(
        &app,
        "POST",
        "users/alice/password",
        Some(&admin),
        Some(json!({"password": "a chosen one"})),
    )
    .await;
    assert_eq!(chosen.body, json!({}));
    assert_eq!(changes_of(&app, "user alice password").await.len(), 2);
    assert_eq!(changes_of(&app, "user alice lockout").await.len(), 1);
    assert!(
        !app.store
            .audit_events(&AuditFilter {
                limit: 500,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|e| format!("{e:?}").contains(&password))
    );
    let nobody = call(&app, "GET", "users?q=nobody", Some(&admin), None).await;
    assert_eq!(nobody.body, json!([]));
    call(&app, "DELETE", "users/nobody/lockout", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    call(
        &app,
        "POST",
        "users/alice/password",
        Some(&admin),
        Some(json!({"password": ""})),
    )
    .await
    .assert_error(400, "invalid_request");
    call(&app, "GET", "users?sort=name", Some(&admin), None)
        .await
        .assert_error(400, "invalid_request");
}

async fn an_admin_lists_and_ends_browser_sessions_and_revokes_all_logins(db: Db) {
    // Arrange: a browser session of alice, and two logins of hers.
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let alice = app.store.find_user("alice").await.unwrap().unwrap();
    let now = app.clock.now();
    let session = Uuid::new_v4();
    app.store
        .create_session(&NewBrowserSession {
            id: session,
            hash: TokenHash::of("a session cookie"),
            user_id: alice.id,
            created_at: now,
            expires_at: now + Duration::hours(1),
            ip: Some("192.0.2.7".into()),
        })
        .await
        .unwrap();
    let first = app.login().await;
    let second = app.login().await;

    // Act
    let sessions = call(&app, "GET", "users/alice/sessions", Some(&admin), None).await;
    let ended = call(
        &app,
        "DELETE",
        &format!("sessions/{session}"),
        Some(&admin),
        None,
    )
    .await;
    let again = call(
        &app,
        "DELETE",
        &format!("sessions/{session}"),
        Some(&admin),
        None,
    )
    .await;
    let revoked = call(&app, "DELETE", "users/alice/families", Some(&admin), None).await;

    // Assert
    assert_eq!(sessions.status, 200, "{}", sessions.body);
    assert_eq!(sessions.body[0]["id"], session.to_string());
    assert_eq!(sessions.body[0]["state"], "active");
    assert_eq!(sessions.body[0]["ip"], "192.0.2.7");
    assert_eq!(ended.status, 204, "{}", ended.body);
    again.assert_error(404, "not_found");
    let listed = call(&app, "GET", "users/alice/sessions", Some(&admin), None).await;
    assert_eq!(listed.body[0]["state"], "ended");
    assert_eq!(revoked.body, json!({"revoked": 2}));
    for login in [first, second] {
        app.refresh(&login.refresh_token())
            .await
            .assert_error(400, "invalid_grant");
    }
    // All of a client's: only its logins.
    let third = app.login().await;
    let script = app
        .post_form_as(&ops, &[("grant_type", "client_credentials")])
        .await;
    script.assert_ok();
    let by_client = call(&app, "DELETE", "clients/app/families", Some(&admin), None).await;
    assert_eq!(by_client.body, json!({"revoked": 1}));
    app.refresh(&third.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(changes_of(&app, "user alice families").await.len(), 1);
    assert_eq!(changes_of(&app, "client app families").await.len(), 1);
    assert_eq!(
        changes_of(&app, &format!("session {session}")).await.len(),
        1
    );
    call(&app, "DELETE", "sessions/not-a-uuid", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    call(&app, "DELETE", "users/nobody/families", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    call(&app, "GET", "users/nobody/sessions", Some(&admin), None)
        .await
        .assert_error(404, "not_found");
}

async fn the_overview_counts_what_happened_in_the_last_hour_and_day(db: Db) {
    // Arrange: two logins, one refresh, one reuse; then a day passes for one more.
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let first = app.login().await;
    let refreshed = app.refresh(&first.refresh_token()).await;
    refreshed.assert_ok();
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    app.clock.advance(std::time::Duration::from_secs(2 * 3600));
    app.login().await.assert_ok();
    let admin = admin_token(&app, &ops).await;

    // Act
    let overview = call(&app, "GET", "overview", Some(&admin), None).await;

    // Assert
    assert_eq!(overview.status, 200, "{}", overview.body);
    let (hour, day) = (&overview.body["last_hour"], &overview.body["last_day"]);
    // The last hour: alice's second login and root's.
    assert_eq!(hour["logins"], 2, "{}", overview.body);
    assert_eq!(hour["refreshes"], 0);
    assert_eq!(day["logins"], 3, "{}", overview.body);
    assert_eq!(day["refreshes"], 1);
    assert_eq!(day["reuse_detections"], 1);
    assert_eq!(overview.body["users"], 2);
    let keys = overview.body["keys"].as_array().unwrap();
    assert_eq!(keys[0]["active"], true);
    assert!(overview.body["live_logins"].as_u64().unwrap() >= 2);
}

/// The instance ids the overview lists, with the key each signs with.
async fn instances_listed(app: &TestApp, admin: &str) -> Vec<(String, String)> {
    let overview = call(app, "GET", "overview", Some(admin), None).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    overview.body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["version"], env!("CARGO_PKG_VERSION"));
            assert!(!i["name"].as_str().unwrap().is_empty());
            (
                i["id"].as_str().unwrap().to_owned(),
                i["signing_kid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn the_overview_lists_the_running_instances_and_their_keys(db: Db) {
    // Arrange: a second instance on the same database, stopped by a signal.
    let app = spawn_app(db.clone()).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let second = rotor::app::Application::with_store(app.settings.clone(), db.open_store().await)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(second.run_until(async {
        let _ = stopped.await;
    }));
    let keys = call(&app, "GET", "keys", Some(&admin), None).await;
    let active = keys
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["active"] == true)
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let within = std::time::Duration::from_secs(10);

    // Act + Assert: both instances report themselves, each signing with the
    // active key.
    assert!(
        crate::settings::eventually(within, || async {
            instances_listed(&app, &admin).await.len() == 2
        })
        .await,
        "two instances listed within {within:?}"
    );
    let both = instances_listed(&app, &admin).await;
    assert!(both.iter().all(|(_, kid)| *kid == active), "{both:?}");
    assert_ne!(both[0].0, both[1].0);

    // Act: the second shuts down.
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    // Assert: it took its row with it.
    assert_eq!(instances_listed(&app, &admin).await.len(), 1);
}

async fn the_audit_is_filtered_paged_by_key_and_exported_as_json_lines(db: Db) {
    // Arrange: three refreshes, and other events around them.
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let mut token = app.login().await.refresh_token();
    for _ in 0..3 {
        let answer = app.refresh(&token).await;
        answer.assert_ok();
        token = answer.refresh_token();
    }
    call(
        &app,
        "PATCH",
        "clients/app",
        Some(&admin),
        Some(json!({"scope": "read write"})),
    )
    .await
    .assert_ok();

    // Act: two pages of two, following the Link header.
    let first = call(
        &app,
        "GET",
        "audit?kind=refresh&outcome=success&limit=2",
        Some(&admin),
        None,
    )
    .await;
    let link = first.header("link").unwrap().to_owned();
    let next = link
        .strip_prefix("</admin/api/v1/")
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("{link}"));
    let second = call(&app, "GET", next, Some(&admin), None).await;
    let export = app
        .http
        .get(format!("{}/admin/api/v1/audit/export", app.address))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();

    // Assert
    let kinds = |a: &crate::helpers::Answer| -> Vec<String> {
        a.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kinds(&first), ["refresh", "refresh"]);
    assert_eq!(kinds(&second), ["refresh"], "{}", second.body);
    assert!(second.header("link").is_none());
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let text = export.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored = app
        .store
        .audit_events(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(lines.len(), stored.len());
    assert_eq!(lines[0]["kind"], "admin_change");
    assert_eq!(lines[0]["actor"], "user root");
    assert_eq!(lines[0]["target"], "client app");
    for bad in ["audit?kind=nope", "audit?outcome=nope", "audit?before=x"] {
        call(&app, "GET", bad, Some(&admin), None)
            .await
            .assert_error(400, "invalid_request");
    }
    call(&app, "GET", "audit/export", None, None)
        .await
        .assert_error(401, "invalid_token");
}

async fn a_pasted_token_is_found_by_its_hash_and_never_shown_back(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let login = app.login().await;
    let spent = login.refresh_token();
    let next = app.refresh(&spent).await;
    next.assert_ok();
    let access = next.str("access_token").to_owned();

    // Act
    let lookup = |token: String| {
        let (app, admin) = (&app, &admin);
        async move {
            call(
                app,
                "POST",
                "tokens/lookup",
                Some(admin),
                Some(json!({ "token": token })),
            )
            .await
        }
    };
    let of_spent = lookup(spent.clone()).await;
    let of_live = lookup(next.refresh_token()).await;
    let of_access = lookup(access.clone()).await;
    let unknown = lookup("not a token of ours".into()).await;

    // Assert
    assert_eq!(of_spent.status, 200, "{}", of_spent.body);
    assert_eq!(of_spent.body["token_type"], "refresh_token");
    assert_eq!(of_spent.body["state"], "spent");
    assert_eq!(of_spent.body["subject"], "alice");
    assert_eq!(of_spent.body["client_id"], "app");
    assert_eq!(of_live.body["state"], "active");
    assert_eq!(of_live.body["family_id"], of_spent.body["family_id"]);
    assert_eq!(of_access.body["token_type"], "access_token");
    assert_eq!(of_access.body["family_id"], of_spent.body["family_id"]);
    unknown.assert_error(404, "not_found");
    for answer in [&of_spent, &of_live, &of_access] {
        let body = answer.body.to_string();
        assert!(!body.contains(&spent) && !body.contains(&access), "{body}");
    }
    let family = of_spent.body["family_id"].as_str().unwrap();
    call(
        &app,
        "DELETE",
        &format!("families/{family}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(lookup(next.refresh_token()).await.body["state"], "revoked");
    call(
        &app,
        "POST",
        "tokens/lookup",
        Some(&admin),
        Some(json!({"token": 3})),
    )
    .await
    .assert_error(400, "invalid_request");
}

async fn retries_inside_the_window_show_in_the_chain_as_one_counted_event(db: Db) {
    // Arrange: a refresh whose answer was lost, retried three times.
    let app = spawn_app_with(db.clone(), |s| {
        s.refresh.grace_period = std::time::Duration::from_secs(30);
    })
    .await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let old = app.login().await.refresh_token();
    app.refresh(&old).await.assert_ok();
    let events = db.count("select count(*) from audit_events").await;

    // Act
    for _ in 0..3 {
        app.advance(std::time::Duration::from_secs(2));
        app.refresh(&old).await.assert_ok();
    }
    let found = call(
        &app,
        "POST",
        "tokens/lookup",
        Some(&admin),
        Some(json!({ "token": old })),
    )
    .await;
    let family = found.str("family_id").to_owned();
    let chain = call(
        &app,
        "GET",
        &format!("families/{family}"),
        Some(&admin),
        None,
    )
    .await;

    // Assert: one event counting three, and no audit row per retry.
    let kinds: Vec<(&str, Option<u64>)> = chain.body["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["times"].as_u64()))
        .collect();
    assert_eq!(
        kinds,
        [("issued", None), ("refreshed", None), ("retried", Some(3))],
        "{}",
        chain.body
    );
    assert_eq!(db.count("select count(*) from audit_events").await, events);
}
