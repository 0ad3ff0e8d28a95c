use crate::helpers::{Db, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    json_body_is_accepted,
    powershell_form_body_under_a_json_label_is_accepted,
    non_string_json_value_is_invalid_request,
    json_key_given_twice_is_invalid_request,
    repeated_form_parameter_is_invalid_request,
    empty_parameter_counts_as_absent_and_unknown_ones_are_ignored,
    oversized_body_is_413_invalid_request,
    get_is_refused_with_405,
    missing_grant_type_is_invalid_request,
    unknown_grant_type_is_unsupported_grant_type,
    garbage_bodies_never_get_a_server_error,
    unsupported_content_type_is_invalid_request,
);

async fn json_body_is_accepted(db: Db) {
    let app = spawn_app(db).await;
    let body = serde_json::json!({
        "grant_type": "password", "username": "alice", "password": app.user.password,
    });
    let answer = app
        .post_raw(
            Some("application/json"),
            Some(app.client_basic()),
            body.to_string(),
        )
        .await;
    answer.assert_ok();
    let refresh =
        serde_json::json!({"grant_type": "refresh_token", "refresh_token": answer.refresh_token()});
    app.post_raw(
        Some("application/json; charset=utf-8"),
        Some(app.client_basic()),
        refresh.to_string(),
    )
    .await
    .assert_ok();
}

async fn powershell_form_body_under_a_json_label_is_accepted(db: Db) {
    // Exactly what `Invoke-RestMethod -Body $args -ContentType "application/json"`
    // sends for a hashtable: a form body, no client credentials.
    let app = spawn_app_with(db, |s| {
        s.clients.anonymous_client = Some("powershell".into())
    })
    .await;
    app.store
        .create_client(&crate::helpers::client_record("powershell", None, ""))
        .await
        .unwrap();
    let password =
        form_urlencoded::byte_serialize(app.user.password.as_bytes()).collect::<String>();
    let login = app
        .post_raw(
            Some("application/json"),
            None,
            format!("username=alice&password={password}&grant_type=password"),
        )
        .await;
    login.assert_ok();
    let refresh = app
        .post_raw(
            Some("application/json"),
            None,
            format!(
                "grant_type=refresh_token&refresh_token={}",
                login.refresh_token()
            ),
        )
        .await;
    refresh.assert_ok();
}

async fn non_string_json_value_is_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    for body in [
        r#"{"grant_type":"password","username":"alice","password":12345}"#,
        r#"{"grant_type":["password"],"username":"alice","password":"x"}"#,
        r#"{"grant_type":"password","username":{"a":1},"password":"x"}"#,
        r#"{"grant_type":true}"#,
    ] {
        app.post_raw(Some("application/json"), Some(app.client_basic()), body)
            .await
            .assert_error(400, "invalid_request");
    }
}

async fn json_key_given_twice_is_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    let body = format!(
        r#"{{"grant_type":"password","username":"mallory","username":"alice","password":"{}"}}"#,
        app.user.password
    );
    app.post_raw(Some("application/json"), Some(app.client_basic()), body)
        .await
        .assert_error(400, "invalid_request");
}

async fn repeated_form_parameter_is_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    let answer = app
        .post_raw(
            Some("application/x-www-form-urlencoded"),
            Some(app.client_basic()),
            "grant_type=password&username=alice&username=bob&password=x",
        )
        .await;
    answer.assert_error(400, "invalid_request");
    assert!(answer.str("error_description").contains("username"));
}

async fn empty_parameter_counts_as_absent_and_unknown_ones_are_ignored(db: Db) {
    let app = spawn_app(db).await;
    let answer = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &app.user.password),
            ("scope", ""),
            ("favourite_colour", "blue"),
        ])
        .await;
    answer.assert_ok();
    assert_eq!(answer.str("scope"), "read write");
    let missing = app
        .post_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ""),
        ])
        .await;
    missing.assert_error(400, "invalid_request");
}

async fn oversized_body_is_413_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    let body = format!(
        "grant_type=password&username=alice&password={}",
        "a".repeat(64 * 1024)
    );
    let answer = app
        .post_raw(
            Some("application/x-www-form-urlencoded"),
            Some(app.client_basic()),
            body,
        )
        .await;
    answer.assert_error(413, "invalid_request");
}

async fn get_is_refused_with_405(db: Db) {
    let app = spawn_app(db).await;
    let response = app
        .http
        .get(format!(
            "{}?grant_type=password&username=alice&password=x",
            app.token_url()
        ))
        .send()
        .await
        .unwrap();
    let answer = crate::helpers::TestApp::read(response).await;
    answer.assert_error(405, "invalid_request");
    assert_eq!(answer.header("allow"), Some("POST"));
}

async fn missing_grant_type_is_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    app.post_form(&[("username", "alice"), ("password", "x")])
        .await
        .assert_error(400, "invalid_request");
}

async fn unknown_grant_type_is_unsupported_grant_type(db: Db) {
    let app = spawn_app(db).await;
    app.post_form(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")])
        .await
        .assert_error(400, "unsupported_grant_type");
}

async fn garbage_bodies_never_get_a_server_error(db: Db) {
    let app = spawn_app(db).await;
    let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some("application/json"), b"{".to_vec()),
        (Some("application/json"), b"[1,2,3]".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), vec![0xff, 0xfe, 0x00]),
        (
            Some("application/x-www-form-urlencoded"),
            vec![0xff, 0xfe, b'=', 0x01],
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"%%%%&&&===".to_vec(),
        ),
        (None, b"grant_type=password".to_vec()),
        (None, Vec::new()),
    ];
    for (content_type, body) in bodies {
        let answer = app
            .post_raw(content_type, Some(app.client_basic()), body.clone())
            .await;
        assert!(
            (400..500).contains(&answer.status),
            "{content_type:?} {body:?} answered {}",
            answer.status
        );
        assert!(answer.body["error"].is_string(), "{}", answer.body);
    }
}

async fn unsupported_content_type_is_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    app.post_raw(Some("text/xml"), Some(app.client_basic()), "<grant/>")
        .await
        .assert_error(400, "invalid_request");
}
