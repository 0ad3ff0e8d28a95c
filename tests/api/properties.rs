//! Property tests of the refresh rules against a real server on a SQLite file:
//! a chain of any length has exactly one live refresh token, and presenting a spent
//! token at any point of the chain ends the whole login. Few cases, each a fresh
//! database, so that the suite stays fast.

use proptest::prelude::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::helpers::{Db, TestApp, spawn_app};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 6,
        ..ProptestConfig::default()
    }
}

/// A server on a fresh, migrated SQLite file; the file goes when the test ends.
async fn fresh_app(dir: &std::path::Path) -> (TestApp, Db) {
    let options = SqliteConnectOptions::new()
        .filename(dir.join(format!("{}.db", uuid::Uuid::new_v4())))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate!("migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    let db = Db::sqlite(pool);
    (spawn_app(db.clone()).await, db)
}

/// Logs in and refreshes `length` times; returns every refresh token in order and
/// the last access token.
async fn chain(app: &TestApp, length: usize) -> (Vec<String>, String) {
    let login = app.login().await;
    login.assert_ok();
    let mut tokens = vec![login.refresh_token()];
    let mut access = login.str("access_token").to_owned();
    for _ in 0..length {
        let answer = app.refresh(tokens.last().unwrap()).await;
        answer.assert_ok();
        tokens.push(answer.refresh_token());
        access = answer.str("access_token").to_owned();
    }
    (tokens, access)
}

async fn active(app: &TestApp, token: &str) -> bool {
    let answer = app.introspect(token).await;
    answer.assert_ok();
    answer.body["active"].as_bool().unwrap()
}

fn run(
    test: impl std::future::Future<Output = Result<(), TestCaseError>>,
) -> Result<(), TestCaseError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rotor-properties-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_refresh_chain_of_any_length_has_exactly_one_live_token(length in 0usize..12) {
        let dir = temp_dir();
        let outcome = run(async {
            // Arrange
            let (app, db) = fresh_app(&dir).await;
            // Act
            let (tokens, _) = chain(&app, length).await;
            // Assert
            let mut live = Vec::new();
            for (i, token) in tokens.iter().enumerate() {
                if active(&app, token).await {
                    live.push(i);
                }
            }
            db.close().await;
            prop_assert_eq!(live, vec![length]);
            Ok(())
        });
        std::fs::remove_dir_all(&dir).ok();
        outcome?;
    }

    #[test]
    fn reuse_at_any_point_kills_the_whole_family(
        (length, reused) in (1usize..10).prop_flat_map(|n| (Just(n), 0..n))
    ) {
        let dir = temp_dir();
        let outcome = run(async {
            // Arrange
            let (app, db) = fresh_app(&dir).await;
            let (tokens, access) = chain(&app, length).await;
            // Act: present a token that was already spent.
            let reuse = app.refresh(&tokens[reused]).await;
            // Assert
            reuse.assert_error(400, "invalid_grant");
            for token in &tokens {
                prop_assert!(!active(&app, token).await, "a token of the family is alive");
            }
            prop_assert!(!active(&app, &access).await, "the latest access token is alive");
            app.refresh(tokens.last().unwrap())
                .await
                .assert_error(400, "invalid_grant");
            db.close().await;
            Ok(())
        });
        std::fs::remove_dir_all(&dir).ok();
        outcome?;
    }
}
