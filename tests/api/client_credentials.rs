//! The client credentials grant (RFC 6749 §4.4): a confidential client's token for
//! itself, introspected, revoked and audited like any other; no refresh token.

use rotor::{
    store::{AuditFilter, AuditKind, Outcome},
    wire::GrantType,
};

use crate::helpers::{Db, TestApp, TestClient, client_record, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    a_confidential_client_gets_a_token_for_itself_and_no_refresh_token,
    the_token_is_introspected_revoked_and_audited_like_any_other,
    a_public_client_or_one_not_allowed_the_grant_is_unauthorized_client,
    the_scope_is_a_subset_of_the_clients,
);

/// Adds a confidential client `svc` allowed only client_credentials.
async fn service_client(app: &TestApp) -> TestClient {
    let secret = "svc-secret-svc-secret-svc-secret-0";
    let mut record = client_record("svc", Some(secret), "read write");
    record.grant_types = vec![GrantType::ClientCredentials];
    app.store.create_client(&record).await.unwrap();
    TestClient {
        id: "svc".into(),
        secret: Some(secret.into()),
    }
}

async fn a_confidential_client_gets_a_token_for_itself_and_no_refresh_token(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let svc = service_client(&app).await;
    // Act
    let answer = app
        .post_form_as(&svc, &[("grant_type", "client_credentials")])
        .await;
    // Assert
    answer.assert_ok();
    assert_eq!(answer.str("token_type"), "Bearer");
    assert_eq!(answer.str("scope"), "read write");
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{:?}",
        answer.body
    );
    let claims = app.verify_access_token(answer.str("access_token")).await;
    // RFC 9068 §2.2: the client is the subject.
    assert_eq!(claims.sub, "svc");
    assert_eq!(claims.client_id, "svc");
    let me = app
        .get("/api/v1/me", Some(answer.str("access_token")))
        .await;
    me.assert_ok();
    assert_eq!(me.str("sub"), "svc");
}

async fn the_token_is_introspected_revoked_and_audited_like_any_other(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let svc = service_client(&app).await;
    let token = app
        .post_form_as(&svc, &[("grant_type", "client_credentials")])
        .await
        .str("access_token")
        .to_owned();
    // Act
    let live = app.introspect(&token).await;
    let revoked = app
        .post_to("/oauth2/revoke", &svc, &[("token", &token)])
        .await;
    let after = app.introspect(&token).await;
    let me = app.get("/api/v1/me", Some(&token)).await;
    // Assert
    live.assert_ok();
    assert_eq!(live.body["active"], true);
    assert_eq!(live.str("sub"), "svc");
    assert_eq!(live.str("client_id"), "svc");
    assert!(live.body.get("username").is_none(), "{:?}", live.body);
    assert_eq!(revoked.status, 200);
    assert_eq!(after.body, serde_json::json!({"active": false}));
    assert_eq!(me.status, 401);
    let events = app
        .store
        .audit_events(&AuditFilter {
            client_id: Some("svc".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().rev().map(|e| (e.kind, e.outcome)).collect();
    assert_eq!(
        kinds,
        vec![
            (AuditKind::Issued, Outcome::Success),
            (AuditKind::Revoked, Outcome::AccessToken)
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.username.is_none() && e.family_id.is_some())
    );
}

async fn a_public_client_or_one_not_allowed_the_grant_is_unauthorized_client(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut public = client_record("spa", None, "read");
    public.grant_types = vec![GrantType::ClientCredentials];
    app.store.create_client(&public).await.unwrap();
    let spa = TestClient {
        id: "spa".into(),
        secret: None,
    };
    // Act
    let from_public = app
        .post_form_as(&spa, &[("grant_type", "client_credentials")])
        .await;
    // The seeded client may use password and refresh_token only.
    let not_allowed = app.post_form(&[("grant_type", "client_credentials")]).await;
    // Assert
    from_public.assert_error(400, "unauthorized_client");
    not_allowed.assert_error(400, "unauthorized_client");
}

async fn the_scope_is_a_subset_of_the_clients(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let svc = service_client(&app).await;
    // Act
    let narrowed = app
        .post_form_as(
            &svc,
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    let wider = app
        .post_form_as(
            &svc,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read admin"),
            ],
        )
        .await;
    // Assert
    narrowed.assert_ok();
    assert_eq!(narrowed.str("scope"), "read");
    wider.assert_error(400, "invalid_scope");
}
