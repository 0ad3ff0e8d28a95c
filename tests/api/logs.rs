//! The logs of a real `rotor serve` process, in JSON: one line per request with its
//! id, method, path, status, latency, grant type and client id, and never a token,
//! password or secret, even at debug level.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::helpers::{TestApp, basic};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn logs_of_real_requests_hold_request_fields_and_no_secret() {
    // Arrange: a server with JSON logs at debug level, on its first start.
    let dir = TempDir(std::env::temp_dir().join(format!("rotor-logs-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let log_path = dir.0.join("rotor.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("ROTOR__SERVER__BIND", "127.0.0.1:0")
        .env(
            "ROTOR__DATABASE__URL",
            format!("sqlite://{}", dir.0.join("rotor.db").display()),
        )
        .env("ROTOR__PASSWORDS__MEMORY_KIB", "64")
        .env("ROTOR__PASSWORDS__ITERATIONS", "1")
        .env("ROTOR__LOG__FORMAT", "json")
        .env("ROTOR__LOG__FILTER", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let banner = crate::helpers::read_first_start(child.stdout.take().unwrap()).await;
    let (secret, password, url) = (banner.client_secret, banner.password, banner.token_url);
    let http = reqwest::Client::new();
    let post = |auth: String, form: Vec<(&'static str, String)>, request_id: &'static str| {
        let request = http
            .post(&url)
            .header("Authorization", auth)
            .header("x-request-id", request_id)
            .form(&form);
        async move { TestApp::read(request.send().await.unwrap()).await }
    };
    let demo = basic("demo", &secret);
    let wrong_password = "wrong-password-7c1e9a55d0b2".to_owned();
    let wrong_secret = "wrong-secret-0f6c2f1e8f0e4c1e9a550d1b2c3d".to_owned();

    // Act: a login, a refresh, a reuse, a wrong password, a wrong client secret.
    let login = post(
        demo.clone(),
        vec![
            ("grant_type", "password".into()),
            ("username", "demo".into()),
            ("password", password.clone()),
        ],
        "logs-login",
    )
    .await;
    login.assert_ok();
    let refreshed = post(
        demo.clone(),
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", login.refresh_token()),
        ],
        "logs-refresh",
    )
    .await;
    refreshed.assert_ok();
    post(
        demo.clone(),
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", login.refresh_token()),
        ],
        "logs-reuse",
    )
    .await
    .assert_error(400, "invalid_grant");
    post(
        demo.clone(),
        vec![
            ("grant_type", "password".into()),
            ("username", "demo".into()),
            ("password", wrong_password.clone()),
        ],
        "logs-bad-password",
    )
    .await
    .assert_error(400, "invalid_grant");
    post(
        basic("demo", &wrong_secret),
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refreshed.refresh_token()),
        ],
        "logs-bad-secret",
    )
    .await
    .assert_error(401, "invalid_client");
    // A token in the path of an unknown endpoint.
    let stray = http
        .get(format!(
            "{}/{}",
            url.trim_end_matches("/oauth2/token"),
            refreshed.refresh_token()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();

    // Assert: no secret, whole or in part.
    let secrets = [
        secret.clone(),
        password.clone(),
        wrong_password,
        wrong_secret,
        login.refresh_token(),
        login.str("access_token").to_owned(),
        refreshed.refresh_token(),
        refreshed.str("access_token").to_owned(),
        demo.trim_start_matches("Basic ").to_owned(),
    ];
    for s in &secrets {
        assert!(
            !logs.contains(s.as_str()),
            "the logs hold a secret in clear"
        );
        let tail = &s[s.len() - 16..];
        assert!(!logs.contains(tail), "the logs hold part of a secret");
    }

    // Assert: JSON lines, one per request with its fields.
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let completed = |request_id: &str| -> &Value {
        lines
            .iter()
            .find(|l| {
                l["fields"]["message"] == "request completed"
                    && l["span"]["request_id"] == request_id
            })
            .unwrap_or_else(|| panic!("no completion line for {request_id} in\n{logs}"))
    };
    let line = completed("logs-login");
    assert_eq!(line["span"]["method"], "POST");
    assert_eq!(line["span"]["path"], "/oauth2/token");
    assert_eq!(line["span"]["grant_type"], "password");
    assert_eq!(line["span"]["client_id"], "demo");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["latency_ms"].as_f64().unwrap() > 0.0);
    let line = completed("logs-reuse");
    assert_eq!(line["span"]["grant_type"], "refresh_token");
    assert_eq!(line["fields"]["status"], 400);
    assert_eq!(completed("logs-bad-secret")["fields"]["status"], 401);
    assert!(lines.iter().any(|l| l["span"]["path"] == "unmatched"
        && l["fields"]["message"] == "request completed"
        && l["fields"]["status"] == 404));
    assert!(logs.contains("refresh token reuse detected"));
}
