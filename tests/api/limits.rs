//! Limits on hostile input: body size, parameter length, header size, a body that
//! never arrives and headers that never end. Each answers a clear 4xx, or closes
//! the connection where no request was read, through a real server.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    parameter_over_the_length_limit_is_invalid_request,
    username_longer_than_any_user_can_have_is_invalid_request,
    headers_over_the_size_limit_are_431_invalid_request,
    too_many_headers_get_a_clean_431,
    stalled_body_gets_408_and_the_connection_is_closed,
    trickled_headers_lose_the_connection_while_others_are_served,
);

/// A raw HTTP/1.1 exchange: writes `request`, then reads until the server closes
/// the connection. The whole exchange is bounded, so a server that never answers
/// fails the test instead of hanging it.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes within the bound")
        .expect("a clean close, not a reset");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn parameter_over_the_length_limit_is_invalid_request(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let limit = rotor::oauth::request::MAX_PARAM_LEN;
    // Act
    let at_limit = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &"p".repeat(limit)),
        ])
        .await;
    let over = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &"p".repeat(limit + 1)),
        ])
        .await;
    // Assert
    at_limit.assert_error(400, "invalid_grant");
    over.assert_error(400, "invalid_request");
    assert!(over.str("error_description").contains("password"));
}

async fn username_longer_than_any_user_can_have_is_invalid_request(db: Db) {
    // Arrange: the lockout counts failures under the username, and PostgreSQL
    // refuses an index entry over about 2.7 KB; random text does not compress
    // below that.
    let app = spawn_app(db).await;
    let limit = rotor::oauth::request::MAX_USERNAME_LEN;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let noise: String = (0..4000)
        .map(|_| char::from(rand::Rng::gen_range(&mut rng, b'!'..=b'~')))
        .collect();
    // Act
    let at_limit = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", &noise[..limit]),
            ("password", "x"),
        ])
        .await;
    let over = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", &noise[..limit + 1]),
            ("password", "x"),
        ])
        .await;
    let far_over = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", &noise[..4000]),
            ("password", "x"),
        ])
        .await;
    // Assert
    at_limit.assert_error(400, "invalid_grant");
    over.assert_error(400, "invalid_request");
    far_over.assert_error(400, "invalid_request");
    assert!(over.str("error_description").contains("username"));
}

async fn headers_over_the_size_limit_are_431_invalid_request(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let big = "a".repeat(rotor::http::extract::MAX_HEADER_BYTES);
    // Act
    let token = TestApp::read(
        app.http
            .post(app.token_url())
            .header("X-Padding", &big)
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let me = TestApp::read(
        app.http
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Assert
    token.assert_error(431, "invalid_request");
    me.assert_error(431, "invalid_request");
}

async fn too_many_headers_get_a_clean_431(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut request = String::from("GET /oauth2/jwks HTTP/1.1\r\nHost: rotor.test\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    // Act
    let answer = raw_exchange(&app, request.as_bytes()).await;
    // Assert
    assert!(answer.starts_with("HTTP/1.1 431"), "answer: {answer:?}");
}

async fn stalled_body_gets_408_and_the_connection_is_closed(db: Db) {
    // Arrange
    let app = spawn_app_with(db, |s| {
        s.server.request_timeout = Duration::from_millis(200);
    })
    .await;
    let request = b"POST /oauth2/token HTTP/1.1\r\nHost: rotor.test\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
        grant_type=pass";
    // Act: the headers promise 100 bytes of body, then the client stalls.
    let answer = raw_exchange(&app, request).await;
    // Assert
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "invalid_request");
}

async fn trickled_headers_lose_the_connection_while_others_are_served(db: Db) {
    // Arrange
    let app = spawn_app_with(db, |s| {
        s.server.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let address = app.address.trim_start_matches("http://");
    let (mut reader, mut writer) = TcpStream::connect(address).await.unwrap().into_split();
    // Act: a request line, then header lines one byte every 20 ms, never ending.
    // The server's deadline does not move with each byte, so it must close the
    // connection well before the 30 s this client would go on for.
    let trickle = async {
        let start = b"POST /oauth2/token HTTP/1.1\r\nHost: rotor.test\r\n";
        let endless = std::iter::repeat(b"X-Slow: a\r\n").flatten();
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for byte in start.iter().chain(endless).take(1500) {
            pace.tick().await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
        panic!("the server read trickled headers for 30 s without closing");
    };
    let mut answer = Vec::new();
    let closed = async {
        // A reset counts as closed as well as a clean end.
        let _ = reader.read_to_end(&mut answer).await;
    };
    tokio::select! {
        () = trickle => {},
        () = closed => {},
    }
    let jwks = app.get("/oauth2/jwks", None).await;
    // Assert: no request was read, so nothing was answered; others are served.
    assert!(
        answer.is_empty(),
        "answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(jwks.status, 200);
}
