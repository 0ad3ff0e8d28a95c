use crate::helpers::{Db, spawn_app};
use crate::on_both_stores;

on_both_stores!(database_dump_contains_no_plain_token_password_or_secret);

async fn database_dump_contains_no_plain_token_password_or_secret(db: Db) {
    // Arrange: tokens issued, refreshed, reused.
    let app = spawn_app(db.clone()).await;
    let login = app.login().await;
    let refreshed = app.refresh(&login.refresh_token()).await;
    refreshed.assert_ok();
    let second_login = app.login().await;
    app.refresh(&login.refresh_token()).await; // reuse: revokes the family

    // Act
    let dump = db.dump().await;

    // Assert
    assert!(dump.contains("alice"), "the dump should hold the user rows");
    let secrets = [
        login.refresh_token(),
        refreshed.refresh_token(),
        second_login.refresh_token(),
        login.str("access_token").to_owned(),
        refreshed.str("access_token").to_owned(),
        app.user.password.clone(),
        app.client.secret.clone().unwrap(),
    ];
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "the dump holds a secret in clear"
        );
        // Nor the random part alone.
        let tail = &secret[secret.len() - 20..];
        assert!(
            !dump.contains(tail),
            "the dump holds part of a secret in clear"
        );
    }
}
