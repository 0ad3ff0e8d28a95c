use std::time::Duration;

use crate::helpers::{Db, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    me_shows_the_full_token_cycle,
    bad_bearer_tokens_are_invalid_token
);

async fn me_shows_the_full_token_cycle(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let login = app.login().await;
    // Act + Assert: the token works ...
    let me = app.get("/api/v1/me", Some(login.str("access_token"))).await;
    me.assert_ok();
    let user = app.store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(
        me.body,
        serde_json::json!({"sub": user.id.to_string(), "client_id": "app", "scope": "read write"})
    );
    // ... until it expires ...
    app.advance(Duration::from_secs(20 * 60 + 2));
    let expired = app.get("/api/v1/me", Some(login.str("access_token"))).await;
    expired.assert_error(401, "invalid_token");
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    // ... then a refresh gives one that works again.
    let refreshed = app.refresh(&login.refresh_token()).await;
    refreshed.assert_ok();
    app.get("/api/v1/me", Some(refreshed.str("access_token")))
        .await
        .assert_ok();
}

async fn bad_bearer_tokens_are_invalid_token(db: Db) {
    let app = spawn_app(db).await;
    let missing = app.get("/api/v1/me", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some(r#"Bearer realm="rotor""#)
    );
    app.get("/api/v1/me", Some("garbage"))
        .await
        .assert_error(401, "invalid_token");
    // A refresh token is no access token.
    let login = app.login().await;
    app.get("/api/v1/me", Some(&login.refresh_token()))
        .await
        .assert_error(401, "invalid_token");
    // A tampered signature.
    let jwt = login.str("access_token");
    let tampered = format!(
        "{}{}",
        &jwt[..jwt.len() - 4],
        if jwt.ends_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        }
    );
    app.get("/api/v1/me", Some(&tampered))
        .await
        .assert_error(401, "invalid_token");
    // A disabled user's tokens stop at once.
    app.store.set_user_disabled("alice", true).await.unwrap();
    app.get("/api/v1/me", Some(jwt))
        .await
        .assert_error(401, "invalid_token");
}
