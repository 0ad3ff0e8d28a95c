//! The retry window (`refresh.grace_period`): a retried refresh gets exactly the same
//! tokens; anything else stays reuse.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::helpers::{Db, TestApp, TestClient, client_record, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    retry_within_the_window_returns_byte_identical_tokens,
    retry_after_the_window_revokes_the_family,
    token_two_rotations_old_revokes_the_family_inside_the_window,
    retry_by_another_client_is_reuse,
    revoked_family_is_never_revived_by_a_retry,
    concurrent_duplicates_inside_the_window_all_get_the_same_answer,
    database_holds_neither_token_nor_answer_in_clear,
    zero_grace_period_is_strict_single_use,
    client_grace_period_overrides_the_servers,
);

async fn with_grace(db: Db, max_refreshes: u32) -> TestApp {
    spawn_app_with(db, |s| {
        s.refresh.grace_period = Duration::from_secs(30);
        s.refresh.max_refreshes = max_refreshes;
    })
    .await
}

async fn retry_within_the_window_returns_byte_identical_tokens(db: Db) {
    // Arrange
    let app = with_grace(db.clone(), 2).await;
    let old = app.login().await.refresh_token();
    let first = app.refresh(&old).await;
    first.assert_ok();
    // Act: the answer was lost; the client retries 10 seconds later.
    app.advance(Duration::from_secs(10));
    let retried = app.refresh(&old).await;
    // Assert
    retried.assert_ok();
    assert_eq!(retried.str("access_token"), first.str("access_token"));
    assert_eq!(retried.refresh_token(), first.refresh_token());
    assert_eq!(retried.str("scope"), first.str("scope"));
    let expires_in = retried.body["expires_in"].as_i64().unwrap();
    assert!((1188..=1190).contains(&expires_in), "{expires_in}");
    // No family member was created and the counter did not move: with a limit of 2,
    // the successor can still be refreshed once, then the limit holds.
    assert_eq!(db.count("select count(*) from refresh_tokens").await, 2);
    let second = app.refresh(&first.refresh_token()).await;
    second.assert_ok();
    app.refresh(&second.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
}

async fn retry_after_the_window_revokes_the_family(db: Db) {
    let app = with_grace(db.clone(), 0).await;
    let old = app.login().await.refresh_token();
    let first = app.refresh(&old).await;
    app.advance(Duration::from_secs(31));
    app.refresh(&old).await.assert_error(400, "invalid_grant");
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    // The sealed answer was erased when the family was revoked.
    assert_eq!(
        db.count("select count(*) from refresh_tokens where retry_answer is not null")
            .await,
        0
    );
}

async fn token_two_rotations_old_revokes_the_family_inside_the_window(db: Db) {
    let app = with_grace(db, 0).await;
    let t0 = app.login().await.refresh_token();
    let t1 = app.refresh(&t0).await.refresh_token();
    let t2 = app.refresh(&t1).await.refresh_token();
    // t1 was spent, which closes t0's window.
    app.refresh(&t0).await.assert_error(400, "invalid_grant");
    app.refresh(&t2).await.assert_error(400, "invalid_grant");
}

async fn retry_by_another_client_is_reuse(db: Db) {
    let app = with_grace(db, 0).await;
    app.store
        .create_client(&client_record("other", None, "read write"))
        .await
        .unwrap();
    let other = TestClient {
        id: "other".into(),
        secret: None,
    };
    let t0 = app.login().await.refresh_token();
    let t1 = app.refresh(&t0).await.refresh_token();
    app.refresh_as(&other, &t0)
        .await
        .assert_error(400, "invalid_grant");
    app.refresh(&t1).await.assert_error(400, "invalid_grant");
    app.refresh(&t0).await.assert_error(400, "invalid_grant");
}

async fn revoked_family_is_never_revived_by_a_retry(db: Db) {
    let app = with_grace(db, 0).await;
    let t0 = app.login().await.refresh_token();
    let t1 = app.refresh(&t0).await.refresh_token();
    assert_eq!(app.revoke(&t1, None).await.status, 200);
    app.refresh(&t0).await.assert_error(400, "invalid_grant");
    app.refresh(&t1).await.assert_error(400, "invalid_grant");
}

async fn concurrent_duplicates_inside_the_window_all_get_the_same_answer(db: Db) {
    // Arrange
    let app = with_grace(db.clone(), 0).await;
    let old = app.login().await.refresh_token();
    // Act: 20 copies of the same request at once.
    let http = reqwest::Client::new();
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let request = http
            .post(app.token_url())
            .header("Authorization", app.client_basic())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", old.as_str()),
            ]);
        tasks.spawn(async move { TestApp::read(request.send().await.unwrap()).await });
    }
    let answers = tasks.join_all().await;
    // Assert: all succeed with the same tokens, and exactly one successor exists.
    for a in &answers {
        a.assert_ok();
        assert_eq!(a.refresh_token(), answers[0].refresh_token());
        assert_eq!(a.str("access_token"), answers[0].str("access_token"));
    }
    assert_eq!(db.count("select count(*) from refresh_tokens").await, 2);
    assert_eq!(db.count("select count(*) from access_tokens").await, 2);
    app.refresh(&answers[0].refresh_token()).await.assert_ok();
}

async fn database_holds_neither_token_nor_answer_in_clear(db: Db) {
    let app = with_grace(db.clone(), 0).await;
    let login = app.login().await;
    let old = login.refresh_token();
    let first = app.refresh(&old).await;
    let retried = app.refresh(&old).await;
    retried.assert_ok();
    // The sealed answer exists ...
    assert_eq!(
        db.count("select count(*) from refresh_tokens where retry_answer is not null")
            .await,
        1
    );
    // ... and the dump shows no token, nor the answer's text.
    let dump = db.dump().await;
    for secret in [
        old.as_str(),
        first.str("access_token"),
        &first.refresh_token(),
        login.str("access_token"),
    ] {
        assert!(!dump.contains(secret), "the dump holds a token in clear");
        assert!(
            !dump.contains(&secret[secret.len() - 16..]),
            "the dump holds part of a token"
        );
    }
    assert!(
        !dump.contains("access_expires_at"),
        "the dump holds the plaintext answer"
    );
}

async fn zero_grace_period_is_strict_single_use(db: Db) {
    let app = spawn_app(db.clone()).await;
    let old = app.login().await.refresh_token();
    let first = app.refresh(&old).await;
    first.assert_ok();
    app.refresh(&old).await.assert_error(400, "invalid_grant");
    app.refresh(&first.refresh_token())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        db.count("select count(*) from refresh_tokens where retry_answer is not null")
            .await,
        0
    );
}

async fn client_grace_period_overrides_the_servers(db: Db) {
    let app = spawn_app(db).await;
    let mut record = client_record("mobile", None, "read");
    record.grace_period = Some(Duration::from_secs(60));
    app.store.create_client(&record).await.unwrap();
    let mobile = TestClient {
        id: "mobile".into(),
        secret: None,
    };
    let login = app.login_as(&mobile).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", login.str("refresh_token")),
    ];
    let first = app.post_form_as(&mobile, &form).await;
    first.assert_ok();
    let retried = app.post_form_as(&mobile, &form).await;
    retried.assert_ok();
    assert_eq!(retried.refresh_token(), first.refresh_token());
}
