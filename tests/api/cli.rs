//! The `rotor` binary itself: administration commands, configuration errors, first
//! start and shutdown.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use rotor::{Application, store::SqliteStore};

use crate::helpers::{TestApp, basic, read_first_start, test_settings};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("rotor-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A config file using `db` (a file name in this directory) with cheap hashing.
    fn config(&self, extra: &str) -> PathBuf {
        let path = self.0.join("rotor.toml");
        let db = self.0.join("rotor.db");
        std::fs::write(
            &path,
            format!(
                "[server]\nbind = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}\"\n\
                 [passwords]\nmemory_kib = 64\niterations = 1\n[log]\nfilter = \"warn\"\n{extra}",
                db.display()
            ),
        )
        .unwrap();
        path
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.0.join("rotor.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rotor(args: &[&str], config: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Spawns an in-process server on the directory's database, started before the
/// CLI changes anything, to show that changes reach a running server at once.
async fn serve_on(dir: &TempDir) -> TestApp {
    let mut settings = test_settings();
    settings.database.url = dir.db_url().into();
    let store = std::sync::Arc::new(SqliteStore::connect(&dir.db_url(), 4).await.unwrap());
    rotor::store::DatabaseStore::migrate(store.as_ref())
        .await
        .unwrap();
    let app = Application::with_store(settings.clone(), store.clone())
        .await
        .unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    let clock = app.state().clock.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        store,
        clock,
        settings,
        http: reqwest::Client::new(),
        client: crate::helpers::TestClient {
            id: "cli".into(),
            secret: None,
        },
        user: crate::helpers::TestUser {
            username: "bob".into(),
            password: String::new(),
        },
    }
}

#[tokio::test]
async fn administration_commands_take_effect_on_a_running_server() {
    // Arrange: a running server on an empty store.
    let dir = TempDir::new();
    let config = dir.config("");
    let app = serve_on(&dir).await;

    // Act: a client with a generated secret, a user with a password from stdin.
    let added = rotor(
        &["client", "add", "cli", "--scopes", "read write"],
        &config,
        None,
    );
    assert_success(&added);
    let out = stdout(&added);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed once")
        .to_owned();
    assert_success(&rotor(
        &["user", "add", "bob", "--password-stdin"],
        &config,
        Some("pa ss-word\n"),
    ));

    // Assert: the stdin password has no trailing newline, and both work at once.
    let login = |password: &'static str| {
        let http = app.http.clone();
        let url = app.token_url();
        let auth = basic("cli", &secret);
        async move {
            TestApp::read(
                http.post(url)
                    .header("Authorization", auth)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "bob"),
                        ("password", password),
                    ])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    login("pa ss-word").await.assert_ok();

    let listed = stdout(&rotor(&["client", "list"], &config, None));
    assert!(
        listed.contains("cli") && listed.contains("confidential"),
        "{listed}"
    );
    let users = stdout(&rotor(&["user", "list"], &config, None));
    assert!(users.contains("bob") && users.contains("active"), "{users}");

    assert_success(&rotor(&["user", "disable", "bob"], &config, None));
    login("pa ss-word").await.assert_error(400, "invalid_grant");
    assert_success(&rotor(&["user", "enable", "bob"], &config, None));
    login("pa ss-word").await.assert_ok();

    let audit = stdout(&rotor(
        &["audit", "--user", "bob", "--since", "1h"],
        &config,
        None,
    ));
    assert!(
        audit.contains("login") && audit.contains("success") && audit.contains("cli"),
        "{audit}"
    );
    let none = stdout(&rotor(&["audit", "--user", "nobody"], &config, None));
    assert_eq!(none.lines().count(), 1, "{none}");
    assert!(
        !rotor(&["audit", "--since", "yesterday-ish"], &config, None)
            .status
            .success()
    );

    assert_success(&rotor(&["client", "remove", "cli"], &config, None));
    login("pa ss-word")
        .await
        .assert_error(401, "invalid_client");
    assert!(
        !rotor(&["client", "remove", "cli"], &config, None)
            .status
            .success()
    );
}

#[tokio::test]
async fn client_secret_from_stdin_is_used_without_its_newline() {
    let dir = TempDir::new();
    let config = dir.config("");
    let app = serve_on(&dir).await;
    let secret = "an-operator-chosen-secret-of-40-characters";
    assert_success(&rotor(
        &["client", "add", "ops", "--secret-stdin"],
        &config,
        Some(&format!("{secret}\r\n")),
    ));
    assert_success(&rotor(
        &["user", "add", "bob", "--password-stdin"],
        &config,
        Some("pw"),
    ));
    let answer = TestApp::read(
        app.http
            .post(app.token_url())
            .header("Authorization", basic("ops", secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "pw"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_ok();
    let short = rotor(
        &["client", "add", "weak", "--secret-stdin"],
        &config,
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("32"));
}

#[test]
fn public_clients_and_client_options_are_stored() {
    let dir = TempDir::new();
    let config = dir.config("");
    let out = rotor(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--grants",
            "password",
            "--refresh-ttl",
            "30d",
            "--max-refreshes",
            "7",
            "--no-refresh-tokens",
        ],
        &config,
        None,
    );
    assert_success(&out);
    assert!(!stdout(&out).contains("client_secret"));
    let listed = stdout(&rotor(&["client", "list"], &config, None));
    assert!(
        listed.contains("spa") && listed.contains("public") && listed.contains("off"),
        "{listed}"
    );
    let dup = rotor(&["client", "add", "spa", "--public"], &config, None);
    assert!(!dup.status.success());
    let bad = rotor(
        &["client", "add", "x", "--grants", "implicit"],
        &config,
        None,
    );
    assert!(!bad.status.success());
}

#[test]
fn bad_configuration_value_stops_start_up_naming_the_key() {
    let dir = TempDir::new();
    let config = dir.config("[tokens]\nsession_timeout = \"soon\"\n");
    let out = rotor(&["serve"], &config, None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("session_timeout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let config = dir.config("[refresh]\nrotate = true\nmax_refreshs = 3\n");
    let out = rotor(&["serve"], &config, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_refreshs"));

    let config = dir.config("");
    let out = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(["migrate", "--config"])
        .arg(&config)
        .env("ROTOR__DATABASE__MAX_CONNECTIONS", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_connections"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn environment_overrides_the_file_and_relative_sqlite_urls_work() {
    let dir = TempDir::new();
    let config = dir.config("");
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .args(["migrate", "--config"])
            .arg(&config)
            .current_dir(&dir.0)
            .env("ROTOR__DATABASE__URL", "sqlite://from-env.db")
            .output()
            .unwrap();
        assert_success(&out);
    }
    assert!(dir.0.join("from-env.db").exists());
    assert!(!dir.0.join("rotor.db").exists());
}

#[tokio::test]
async fn first_start_prints_working_demo_credentials_and_sigterm_exits_cleanly() {
    let dir = TempDir::new();
    let config = dir.config("");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = read_first_start(child.stdout.take().unwrap()).await;
    let (secret, password) = (banner.client_secret, banner.password);
    let answer = TestApp::read(
        reqwest::Client::new()
            .post(&banner.token_url)
            .header("Authorization", basic("demo", &secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "demo"),
                ("password", &password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_ok();

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
