use rotor::{Application, keyring};

use crate::helpers::{Db, spawn_app_with, test_settings};
use crate::on_both_stores;

on_both_stores!(signing_keys_are_sealed_under_the_configured_secret);

const SECRET: &str = "first-secret-0123456789";

async fn signing_keys_are_sealed_under_the_configured_secret(db: Db) {
    // Arrange: a server with keys.secret issues a token.
    let app = spawn_app_with(db.clone(), |s| s.keys.secret = Some(SECRET.into())).await;
    let login = app.login().await;
    login.assert_ok();

    // Assert: what the store keeps is sealed, not a usable DER key.
    let stored = app.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].private_key.starts_with(b"rotor-sealed-key-v1:"));
    assert_ne!(stored[0].private_key.first(), Some(&0x30));
    // So is the key of DPoP nonces.
    let nonce_key = app
        .store
        .find_server_secret("dpop-nonce")
        .await
        .unwrap()
        .unwrap();
    assert!(nonce_key.starts_with(b"rotor-sealed-key-v1:"));

    // Without the secret, the keys cannot be loaded: no instance can sign.
    let mut without = test_settings();
    without.keys.secret = None;
    assert!(
        Application::with_store(without, db.open_store().await)
            .await
            .is_err()
    );

    // A new secret with the old one as previous opens them; resealing moves them over.
    let mut rotated = test_settings();
    rotated.keys.secret = Some("second-secret-0123456789".into());
    rotated.keys.previous_secrets = vec![SECRET.into()];
    assert_eq!(
        keyring::reseal(app.store.as_ref(), &keyring::cipher(&rotated.keys))
            .await
            .unwrap(),
        1
    );
    let mut only_new = test_settings();
    only_new.keys.secret = Some("second-secret-0123456789".into());
    let second = crate::helpers::spawn_instance(db, only_new).await;
    // The token signed before the secret change still validates on it.
    second
        .get("/api/v1/me", Some(login.str("access_token")))
        .await
        .assert_ok();
}
