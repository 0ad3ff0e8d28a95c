use std::time::Duration;

use crate::helpers::{Db, TestClient, client_record, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    refresh_rotates_the_refresh_token_and_issues_a_new_access_token,
    spent_refresh_token_revokes_the_whole_family,
    reuse_detection_off_refuses_the_spent_token_but_keeps_the_family,
    narrowed_scope_applies_to_the_new_access_token_only,
    wider_scope_is_invalid_scope_and_leaves_the_token_usable,
    another_clients_refresh_token_is_invalid_grant_and_stays_usable,
    unknown_refresh_token_is_invalid_grant,
    refresh_token_lives_session_timeout_plus_extra_ttl,
    refresh_ttl_setting_replaces_the_default_lifetime,
    client_refresh_ttl_overrides_the_servers,
    refresh_counter_caps_the_refreshes_of_a_family,
    client_max_refreshes_overrides_the_servers,
    rotation_off_returns_the_same_refresh_token_until_it_expires,
    refresh_disabled_on_the_server_is_unsupported_grant_type,
    refresh_disabled_for_the_client_is_unauthorized_client,
    disabled_users_refresh_tokens_stop_working_at_once,
    removed_clients_refresh_tokens_stop_working_at_once,
    a_refresh_that_fails_before_committing_leaves_the_token_unspent,
);

async fn refresh_rotates_the_refresh_token_and_issues_a_new_access_token(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let login = app.login().await;
    // Act
    let refreshed = app.refresh(&login.refresh_token()).await;
    // Assert
    refreshed.assert_ok();
    assert_ne!(refreshed.refresh_token(), login.refresh_token());
    assert_ne!(refreshed.str("access_token"), login.str("access_token"));
    assert_eq!(refreshed.str("scope"), "read write");
    assert_eq!(refreshed.str("token_type"), "Bearer");
    let claims = app.verify_access_token(refreshed.str("access_token")).await;
    let first = app.verify_access_token(login.str("access_token")).await;
    assert_eq!(claims.sub, first.sub);
    assert_ne!(claims.jti, first.jti);
    // The new token works in turn: a chain of rotations.
    let mut current = refreshed.refresh_token();
    for _ in 0..5 {
        let next = app.refresh(&current).await;
        next.assert_ok();
        current = next.refresh_token();
    }
}

async fn spent_refresh_token_revokes_the_whole_family(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let first = login.refresh_token();
    let second = app.refresh(&first).await.refresh_token();
    let third = app.refresh(&second).await.refresh_token();
    // An unrelated login of the same user must survive.
    let other_login = app.login().await.refresh_token();

    // Act: the first token is presented again.
    let reuse = app.refresh(&first).await;

    // Assert: refused, and the newest token of the family is dead too.
    reuse.assert_error(400, "invalid_grant");
    assert!(reuse.str("error_description").contains("revoked"));
    app.refresh(&third).await.assert_error(400, "invalid_grant");
    let record = app
        .store
        .find_refresh_token(&rotor::crypto::token::TokenHash::of(&third))
        .await
        .unwrap()
        .unwrap();
    assert!(record.family_revoked);
    app.refresh(&other_login).await.assert_ok();
}

async fn reuse_detection_off_refuses_the_spent_token_but_keeps_the_family(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.reuse_detection = false).await;
    let first = app.login().await.refresh_token();
    let second = app.refresh(&first).await.refresh_token();
    app.refresh(&first).await.assert_error(400, "invalid_grant");
    app.refresh(&second).await.assert_ok();
}

async fn narrowed_scope_applies_to_the_new_access_token_only(db: Db) {
    let app = spawn_app(db).await;
    let rt = app.login().await.refresh_token();
    let narrowed = app
        .post_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "read"),
        ])
        .await;
    narrowed.assert_ok();
    assert_eq!(narrowed.str("scope"), "read");
    assert_eq!(
        app.verify_access_token(narrowed.str("access_token"))
            .await
            .scope,
        "read"
    );
    // RFC 6749 §6: the new refresh token keeps the original scope.
    let next = app.refresh(&narrowed.refresh_token()).await;
    next.assert_ok();
    assert_eq!(next.str("scope"), "read write");
}

async fn wider_scope_is_invalid_scope_and_leaves_the_token_usable(db: Db) {
    let app = spawn_app(db).await;
    let rt = app.login().await.refresh_token();
    app.post_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt),
        ("scope", "read admin"),
    ])
    .await
    .assert_error(400, "invalid_scope");
    app.refresh(&rt).await.assert_ok();
}

async fn another_clients_refresh_token_is_invalid_grant_and_stays_usable(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("other", None, "read write"))
        .await
        .unwrap();
    let other = TestClient {
        id: "other".into(),
        secret: None,
    };
    let rt = app.login().await.refresh_token();
    app.refresh_as(&other, &rt)
        .await
        .assert_error(400, "invalid_grant");
    app.refresh(&rt).await.assert_ok();
}

async fn unknown_refresh_token_is_invalid_grant(db: Db) {
    let app = spawn_app(db).await;
    app.refresh("rotor_rt_not-a-real-token")
        .await
        .assert_error(400, "invalid_grant");
    app.refresh("x").await.assert_error(400, "invalid_grant");
}

async fn refresh_token_lives_session_timeout_plus_extra_ttl(db: Db) {
    // Defaults: session_timeout 20m + extra_ttl 15m = 35 minutes.
    let app = spawn_app(db).await;
    let first = app.login().await.refresh_token();
    app.advance(Duration::from_secs(35 * 60 - 5));
    let second = app.refresh(&first).await;
    second.assert_ok();
    app.advance(Duration::from_secs(35 * 60 + 1));
    let expired = app.refresh(&second.refresh_token()).await;
    expired.assert_error(400, "invalid_grant");
    assert!(expired.str("error_description").contains("expired"));
}

async fn refresh_ttl_setting_replaces_the_default_lifetime(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.ttl = Some(Duration::from_secs(60))).await;
    let rt = app.login().await.refresh_token();
    app.advance(Duration::from_secs(61));
    app.refresh(&rt).await.assert_error(400, "invalid_grant");
}

async fn client_refresh_ttl_overrides_the_servers(db: Db) {
    let app = spawn_app(db).await;
    let mut record = client_record("long", None, "read");
    record.refresh_ttl = Some(Duration::from_secs(30 * 24 * 3600));
    app.store.create_client(&record).await.unwrap();
    let client = TestClient {
        id: "long".into(),
        secret: None,
    };
    let login = app.login_as(&client).await;
    app.advance(Duration::from_secs(10 * 24 * 3600));
    app.refresh_as(&client, &login.refresh_token())
        .await
        .assert_ok();
}

async fn refresh_counter_caps_the_refreshes_of_a_family(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.max_refreshes = 3).await;
    let mut rt = app.login().await.refresh_token();
    for _ in 0..3 {
        let answer = app.refresh(&rt).await;
        answer.assert_ok();
        rt = answer.refresh_token();
    }
    let over = app.refresh(&rt).await;
    over.assert_error(400, "invalid_grant");
    assert!(
        over.str("error_description").contains("limit of 3"),
        "{}",
        over.body
    );
    // A new login starts a new family with its own counter.
    let fresh = app.login().await.refresh_token();
    app.refresh(&fresh).await.assert_ok();
}

async fn client_max_refreshes_overrides_the_servers(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.max_refreshes = 100).await;
    let mut record = client_record("capped", None, "read");
    record.max_refreshes = Some(1);
    app.store.create_client(&record).await.unwrap();
    let client = TestClient {
        id: "capped".into(),
        secret: None,
    };
    let login = app.login_as(&client).await;
    let once = app.refresh_as(&client, &login.refresh_token()).await;
    once.assert_ok();
    app.refresh_as(&client, &once.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
}

async fn rotation_off_returns_the_same_refresh_token_until_it_expires(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.refresh.rotate = false;
        s.refresh.max_refreshes = 3;
    })
    .await;
    let login = app.login().await;
    let rt = login.refresh_token();
    for _ in 0..3 {
        let answer = app.refresh(&rt).await;
        answer.assert_ok();
        assert_eq!(answer.refresh_token(), rt);
        assert_ne!(answer.str("access_token"), login.str("access_token"));
    }
    // The counter still holds without rotation.
    app.refresh(&rt).await.assert_error(400, "invalid_grant");
}

async fn refresh_disabled_on_the_server_is_unsupported_grant_type(db: Db) {
    let app = spawn_app_with(db, |s| s.refresh.enabled = false).await;
    let login = app.login().await;
    login.assert_ok();
    assert!(login.body.get("refresh_token").is_none());
    app.refresh("rotor_rt_whatever")
        .await
        .assert_error(400, "unsupported_grant_type");
}

async fn refresh_disabled_for_the_client_is_unauthorized_client(db: Db) {
    let app = spawn_app(db).await;
    let mut record = client_record("password-only", None, "read");
    record.grant_types = vec![rotor::wire::GrantType::Password];
    app.store.create_client(&record).await.unwrap();
    let client = TestClient {
        id: "password-only".into(),
        secret: None,
    };
    let login = app.login_as(&client).await;
    login.assert_ok();
    assert!(login.body.get("refresh_token").is_none());
    app.post_form_as(
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rotor_rt_x"),
        ],
    )
    .await
    .assert_error(400, "unauthorized_client");
}

async fn disabled_users_refresh_tokens_stop_working_at_once(db: Db) {
    let app = spawn_app(db).await;
    let rt = app.login().await.refresh_token();
    app.store.set_user_disabled("alice", true).await.unwrap();
    app.refresh(&rt).await.assert_error(400, "invalid_grant");
}

async fn removed_clients_refresh_tokens_stop_working_at_once(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("temp", None, "read"))
        .await
        .unwrap();
    let client = TestClient {
        id: "temp".into(),
        secret: None,
    };
    let rt = app.login_as(&client).await.refresh_token();
    app.store.remove_client("temp").await.unwrap();
    // The client itself is gone: authentication fails first.
    app.refresh_as(&client, &rt)
        .await
        .assert_error(400, "invalid_client");
    // A client registered again under the same id does not inherit the tokens.
    app.store
        .create_client(&client_record("temp", None, "read"))
        .await
        .unwrap();
    app.refresh_as(&client, &rt)
        .await
        .assert_error(400, "invalid_grant");
}

/// Everything that can fail (here: a stored scope that does not parse) happens
/// before the token is consumed: the failed request spends nothing, so the
/// client's retry is not taken for reuse.
async fn a_refresh_that_fails_before_committing_leaves_the_token_unspent(db: Db) {
    // Arrange: a family whose stored scope is corrupt.
    let app = spawn_app(db).await;
    let user = app
        .store
        .find_user(&app.user.username)
        .await
        .unwrap()
        .unwrap();
    let token = rotor::crypto::token::RefreshToken::generate();
    let now = app.clock.now();
    app.store
        .create_family(&rotor::store::NewFamily {
            family_id: uuid::Uuid::new_v4(),
            client_id: app.client.id.clone(),
            user_id: Some(user.id),
            scope: "re\"ad".into(),
            created_at: now,
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: None,
            refresh: Some(rotor::store::NewRefreshToken {
                hash: token.hash(),
                issued_at: now,
                expires_at: now + Duration::from_secs(600),
            }),
            access: rotor::store::NewAccessToken {
                jti: uuid::Uuid::new_v4(),
                issued_at: now,
                expires_at: now + Duration::from_secs(60),
            },
        })
        .await
        .unwrap();
    // Act
    let answer = app.refresh(token.expose()).await;
    // Assert: refused, and the token is neither spent nor its family revoked.
    assert_ne!(answer.status, 200, "{:?}", answer.body);
    let record = app
        .store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.used_at.is_none(),
        "the failed refresh spent the token"
    );
    assert!(!record.family_revoked);
    assert_eq!(record.refresh_count, 0);
}
