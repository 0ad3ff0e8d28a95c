use std::time::Duration;

use rotor::config::{SessionTimeout, SigningAlg};

use crate::helpers::{Db, TestApp, TestClient, client_record, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    password_grant_issues_access_and_refresh_tokens,
    access_token_is_an_rfc9068_jwt_for_the_user_and_client,
    rs256_is_selectable,
    wrong_password_and_unknown_user_get_the_same_answer,
    disabled_user_is_refused,
    requested_scope_within_the_clients_is_granted,
    scope_beyond_the_clients_is_invalid_scope,
    client_without_the_password_grant_is_unauthorized_client,
    client_without_refresh_tokens_gets_none,
    unlimited_session_timeout_issues_no_refresh_token,
    logins_beyond_the_hashing_queue_are_refused_with_503_and_retry_after,
);

async fn password_grant_issues_access_and_refresh_tokens(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    // Act
    let answer = app.login().await;
    // Assert
    answer.assert_ok();
    assert_eq!(answer.str("token_type"), "Bearer");
    assert_eq!(answer.body["expires_in"], 1200);
    assert_eq!(answer.str("scope"), "read write");
    assert!(answer.refresh_token().starts_with("rotor_rt_"));
    assert!(
        answer
            .refresh_token()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
}

async fn access_token_is_an_rfc9068_jwt_for_the_user_and_client(db: Db) {
    let app = spawn_app(db).await;
    let answer = app.login().await;
    answer.assert_ok();
    let claims = app.verify_access_token(answer.str("access_token")).await;
    let user = app.store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(claims.sub, user.id.to_string());
    assert_eq!(claims.iss, "https://rotor.test");
    assert_eq!(claims.aud, "rotor");
    assert_eq!(claims.client_id, "app");
    assert_eq!(claims.scope, "read write");
    assert_eq!(claims.exp - claims.iat, 1200);
    let header = jsonwebtoken::decode_header(answer.str("access_token")).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
}

async fn rs256_is_selectable(db: Db) {
    let app = spawn_app_with(db, |s| s.tokens.signing_alg = SigningAlg::RS256).await;
    let answer = app.login().await;
    answer.assert_ok();
    let header = jsonwebtoken::decode_header(answer.str("access_token")).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let claims = app.verify_access_token(answer.str("access_token")).await;
    assert_eq!(claims.client_id, "app");
}

async fn wrong_password_and_unknown_user_get_the_same_answer(db: Db) {
    let app = spawn_app(db).await;
    let wrong = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ])
        .await;
    let unknown = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "nope"),
        ])
        .await;
    wrong.assert_error(400, "invalid_grant");
    unknown.assert_error(400, "invalid_grant");
    assert_eq!(wrong.body, unknown.body);
}

async fn disabled_user_is_refused(db: Db) {
    let app = spawn_app(db).await;
    app.store.set_user_disabled("alice", true).await.unwrap();
    app.login().await.assert_error(400, "invalid_grant");
    app.store.set_user_disabled("alice", false).await.unwrap();
    app.login().await.assert_ok();
}

async fn requested_scope_within_the_clients_is_granted(db: Db) {
    let app = spawn_app(db).await;
    let answer = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &app.user.password),
            ("scope", "read"),
        ])
        .await;
    answer.assert_ok();
    assert_eq!(answer.str("scope"), "read");
    let claims = app.verify_access_token(answer.str("access_token")).await;
    assert_eq!(claims.scope, "read");
}

async fn scope_beyond_the_clients_is_invalid_scope(db: Db) {
    let app = spawn_app(db).await;
    let answer = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &app.user.password),
            ("scope", "read admin"),
        ])
        .await;
    answer.assert_error(400, "invalid_scope");
}

async fn client_without_the_password_grant_is_unauthorized_client(db: Db) {
    let app = spawn_app(db).await;
    let mut record = client_record(
        "refresh-only",
        Some("refresh-only-secret-0123456789-0123456789"),
        "read",
    );
    record.grant_types = vec![rotor::wire::GrantType::RefreshToken];
    app.store.create_client(&record).await.unwrap();
    let client = TestClient {
        id: "refresh-only".into(),
        secret: Some("refresh-only-secret-0123456789-0123456789".into()),
    };
    let answer = app.login_as(&client).await;
    answer.assert_error(400, "unauthorized_client");
}

async fn client_without_refresh_tokens_gets_none(db: Db) {
    let app = spawn_app(db).await;
    let mut record = client_record("no-refresh", None, "read");
    record.refresh_tokens = false;
    app.store.create_client(&record).await.unwrap();
    let client = TestClient {
        id: "no-refresh".into(),
        secret: None,
    };
    let answer = app.login_as(&client).await;
    answer.assert_ok();
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{}",
        answer.body
    );
}

async fn unlimited_session_timeout_issues_no_refresh_token(db: Db) {
    let app = spawn_app_with(db, |s| s.tokens.session_timeout = SessionTimeout::Unlimited).await;
    let answer = app.login().await;
    answer.assert_ok();
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{}",
        answer.body
    );
    let ten_years = Duration::from_secs(10 * 365 * 24 * 3600).as_secs();
    assert_eq!(answer.body["expires_in"], ten_years);
    let refused = app.refresh("rotor_rt_anything").await;
    refused.assert_error(400, "unsupported_grant_type");
    assert!(refused.str("error_description").contains("unlimited"));
}

async fn logins_beyond_the_hashing_queue_are_refused_with_503_and_retry_after(db: Db) {
    // Arrange: one hashing thread, room for one waiting login, and a hash costly
    // enough that a burst arrives while the first verification still runs.
    let app = spawn_app_with(db, |s| {
        s.passwords.memory_kib = 16 * 1024;
        s.passwords.iterations = 2;
        s.passwords.max_concurrent = 1;
        s.passwords.max_queue = 1;
    })
    .await;
    let logins: Vec<_> = (0..20)
        .map(|_| {
            app.http
                .post(app.token_url())
                .header("Authorization", app.client_basic())
                .form(&[
                    ("grant_type", "password"),
                    ("username", app.user.username.as_str()),
                    ("password", app.user.password.as_str()),
                ])
        })
        .collect();

    // Act: all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for login in logins {
        tasks.spawn(async move { TestApp::read(login.send().await.unwrap()).await });
    }
    let answers = tasks.join_all().await;

    // Assert: the ones that found the queue full were told to come back; none failed.
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!refused.is_empty(), "no login was refused");
    assert!(
        answers.iter().any(|a| a.status == 200),
        "no login succeeded"
    );
    for answer in &answers {
        assert!(matches!(answer.status, 200 | 503), "{answer:?}");
    }
    for answer in refused {
        answer.assert_error(503, "temporarily_unavailable");
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    // The refused logins did not count as failed ones: the user is not locked out.
    app.login().await.assert_ok();
}
