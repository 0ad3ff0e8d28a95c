//! Brute force: lockout per username and per client address, and the audit trail.

use std::time::Duration;

use rotor::store::{AuditFilter, AuditKind, Outcome};
use tokio::task::JoinSet;

use crate::helpers::{Answer, Db, TestApp, add_user, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    failed_logins_lock_the_username_without_revealing_whether_it_exists,
    a_thousand_wrong_passwords_neither_get_through_nor_starve_other_users,
    address_lockout_believes_forwarded_for_only_from_trusted_proxies,
    audit_trail_records_issuance_refresh_reuse_revocation_and_lockout,
);

async fn login_as(
    app: &TestApp,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut req = app
        .http
        .post(app.token_url())
        .header("Authorization", app.client_basic())
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ]);
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip);
    }
    TestApp::read(req.send().await.unwrap()).await
}

async fn failed_logins_lock_the_username_without_revealing_whether_it_exists(db: Db) {
    // Arrange: the default limit of 5 failures per username.
    let app = spawn_app(db).await;
    for _ in 0..5 {
        login_as(&app, "alice", "wrong", None)
            .await
            .assert_error(400, "invalid_grant");
        login_as(&app, "ghost", "wrong", None)
            .await
            .assert_error(400, "invalid_grant");
    }
    // Act: the right password during the lockout.
    let locked = login_as(&app, "alice", &app.user.password, None).await;
    let ghost = login_as(&app, "ghost", "anything", None).await;
    // Assert: refused, and an unknown user gets exactly the same answer.
    locked.assert_error(400, "invalid_grant");
    assert!(locked.str("error_description").contains("try again later"));
    assert_eq!(locked.body, ghost.body);
    // The lock ends with its duration, and a success clears the count.
    app.advance(Duration::from_secs(15 * 60 + 1));
    login_as(&app, "alice", &app.user.password, None)
        .await
        .assert_ok();
}

async fn a_thousand_wrong_passwords_neither_get_through_nor_starve_other_users(db: Db) {
    // Arrange: behind a trusted balancer, the attacker and bob come from different
    // addresses.
    let app = spawn_app_with(db, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
    })
    .await;
    let settings = app.settings.clone();
    add_user(app.store.as_ref(), &settings, "bob", "bobs password").await;
    let attacker = async {
        let mut statuses = Vec::new();
        for _batch in 0..40 {
            let mut tasks = JoinSet::new();
            for i in 0..25 {
                let request = app
                    .http
                    .post(app.token_url())
                    .header("Authorization", app.client_basic())
                    .header("X-Forwarded-For", "203.0.113.66")
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", &format!("guess-{i}")),
                    ]);
                tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
            }
            statuses.extend(tasks.join_all().await);
        }
        statuses
    };
    let bob = async {
        let mut answers = Vec::new();
        for _ in 0..10 {
            answers.push(login_as(&app, "bob", "bobs password", Some("198.51.100.20")).await);
        }
        answers
    };
    // Act
    let (statuses, bobs) = tokio::join!(attacker, bob);
    // Assert: none of the 1,000 got through; every one of bob's logins did.
    assert_eq!(statuses.len(), 1000);
    // Guesses beyond the limit in flight are told to retry (503); once the limit's
    // failures are in, the username is locked (400).
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&400));
    for answer in &bobs {
        answer.assert_ok();
    }
    // At most the limit of guesses reached password hashing, however many ran at
    // once; the rest were refused by the lockout before any hashing, and none of
    // those wrote an audit row of its own.
    let events = app
        .store
        .audit_events(&AuditFilter {
            username: Some("alice".into()),
            limit: 2000,
            ..Default::default()
        })
        .await
        .unwrap();
    let hashed = events
        .iter()
        .filter(|e| e.outcome == Outcome::InvalidCredentials)
        .count();
    let max = usize::try_from(app.settings.lockout.max_failures_per_user).unwrap();
    assert!(hashed <= max, "{hashed} guesses reached password hashing");
    let lockouts = events
        .iter()
        .filter(|e| e.kind == AuditKind::Lockout)
        .count();
    assert_eq!(lockouts, 1);
    assert_eq!(events.len(), hashed + lockouts, "{events:?}");
    // The right password is refused while the lock lasts.
    login_as(&app, "alice", &app.user.password, Some("198.51.100.21"))
        .await
        .assert_error(400, "invalid_grant");
}

async fn address_lockout_believes_forwarded_for_only_from_trusted_proxies(db: Db) {
    // Behind a trusted proxy: the forwarded address is counted.
    let app = spawn_app_with(db.clone(), |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        s.lockout.max_failures_per_ip = 3;
    })
    .await;
    for user in ["u1", "u2", "u3"] {
        login_as(&app, user, "wrong", Some("203.0.113.5"))
            .await
            .assert_error(400, "invalid_grant");
    }
    login_as(&app, "alice", &app.user.password, Some("203.0.113.5"))
        .await
        .assert_error(400, "invalid_grant");
    login_as(&app, "alice", &app.user.password, Some("203.0.113.6"))
        .await
        .assert_ok();

    // Without trusted proxies, X-Forwarded-For is ignored: rotating it does not help.
    let mut settings = app.settings.clone();
    settings.server.trusted_proxies.clear();
    let mut direct = crate::helpers::spawn_instance(db, settings).await;
    direct.client = app.client.clone();
    for (i, user) in ["v1", "v2", "v3"].iter().enumerate() {
        let spoofed = format!("192.0.2.{i}");
        login_as(&direct, user, "wrong", Some(&spoofed))
            .await
            .assert_error(400, "invalid_grant");
    }
    login_as(&direct, "alice", &direct.user.password, Some("192.0.2.99"))
        .await
        .assert_error(400, "invalid_grant");
}

async fn audit_trail_records_issuance_refresh_reuse_revocation_and_lockout(db: Db) {
    let app = spawn_app_with(db, |s| s.lockout.max_failures_per_user = 2).await;
    let login = app.login().await;
    let refreshed = app.refresh(&login.refresh_token()).await;
    app.refresh(&login.refresh_token()).await; // reuse
    let second = app.login().await;
    app.revoke(&second.refresh_token(), None).await;
    for _ in 0..2 {
        login_as(&app, "alice", "wrong", None).await;
    }
    refreshed.assert_ok();

    let events = app
        .store
        .audit_events(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .rev()
        .map(|e| (e.kind.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("login", "success"),
            ("refresh", "success"),
            ("reuse_detected", "family_revoked"),
            ("login", "success"),
            ("revoked", "family"),
            ("login_failed", "invalid_credentials"),
            ("lockout", "username_locked"),
            ("login_failed", "invalid_credentials"),
        ]
    );
    for e in &events {
        assert_eq!(e.username.as_deref(), Some("alice"));
        assert_eq!(e.client_id.as_deref(), Some("app"));
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    }
    assert!(
        events
            .iter()
            .filter(|e| e.kind != AuditKind::LoginFailed && e.kind != AuditKind::Lockout)
            .all(|e| e.family_id.is_some())
    );
    // Filters: by client and by time.
    let later = app.clock.now() + Duration::from_secs(60);
    let none = app
        .store
        .audit_events(&AuditFilter {
            since: Some(later),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
