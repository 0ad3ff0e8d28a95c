//! Races that must not leave a live token behind.

use crate::helpers::{Db, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    refresh_racing_revocation_leaves_no_live_token,
    refresh_racing_reuse_detection_leaves_no_live_token,
    refresh_racing_a_user_being_disabled_leaves_no_usable_token,
);

const ROUNDS: usize = 15;

async fn refresh_racing_revocation_leaves_no_live_token(db: Db) {
    let app = spawn_app(db).await;
    for _ in 0..ROUNDS {
        // Arrange
        let rt = app.login().await.refresh_token();
        // Act: a refresh and a revocation of the same family at once.
        let (refreshed, revoked) = tokio::join!(app.refresh(&rt), app.revoke(&rt, None));
        // Assert: whatever the order, nothing of the family is live afterwards.
        assert_eq!(revoked.status, 200);
        assert!(
            refreshed.status == 200 || refreshed.status == 400,
            "{}",
            refreshed.body
        );
        assert_eq!(app.introspect(&rt).await.body["active"], false);
        if refreshed.status == 200 {
            assert_eq!(
                app.introspect(&refreshed.refresh_token()).await.body["active"],
                false
            );
            assert_eq!(
                app.introspect(refreshed.str("access_token")).await.body["active"],
                false
            );
            app.refresh(&refreshed.refresh_token())
                .await
                .assert_error(400, "invalid_grant");
        }
    }
}

async fn refresh_racing_reuse_detection_leaves_no_live_token(db: Db) {
    let app = spawn_app(db).await;
    for _ in 0..ROUNDS {
        let t0 = app.login().await.refresh_token();
        let t1 = app.refresh(&t0).await.refresh_token();
        // The legitimate refresh of t1 races the replay of the spent t0.
        let (legit, replay) = tokio::join!(app.refresh(&t1), app.refresh(&t0));
        replay.assert_error(400, "invalid_grant");
        if legit.status == 200 {
            assert_eq!(
                app.introspect(&legit.refresh_token()).await.body["active"],
                false
            );
            assert_eq!(
                app.introspect(legit.str("access_token")).await.body["active"],
                false
            );
        }
        assert_eq!(app.introspect(&t1).await.body["active"], false);
    }
}

async fn refresh_racing_a_user_being_disabled_leaves_no_usable_token(db: Db) {
    let app = spawn_app(db).await;
    for _ in 0..ROUNDS {
        app.store.set_user_disabled("alice", false).await.unwrap();
        let rt = app.login().await.refresh_token();
        let (refreshed, disabled) =
            tokio::join!(app.refresh(&rt), app.store.set_user_disabled("alice", true));
        disabled.unwrap();
        // The family stops refreshing at once, and no token of it is usable.
        if refreshed.status == 200 {
            app.refresh(&refreshed.refresh_token())
                .await
                .assert_error(400, "invalid_grant");
            app.get("/api/v1/me", Some(refreshed.str("access_token")))
                .await
                .assert_error(401, "invalid_token");
        } else {
            refreshed.assert_error(400, "invalid_grant");
        }
        app.refresh(&rt).await.assert_error(400, "invalid_grant");
    }
}
