//! Graceful shutdown: requests in flight finish, new connections are refused, a
//! stuck request cannot hold the server past `server.shutdown_timeout`, and the
//! pool is closed.

use std::time::Duration;

use rotor::{Application, Settings};
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::oneshot};

use crate::helpers::{
    CLIENT_ID, Db, PASSWORD, USERNAME, add_user, basic, client_record, test_settings,
};
use crate::on_both_stores;

on_both_stores!(requests_in_flight_finish_after_the_shutdown_signal);

const SECRET: &str = "app-secret-0123456789-0123456789-0123456789";

/// A server whose shutdown the test triggers, and the task running it.
struct Running {
    address: String,
    state: rotor::http::AppState,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(db: &Db, settings: Settings) -> Running {
    let store = db.open_store().await;
    store
        .create_client(&client_record(CLIENT_ID, Some(SECRET), "read"))
        .await
        .unwrap();
    add_user(store.as_ref(), &settings, USERNAME, PASSWORD).await;
    let app = Application::with_store(settings, store).await.unwrap();
    let address = app.local_addr().unwrap().to_string();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running {
        address,
        state,
        stop,
        task,
    }
}

/// Waits (bounded) for the server task to end; a hang fails the test.
async fn finished(task: tokio::task::JoinHandle<std::io::Result<()>>) {
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
}

async fn requests_in_flight_finish_after_the_shutdown_signal(db: Db) {
    // Arrange: one hashing slot and a costly hash, so that logins queue up.
    let mut settings = test_settings();
    settings.passwords.memory_kib = 32 * 1024;
    settings.passwords.iterations = 2;
    settings.passwords.max_concurrent = 1;
    // Eight sign-ins of one user at once: more than the lockout checks at a time.
    settings.lockout.enabled = false;
    let server = start(&db, settings).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/oauth2/token", server.address);
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let request = http
                .post(&url)
                .header("Authorization", basic(CLIENT_ID, SECRET))
                .form(&[
                    ("grant_type", "password"),
                    ("username", USERNAME),
                    ("password", PASSWORD),
                ]);
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut queued = 0;
    for _ in 0..500 {
        queued = server.state.hasher.queue_depth();
        if queued >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(queued >= 3, "logins did not queue up: {queued}");

    // Act
    server.stop.send(()).unwrap();

    // Assert: every accepted request got its answer.
    for login in logins {
        assert_eq!(login.await.unwrap().unwrap(), 200);
    }
    finished(server.task).await;
    assert!(
        TcpStream::connect(&server.address).await.is_err(),
        "the listener is still open"
    );
    assert!(server.state.store.ping().await.is_err(), "the pool is open");
    db.close().await;
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn a_stuck_request_cannot_delay_the_exit_past_the_shutdown_timeout(pool: sqlx::SqlitePool) {
    // Arrange: a request whose body never arrives.
    let db = Db::sqlite(pool);
    let mut settings = test_settings();
    settings.server.shutdown_timeout = Duration::from_millis(200);
    let server = start(&db, settings).await;
    let mut stuck = TcpStream::connect(&server.address).await.unwrap();
    stuck
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: rotor\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    // A complete request answered after it: the server has taken the stuck one in.
    let health = reqwest::get(format!("http://{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // Act
    server.stop.send(()).unwrap();

    // Assert: the server stops anyway and closes the pool; the process would now
    // exit, ending the stuck connection with it.
    finished(server.task).await;
    assert!(server.state.store.ping().await.is_err(), "the pool is open");
    drop(stuck);
    db.close().await;
}
