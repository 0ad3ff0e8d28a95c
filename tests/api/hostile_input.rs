//! Parameters that break the character rules of RFC 6749 Appendix A, sent to a
//! real server on each store: every one is refused as `invalid_request` before it
//! can reach the database (PostgreSQL refuses U+0000 in `text`, which once turned a
//! NUL in a client id into a 500), and no answer is ever a 5xx.

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::helpers::{Answer, Db, TestApp, basic, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    nul_in_client_id_or_username_is_invalid_request_on_every_endpoint,
    a_control_character_in_any_parameter_is_invalid_request_on_every_endpoint,
    a_control_character_in_a_parameter_name_is_invalid_request,
    tab_in_a_username_is_a_wrong_login_not_a_malformed_request,
    values_outside_their_class_are_invalid_request_and_scope_keeps_invalid_scope,
);

const ENDPOINTS: [&str; 3] = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"];

/// How a request body is encoded.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Form,
    Json,
}

/// POSTs `params` to `path`, encoded as asked, with an optional Authorization header.
async fn post(
    app: &TestApp,
    path: &str,
    encoding: Encoding,
    auth: Option<String>,
    params: &[(&str, &str)],
) -> Answer {
    let (content_type, body) = match encoding {
        Encoding::Form => (
            "application/x-www-form-urlencoded",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        ),
        Encoding::Json => {
            let object: serde_json::Map<String, serde_json::Value> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                .collect();
            (
                "application/json",
                serde_json::Value::Object(object).to_string(),
            )
        }
    };
    let mut req = app
        .http
        .post(format!("{}{path}", app.address))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// The parameters of a sensible request to `path`, before anything is spoilt.
fn request_for(app: &TestApp, path: &str) -> Vec<(&'static str, String)> {
    match path {
        "/oauth2/token" => vec![
            ("grant_type", "password".into()),
            ("username", app.user.username.clone()),
            ("password", app.user.password.clone()),
        ],
        _ => vec![("token", "rotor_rt_unknown".into())],
    }
}

/// Sets (or adds) `name` to `value` in `params`.
fn with(
    mut params: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    params.retain(|(n, _)| *n != name);
    params.push((name, value.to_owned()));
    params
}

fn pairs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[track_caller]
fn assert_invalid_request(answer: &Answer, what: &str) {
    assert_eq!(
        (answer.status, answer.error()),
        (400, "invalid_request"),
        "{what}: {}",
        answer.body
    );
    assert_rfc_description(answer);
}

/// RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
#[track_caller]
fn assert_rfc_description(answer: &Answer) {
    let description = answer.str("error_description");
    assert!(
        description
            .chars()
            .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')),
        "{description:?}"
    );
}

async fn nul_in_client_id_or_username_is_invalid_request_on_every_endpoint(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let secret = app.client.secret.clone().unwrap();
    let raw_nul_basic = format!("Basic {}", STANDARD.encode(format!("app\0:{secret}")));
    for path in ENDPOINTS {
        let request = request_for(&app, path);
        for encoding in [Encoding::Form, Encoding::Json] {
            // Act: client_secret_post and a public client's id, with a NUL in the id.
            let post_id = with(
                with(request.clone(), "client_id", "app\0"),
                "client_secret",
                &secret,
            );
            let public_id = with(request.clone(), "client_id", "\0");
            let username = with(request.clone(), "username", "alice\0");
            let answers = [
                (
                    "client_secret_post",
                    post(&app, path, encoding, None, &pairs(&post_id)).await,
                ),
                (
                    "public client_id",
                    post(&app, path, encoding, None, &pairs(&public_id)).await,
                ),
                (
                    "username",
                    post(
                        &app,
                        path,
                        encoding,
                        Some(app.client_basic()),
                        &pairs(&username),
                    )
                    .await,
                ),
                (
                    "Basic id",
                    post(
                        &app,
                        path,
                        encoding,
                        Some(basic("app\0", &secret)),
                        &pairs(&request),
                    )
                    .await,
                ),
                (
                    "Basic secret",
                    post(
                        &app,
                        path,
                        encoding,
                        Some(basic("app", &format!("{secret}\0"))),
                        &pairs(&request),
                    )
                    .await,
                ),
                (
                    "raw NUL in Basic",
                    post(
                        &app,
                        path,
                        encoding,
                        Some(raw_nul_basic.clone()),
                        &pairs(&request),
                    )
                    .await,
                ),
            ];
            // Assert
            for (what, answer) in answers {
                assert_invalid_request(&answer, &format!("{path} {encoding:?} {what}"));
                assert!(answer.header("www-authenticate").is_none(), "{what}");
            }
        }
    }
}

async fn a_control_character_in_any_parameter_is_invalid_request_on_every_endpoint(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let names = [
        "grant_type",
        "client_id",
        "client_secret",
        "username",
        "password",
        "scope",
        "refresh_token",
        "code",
        "token",
        "token_type_hint",
        "favourite_colour",
    ];
    for path in ENDPOINTS {
        for name in names {
            for c in ['\0', '\x01', '\n', '\r', '\x1b', '\x7f'] {
                for encoding in [Encoding::Form, Encoding::Json] {
                    // Act
                    let params = with(request_for(&app, path), name, &format!("x{c}y"));
                    let answer = post(
                        &app,
                        path,
                        encoding,
                        Some(app.client_basic()),
                        &pairs(&params),
                    )
                    .await;
                    // Assert
                    assert_invalid_request(&answer, &format!("{path} {name} {c:?} {encoding:?}"));
                }
            }
        }
    }
}

async fn a_control_character_in_a_parameter_name_is_invalid_request(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    for path in ENDPOINTS {
        let params = with(request_for(&app, path), "x\0\"\\", "1");
        for encoding in [Encoding::Form, Encoding::Json] {
            // Act
            let answer = post(
                &app,
                path,
                encoding,
                Some(app.client_basic()),
                &pairs(&params),
            )
            .await;
            // Assert
            assert_invalid_request(&answer, &format!("{path} {encoding:?}"));
        }
    }
}

async fn tab_in_a_username_is_a_wrong_login_not_a_malformed_request(db: Db) {
    // Arrange: RFC 6749 A.15 allows %x09 in a username, and no other control.
    let app = spawn_app(db).await;
    let params = with(request_for(&app, "/oauth2/token"), "username", "al\tice");
    // Act
    let answer = post(
        &app,
        "/oauth2/token",
        Encoding::Form,
        Some(app.client_basic()),
        &pairs(&params),
    )
    .await;
    // Assert
    answer.assert_error(400, "invalid_grant");
}

async fn values_outside_their_class_are_invalid_request_and_scope_keeps_invalid_scope(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let token = request_for(&app, "/oauth2/token");
    let cases = [
        ("client_id", "caf\u{e9}", "invalid_request"),
        ("grant_type", "pass word", "invalid_request"),
        ("username", "a\u{FFFF}", "invalid_request"),
        ("scope", "read \"write\"", "invalid_scope"),
        ("scope", "read wr\\ite", "invalid_scope"),
        ("scope", "caf\u{e9}", "invalid_scope"),
    ];
    for (name, value, error) in cases {
        // Act
        let params = with(token.clone(), name, value);
        let auth = (name != "client_id").then(|| app.client_basic());
        let answer = post(&app, "/oauth2/token", Encoding::Form, auth, &pairs(&params)).await;
        // Assert
        answer.assert_error(400, error);
        assert_rfc_description(&answer);
    }
    // A non-ASCII id in a Basic header is refused like one in the body.
    let secret = app.client.secret.clone().unwrap();
    let answer = post(
        &app,
        "/oauth2/token",
        Encoding::Form,
        Some(basic("caf\u{e9}", &secret)),
        &pairs(&token),
    )
    .await;
    assert_invalid_request(&answer, "non-ASCII Basic id");
}
