use crate::helpers::{Db, TestClient, client_record, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    revoking_a_refresh_token_ends_the_whole_family,
    revoking_an_access_token_ends_that_token_only,
    hint_is_a_preference_not_a_filter,
    unknown_expired_or_revoked_tokens_answer_200,
    unsupported_hint_is_unsupported_token_type,
    another_clients_token_is_not_revoked,
    revocation_authenticates_clients_like_the_token_endpoint,
    revocation_needs_a_token,
);

async fn revoking_a_refresh_token_ends_the_whole_family(db: Db) {
    // Arrange: a family with two refreshes; an unrelated login.
    let app = spawn_app(db).await;
    let login = app.login().await;
    let refreshed = app.refresh(&login.refresh_token()).await;
    let other = app.login().await;
    // Act
    let answer = app
        .revoke(&refreshed.refresh_token(), Some("refresh_token"))
        .await;
    // Assert
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    app.refresh(&refreshed.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    for at in [login.str("access_token"), refreshed.str("access_token")] {
        assert_eq!(
            app.introspect(at).await.body,
            serde_json::json!({"active": false})
        );
        app.get("/api/v1/me", Some(at))
            .await
            .assert_error(401, "invalid_token");
    }
    app.refresh(&other.refresh_token()).await.assert_ok();
}

async fn revoking_an_access_token_ends_that_token_only(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let access = login.str("access_token");
    assert_eq!(app.revoke(access, Some("access_token")).await.status, 200);
    assert_eq!(
        app.introspect(access).await.body,
        serde_json::json!({"active": false})
    );
    app.get("/api/v1/me", Some(access))
        .await
        .assert_error(401, "invalid_token");
    // The login goes on: its refresh token still works.
    let refreshed = app.refresh(&login.refresh_token()).await;
    refreshed.assert_ok();
    assert_eq!(
        app.get("/api/v1/me", Some(refreshed.str("access_token")))
            .await
            .status,
        200
    );
}

async fn hint_is_a_preference_not_a_filter(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    // A refresh token sent with the access_token hint is still found and revoked.
    assert_eq!(
        app.revoke(&login.refresh_token(), Some("access_token"))
            .await
            .status,
        200
    );
    app.refresh(&login.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    let second = app.login().await;
    assert_eq!(
        app.revoke(second.str("access_token"), Some("refresh_token"))
            .await
            .status,
        200
    );
    assert_eq!(
        app.introspect(second.str("access_token")).await.body["active"],
        false
    );
    // Without a hint, both kinds are found.
    let third = app.login().await;
    assert_eq!(app.revoke(&third.refresh_token(), None).await.status, 200);
    app.refresh(&third.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
}

async fn unknown_expired_or_revoked_tokens_answer_200(db: Db) {
    let app = spawn_app(db).await;
    assert_eq!(app.revoke("rotor_rt_unknown", None).await.status, 200);
    assert_eq!(
        app.revoke("not.a.jwt", Some("access_token")).await.status,
        200
    );
    let login = app.login().await;
    assert_eq!(app.revoke(&login.refresh_token(), None).await.status, 200);
    assert_eq!(app.revoke(&login.refresh_token(), None).await.status, 200);
    app.advance(std::time::Duration::from_secs(3600 * 24));
    let answer = app.revoke(login.str("access_token"), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

async fn unsupported_hint_is_unsupported_token_type(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    app.revoke(&login.refresh_token(), Some("id_token"))
        .await
        .assert_error(400, "unsupported_token_type");
    app.refresh(&login.refresh_token()).await.assert_ok();
}

async fn another_clients_token_is_not_revoked(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("other", None, "read"))
        .await
        .unwrap();
    let other = TestClient {
        id: "other".into(),
        secret: None,
    };
    let login = app.login().await;
    for token in [login.refresh_token(), login.str("access_token").to_owned()] {
        app.post_to("/oauth2/revoke", &other, &[("token", &token)])
            .await
            .assert_error(400, "unauthorized_client");
    }
    assert_eq!(
        app.introspect(login.str("access_token")).await.body["active"],
        true
    );
    app.refresh(&login.refresh_token()).await.assert_ok();
}

async fn revocation_authenticates_clients_like_the_token_endpoint(db: Db) {
    let app = spawn_app(db).await;
    let login = app.login().await;
    let wrong = TestClient {
        id: "app".into(),
        secret: Some("wrong".into()),
    };
    let answer = app
        .post_to(
            "/oauth2/revoke",
            &wrong,
            &[("token", &login.refresh_token())],
        )
        .await;
    answer.assert_error(401, "invalid_client");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    // curl style from existing servers: Basic + form with hint.
    let answer = crate::helpers::TestApp::read(
        app.http
            .post(format!("{}/oauth2/revoke", app.address))
            .header("Authorization", app.client_basic())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={}&token_type_hint=refresh_token",
                login.refresh_token()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    // A public client revokes its own tokens by client_id.
    app.store
        .create_client(&client_record("spa", None, "read"))
        .await
        .unwrap();
    let spa = TestClient {
        id: "spa".into(),
        secret: None,
    };
    let own = app.login_as(&spa).await;
    assert_eq!(
        app.post_to("/oauth2/revoke", &spa, &[("token", &own.refresh_token())])
            .await
            .status,
        200
    );
    app.refresh_as(&spa, &own.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
}

async fn revocation_needs_a_token(db: Db) {
    let app = spawn_app(db).await;
    app.post_to(
        "/oauth2/revoke",
        &app.client.clone(),
        &[("token_type_hint", "refresh_token")],
    )
    .await
    .assert_error(400, "invalid_request");
    let get = app.get("/oauth2/revoke", None).await;
    get.assert_error(405, "invalid_request");
}
