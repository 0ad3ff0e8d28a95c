//! `/healthz`, `/readyz`, `/metrics`, request ids and the periodic clean-up.

use std::time::Duration;

use rotor::{crypto::token::RefreshToken, http::cache};

use crate::helpers::{Db, TestApp, TestClient, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    health_is_ok_and_readiness_follows_the_store,
    metrics_count_token_requests_by_grant_type_and_outcome,
    expired_logins_are_cleaned_up_periodically,
    audit_events_and_lockout_counters_past_their_retention_are_cleaned_up,
    scrapes_count_the_active_families_at_most_once_per_interval,
);

impl TestApp {
    async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }
}

async fn health_is_ok_and_readiness_follows_the_store(db: Db) {
    // Arrange
    let app = spawn_app(db).await;

    // Act + Assert: both up.
    let health = TestApp::read(app.get_raw("/healthz").await).await;
    assert_eq!((health.status, health.str("status")), (200, "ok"));
    let ready = TestApp::read(app.get_raw("/readyz").await).await;
    assert_eq!((ready.status, ready.str("status")), (200, "ready"));

    // The store goes away: not ready, still alive.
    app.store.close().await;
    let ready = TestApp::read(app.get_raw("/readyz").await).await;
    ready.assert_error(503, "temporarily_unavailable");
    assert_eq!(ready.header("retry-after"), Some("1"));
    assert_eq!(app.get_raw("/healthz").await.status(), 200);
}

async fn metrics_count_token_requests_by_grant_type_and_outcome(db: Db) {
    // Arrange: a success of each grant, a reuse, a bad secret, a bad password.
    let app = spawn_app(db).await;
    let first = app.login().await.refresh_token();
    app.refresh(&first).await.assert_ok();
    app.refresh(&first).await.assert_error(400, "invalid_grant");
    let wrong_secret = TestClient {
        id: app.client.id.clone(),
        secret: Some("not-the-secret-0123456789-0123456789".into()),
    };
    app.post_form_as(
        &wrong_secret,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "x"),
        ],
    )
    .await
    .assert_error(401, "invalid_client");
    app.post_form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong"),
    ])
    .await
    .assert_error(400, "invalid_grant");
    app.login().await.assert_ok();

    // Act
    let response = app.get_raw("/metrics").await;

    // Assert
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    for line in [
        r#"rotor_token_requests_total{grant_type="password",outcome="success"} 2"#,
        r#"rotor_token_requests_total{grant_type="refresh_token",outcome="success"} 1"#,
        r#"rotor_token_requests_total{grant_type="refresh_token",outcome="reuse_detected"} 1"#,
        r#"rotor_token_requests_total{grant_type="password",outcome="invalid_client"} 1"#,
        r#"rotor_token_requests_total{grant_type="password",outcome="invalid_grant"} 1"#,
        r#"rotor_token_request_duration_seconds_count{grant_type="password"} 4"#,
        r#"rotor_revocations_total{reason="reuse_detected"} 1"#,
        // The reused login is revoked; the last one is live.
        "rotor_active_families 1",
        "rotor_password_hash_queue_depth 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

async fn expired_logins_are_cleaned_up_periodically(db: Db) {
    // Arrange: a login, then the clock past its refresh token's life.
    let app = spawn_app_with(db, |s| {
        s.cleanup.enabled = true;
        s.cleanup.interval = Duration::from_secs(1);
        s.cleanup.batch_size = 1;
    })
    .await;
    let rt = RefreshToken::parse(app.login().await.refresh_token());
    let live = RefreshToken::parse(app.login().await.refresh_token());
    assert!(
        app.store
            .find_refresh_token(&rt.hash())
            .await
            .unwrap()
            .is_some()
    );
    app.advance(Duration::from_secs(2 * 24 * 3600));

    // Act: wait for the clean-up (bounded).
    let counted = r#"rotor_cleanup_deleted_total{kind="family"} 2"#;
    let mut done = false;
    for _ in 0..100 {
        let first = app.store.find_refresh_token(&rt.hash()).await.unwrap();
        let second = app.store.find_refresh_token(&live.hash()).await.unwrap();
        let text = app.get_raw("/metrics").await.text().await.unwrap();
        if first.is_none() && second.is_none() && text.lines().any(|l| l == counted) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: both families went (one per batch), and the metrics say so.
    assert!(done, "the clean-up did not remove the expired logins");
}

async fn audit_events_and_lockout_counters_past_their_retention_are_cleaned_up(db: Db) {
    // Arrange: failed sign-ins leave audit events and a lockout counter.
    let app = spawn_app_with(db.clone(), |s| {
        s.cleanup.enabled = true;
        s.cleanup.interval = Duration::from_secs(1);
        s.audit.retention = Duration::from_secs(60);
        s.lockout.window = Duration::from_secs(60);
    })
    .await;
    for _ in 0..3 {
        app.post_form(&[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "guess"),
        ])
        .await
        .assert_error(400, "invalid_grant");
    }
    assert!(db.count("select count(*) from audit_events").await >= 3);
    assert!(db.count("select count(*) from login_failures").await >= 1);
    app.advance(Duration::from_secs(61));

    // Act: wait for the clean-up (bounded).
    let mut left = (i64::MAX, i64::MAX);
    for _ in 0..100 {
        left = (
            db.count("select count(*) from audit_events").await,
            db.count("select count(*) from login_failures").await,
        );
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert_eq!(left, (0, 0), "audit events and counters left");
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn responses_carry_the_balancers_request_id_or_a_fresh_one(pool: sqlx::SqlitePool) {
    let app = spawn_app(Db::sqlite(pool)).await;
    let url = format!("{}/healthz", app.address);

    let kept = app
        .http
        .get(&url)
        .header("x-request-id", "nginx-0123abcd")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "nginx-0123abcd");

    let replaced = app
        .http
        .get(&url)
        .header("x-request-id", "forged value\twith spaces")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let fresh = app.http.get(&url).send().await.unwrap();
    assert!(fresh.headers().contains_key("x-request-id"));
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn readiness_fails_once_a_shutdown_has_begun(pool: sqlx::SqlitePool) {
    let db = Db::sqlite(pool);
    let store = db.open_store().await;
    let app = rotor::Application::with_store(crate::helpers::test_settings(), store)
        .await
        .unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    let lifecycle = app.state().lifecycle.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();

    assert_eq!(
        http.get(format!("{address}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    lifecycle.begin_drain();
    let answer = TestApp::read(http.get(format!("{address}/readyz")).send().await.unwrap()).await;
    answer.assert_error(503, "temporarily_unavailable");
    db.close().await;
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn metrics_can_be_turned_off(pool: sqlx::SqlitePool) {
    let app = spawn_app_with(Db::sqlite(pool), |s| s.metrics.enabled = false).await;
    let answer = TestApp::read(app.get_raw("/metrics").await).await;
    answer.assert_error(404, "invalid_request");
}

async fn scrapes_count_the_active_families_at_most_once_per_interval(db: Db) {
    // Arrange: a first scrape, then a login.
    let app = spawn_app(db).await;
    let scrape = || async { app.get_raw("/metrics").await.text().await.unwrap() };
    let counted = |text: &str, n: u32| {
        let line = format!("rotor_active_families {n}");
        text.lines().any(|l| l == line)
    };
    let first = scrape().await;
    app.login().await.assert_ok();

    // Act
    let within = scrape().await;
    app.advance(cache::INTERVAL);
    let after = scrape().await;

    // Assert: a scrape does not count the table again before the interval is over.
    assert!(counted(&first, 0), "{first}");
    assert!(counted(&within, 0), "{within}");
    assert!(counted(&after, 1), "{after}");
}
