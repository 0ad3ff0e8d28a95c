use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rotor::{
    Application,
    keyring::{self, KeyRing, MIN_RELOAD_INTERVAL},
};
use time::OffsetDateTime;

use crate::helpers::{Db, TestApp, spawn_app, spawn_instance};
use crate::on_both_stores;

on_both_stores!(
    me_shows_the_full_token_cycle,
    bad_bearer_tokens_are_invalid_token,
    me_refuses_an_access_token_from_exp_plus_leeway_on,
    unknown_kids_read_the_keys_at_most_once_a_second_and_a_new_key_is_seen_after_it,
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

/// Moves the (frozen) server clock to exactly `instant`.
pub fn advance_to(app: &TestApp, instant: OffsetDateTime) {
    let by = instant - app.clock.now();
    app.advance(by.try_into().expect("a later instant"));
}

/// The instant from which RFC 7519 §4.1.4 refuses a token: its `exp` plus the leeway.
pub async fn refused_from(app: &TestApp, access_token: &str) -> OffsetDateTime {
    let exp = app.verify_access_token(access_token).await.exp;
    OffsetDateTime::from_unix_timestamp(exp).unwrap() + app.settings.tokens.leeway
}

async fn me_refuses_an_access_token_from_exp_plus_leeway_on(db: Db) {
    // Arrange: a token issued on a stopped server clock.
    let app = spawn_app(db).await;
    app.clock.freeze();
    let login = app.login().await;
    let token = login.str("access_token");
    let refused_from = refused_from(&app, token).await;

    // Act + Assert: valid a nanosecond before exp + leeway ...
    advance_to(&app, refused_from - time::Duration::nanoseconds(1));
    app.get("/api/v1/me", Some(token)).await.assert_ok();
    // ... and refused exactly at it.
    app.advance(Duration::from_nanos(1));
    app.get("/api/v1/me", Some(token))
        .await
        .assert_error(401, "invalid_token");
}

/// A seeded server, and the key ring of the instance the returned app talks to.
async fn spawn_app_watching_keys(db: Db) -> (TestApp, Arc<KeyRing>) {
    let seeded = spawn_app(db.clone()).await;
    let store = db.open_store().await;
    let server = Application::with_store(seeded.settings.clone(), store.clone())
        .await
        .unwrap();
    let ring = server.state().keys.clone();
    let app = TestApp {
        address: format!("http://{}", server.local_addr().unwrap()),
        store,
        clock: server.state().clock.clone(),
        ..seeded
    };
    tokio::spawn(server.run_until_stopped());
    (app, ring)
}

/// An at+jwt token naming `kid`, with a signature of nobody's.
fn token_with_kid(kid: &str) -> String {
    let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    let claims = serde_json::json!({"sub": "mallory", "exp": 4_000_000_000_i64});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 64]),
    )
}

async fn unknown_kids_read_the_keys_at_most_once_a_second_and_a_new_key_is_seen_after_it(db: Db) {
    // Arrange: an instance on a stopped clock, whose reads of the keys the test counts.
    let (app, ring) = spawn_app_watching_keys(db.clone()).await;
    app.clock.freeze();

    // Act + Assert: bursts of unauthenticated requests naming kids nobody holds read
    // the store at most once in a second, and exactly once in the next.
    let before = ring.reloads();
    for i in 0..20 {
        app.get("/api/v1/me", Some(&token_with_kid(&format!("forged-{i}"))))
            .await
            .assert_error(401, "invalid_token");
    }
    assert!(
        ring.reloads() - before <= 1,
        "{} reads",
        ring.reloads() - before
    );
    app.advance(MIN_RELOAD_INTERVAL);
    let before = ring.reloads();
    for i in 0..20 {
        app.get("/api/v1/me", Some(&token_with_kid(&format!("forged-{i}"))))
            .await
            .assert_error(401, "invalid_token");
    }
    assert_eq!(ring.reloads() - before, 1);

    // Another instance rotates the key and signs with the new one.
    let new_key = keyring::rotate(
        app.store.as_ref(),
        app.settings.tokens.signing_alg,
        app.clock.now(),
        app.settings.max_access_token_lifetime(),
        &keyring::cipher(&app.settings.keys),
    )
    .await
    .unwrap();
    let mut other = spawn_instance(db, app.settings.clone()).await;
    other.client = app.client.clone();
    let login = other.login().await;
    let token = login.str("access_token");
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(kid, new_key.kid);

    // Within the second of the last read its token is refused; once the second has
    // passed, the first sight of its kid brings the key in.
    app.get("/api/v1/me", Some(token))
        .await
        .assert_error(401, "invalid_token");
    app.advance(MIN_RELOAD_INTERVAL);
    let before = ring.reloads();
    app.get("/api/v1/me", Some(token)).await.assert_ok();
    assert_eq!(ring.reloads() - before, 1);
    app.get("/api/v1/me", Some(token)).await.assert_ok();
    assert_eq!(ring.reloads() - before, 1);
}
