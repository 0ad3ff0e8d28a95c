use std::time::Duration;

use rotor::{http::cache, keyring};

use crate::helpers::{Db, client_record, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    metadata_matches_the_configuration,
    metadata_without_refresh_or_public_clients,
    key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key,
    metadata_shows_a_new_clients_scope_once_the_cache_interval_has_passed,
);

async fn metadata_matches_the_configuration(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("spa", None, "profile read"))
        .await
        .unwrap();
    let m = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    m.assert_ok();
    let b = &m.body;
    assert_eq!(b["issuer"], "https://rotor.test");
    assert_eq!(b["token_endpoint"], "https://rotor.test/oauth2/token");
    assert_eq!(b["revocation_endpoint"], "https://rotor.test/oauth2/revoke");
    assert_eq!(
        b["introspection_endpoint"],
        "https://rotor.test/oauth2/introspect"
    );
    assert_eq!(b["jwks_uri"], "https://rotor.test/oauth2/jwks");
    assert_eq!(
        b["authorization_endpoint"],
        "https://rotor.test/oauth2/authorize"
    );
    assert_eq!(
        b["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials"
        ])
    );
    // RFC 8414 §2, RFC 7636 §4.2, RFC 9207 §3.
    assert_eq!(b["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        b["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(b["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        b["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        b["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        b["scopes_supported"],
        serde_json::json!(["profile", "read", "write"])
    );
}

async fn metadata_without_refresh_or_public_clients(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.enabled = false).await;
    let b = app
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .body;
    assert_eq!(
        b["grant_types_supported"],
        serde_json::json!(["authorization_code", "password", "client_credentials"])
    );
    assert_eq!(
        b["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
}

async fn key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(db: Db) {
    // Arrange: a token signed by the first key.
    let app = spawn_app(db).await;
    let before = app.login().await;
    let old_kid = jsonwebtoken::decode_header(before.str("access_token"))
        .unwrap()
        .kid
        .unwrap();

    // Act: rotate, as `rotor keys rotate` does, and let the reload interval pass.
    // SQLite keeps key creation times in whole seconds and the newest key signs, so
    // the rotation happens a second after the first key was made.
    app.advance(Duration::from_secs(1));
    let lifetime = app.settings.max_access_token_lifetime();
    let new_key = keyring::rotate(
        app.store.as_ref(),
        app.settings.tokens.signing_alg,
        app.clock.now(),
        lifetime,
        &keyring::cipher(&app.settings.keys),
    )
    .await
    .unwrap();
    app.advance(app.settings.keys.reload_interval + Duration::from_secs(1));

    // Assert: new tokens carry the new kid; old tokens still validate; both published.
    let after = app.login().await;
    let new_kid = jsonwebtoken::decode_header(after.str("access_token"))
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(new_kid, new_key.kid);
    assert_ne!(new_kid, old_kid);
    app.get("/api/v1/me", Some(before.str("access_token")))
        .await
        .assert_ok();
    app.get("/api/v1/me", Some(after.str("access_token")))
        .await
        .assert_ok();
    let jwks = app.get("/oauth2/jwks", None).await.body;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // Once every token of the old key has expired, the old key is dropped.
    app.advance(lifetime + Duration::from_secs(120));
    keyring::rotate(
        app.store.as_ref(),
        app.settings.tokens.signing_alg,
        app.clock.now(),
        lifetime,
        &keyring::cipher(&app.settings.keys),
    )
    .await
    .unwrap();
    app.advance(app.settings.keys.reload_interval + Duration::from_secs(1));
    let jwks = app.get("/oauth2/jwks", None).await.body;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(!kids.contains(&old_kid.as_str()), "{kids:?}");
    assert_eq!(kids.len(), 2, "{kids:?}");
}

async fn metadata_shows_a_new_clients_scope_once_the_cache_interval_has_passed(db: Db) {
    // Arrange: the document as first served, then a new public client.
    const PATH: &str = "/.well-known/oauth-authorization-server";
    let app = spawn_app(db).await;
    let first = app.get(PATH, None).await;
    first.assert_ok();
    assert_eq!(
        first.body["scopes_supported"],
        serde_json::json!(["read", "write"])
    );
    app.store
        .create_client(&client_record("spa", None, "profile read"))
        .await
        .unwrap();

    // Act
    let within = app.get(PATH, None).await.body;
    app.advance(cache::INTERVAL);
    let after = app.get(PATH, None).await.body;

    // Assert: the clients are not read again per request, but within the interval.
    assert_eq!(within, first.body);
    assert_eq!(
        after["scopes_supported"],
        serde_json::json!(["profile", "read", "write"])
    );
    assert_eq!(
        after["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
}
