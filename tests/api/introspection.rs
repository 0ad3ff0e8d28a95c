use std::time::Duration;

use crate::bearer::{advance_to, refused_from};
use crate::helpers::{Db, TestClient, client_record, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    active_access_token_is_described,
    access_token_is_inactive_from_exp_plus_leeway_on,
    active_refresh_token_is_described,
    anything_else_is_exactly_inactive,
    reuse_detection_makes_the_familys_access_tokens_inactive_at_once,
    public_clients_may_not_introspect,
);

async fn active_access_token_is_described(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let answer = app.introspect(login.str("access_token")).await;
    answer.assert_ok();
    let claims = app.verify_access_token(login.str("access_token")).await;
    let b = &answer.body;
    assert_eq!(b["active"], true);
    assert_eq!(b["scope"], "read write");
    assert_eq!(b["client_id"], "app");
    assert_eq!(b["username"], "alice");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["exp"], claims.exp);
    assert_eq!(b["iat"], claims.iat);
    assert_eq!(b["sub"], claims.sub);
    assert_eq!(b["aud"], "rotor");
    assert_eq!(b["iss"], "https://rotor.test");
    assert_eq!(b["jti"], claims.jti);
}

async fn access_token_is_inactive_from_exp_plus_leeway_on(db: Db) {
    // Arrange: a token issued on a stopped server clock.
    let app = spawn_app(db).await;
    app.clock.freeze();
    let login = app.login().await;
    let token = login.str("access_token");
    let refused_from = refused_from(&app, token).await;

    // Act + Assert: active a nanosecond before exp + leeway ...
    advance_to(&app, refused_from - time::Duration::nanoseconds(1));
    assert_eq!(app.introspect(token).await.body["active"], true);
    // ... and exactly inactive at it.
    app.advance(Duration::from_nanos(1));
    assert_eq!(
        app.introspect(token).await.body,
        serde_json::json!({"active": false})
    );
}

async fn active_refresh_token_is_described(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let b = app.introspect(&login.refresh_token()).await.body;
    assert_eq!(b["active"], true);
    assert_eq!(b["token_type"], "refresh_token");
    assert_eq!(b["username"], "alice");
    assert_eq!(b["client_id"], "app");
    assert_eq!(b["scope"], "read write");
    assert_eq!(
        b["exp"].as_i64().unwrap() - b["iat"].as_i64().unwrap(),
        35 * 60
    );
    assert!(b["jti"].is_string() && !login.refresh_token().contains(b["jti"].as_str().unwrap()));
}

async fn anything_else_is_exactly_inactive(db: Db) {
    let app = spawn_app(db).await;
    let inactive = serde_json::json!({"active": false});
    // garbage
    assert_eq!(app.introspect("garbage").await.body, inactive);
    // used refresh token (reuse detection off so the family survives the check)
    let login = app.login().await;
    let used = login.refresh_token();
    let next = app.refresh(&used).await;
    assert_eq!(app.introspect(&used).await.body, inactive);
    assert_eq!(
        app.introspect(&next.refresh_token()).await.body["active"],
        true
    );
    // revoked family
    app.revoke(&next.refresh_token(), None).await;
    assert_eq!(app.introspect(&next.refresh_token()).await.body, inactive);
    // expired access and refresh tokens
    let fresh = app.login().await;
    app.advance(Duration::from_secs(36 * 60));
    assert_eq!(
        app.introspect(fresh.str("access_token")).await.body,
        inactive
    );
    assert_eq!(app.introspect(&fresh.refresh_token()).await.body, inactive);
}

async fn reuse_detection_makes_the_familys_access_tokens_inactive_at_once(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let refreshed = app.refresh(&login.refresh_token()).await;
    let access = refreshed.str("access_token");
    assert_eq!(app.introspect(access).await.body["active"], true);
    assert_eq!(app.get("/api/v1/me", Some(access)).await.status, 200);
    // Reuse of the spent token.
    app.refresh(&login.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.introspect(access).await.body,
        serde_json::json!({"active": false})
    );
    app.get("/api/v1/me", Some(access))
        .await
        .assert_error(401, "invalid_token");
}

async fn public_clients_may_not_introspect(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("spa", None, "read"))
        .await
        .unwrap();
    let spa = TestClient {
        id: "spa".into(),
        secret: None,
    };
    let login = app.login().await;
    app.post_to(
        "/oauth2/introspect",
        &spa,
        &[("token", login.str("access_token"))],
    )
    .await
    .assert_error(400, "invalid_client");
    let bad = TestClient {
        id: "app".into(),
        secret: Some("nope".into()),
    };
    app.post_to(
        "/oauth2/introspect",
        &bad,
        &[("token", login.str("access_token"))],
    )
    .await
    .assert_error(401, "invalid_client");
}
