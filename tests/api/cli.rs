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
async fn a_client_added_with_require_dpop_must_send_proofs() {
    let dir = TempDir::new();
    let config = dir.config("");
    let app = serve_on(&dir).await;
    let added = rotor(
        &[
            "client",
            "add",
            "strict",
            "--public",
            "--require-dpop",
            "--dpop-nonce",
            "false",
        ],
        &config,
        None,
    );
    assert_success(&added);
    assert!(
        stdout(&added).contains("dpop: required nonce=off"),
        "{}",
        stdout(&added)
    );
    assert_success(&rotor(
        &["user", "add", "bob", "--password-stdin"],
        &config,
        Some("pw"),
    ));
    // RFC 9449 §5.2: a token request without a proof is refused.
    let answer = TestApp::read(
        app.http
            .post(app.token_url())
            .form(&[
                ("grant_type", "password"),
                ("client_id", "strict"),
                ("username", "bob"),
                ("password", "pw"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(400, "invalid_request");
    let record = app.store.find_client("strict").await.unwrap().unwrap();
    assert!(record.dpop.bound_access_tokens);
    assert_eq!(record.dpop.require_nonce, Some(false));
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

// ---------------------------------------------------------------------------
// The authorization code flow on the command line: code-flow clients, consents,
// the demo public client, and `rotor login`.

#[test]
fn a_code_flow_client_shows_its_settings_when_added_and_listed() {
    // Arrange
    let dir = TempDir::new();
    let config = dir.config("");
    // Act
    let added = rotor(
        &[
            "client",
            "add",
            "partner",
            "--grants",
            "authorization_code,refresh_token",
            "--redirect-uri",
            "https://partner.example/cb",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--third-party",
            "--offline-access",
            "--offline-ttl",
            "30d",
        ],
        &config,
        None,
    );
    // Assert
    assert_success(&added);
    let flow = "third-party pkce=required offline=on ttl=30days \
                redirect=https://partner.example/cb,http://127.0.0.1/callback";
    assert!(
        stdout(&added).contains(&format!("\ncode flow: {flow}\n")),
        "{}",
        stdout(&added)
    );
    assert_success(&rotor(&["client", "add", "ops"], &config, None));
    let listed = stdout(&rotor(&["client", "list"], &config, None));
    let line = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
            .to_owned()
    };
    assert!(
        listed.lines().next().unwrap().ends_with(" CODE_FLOW"),
        "{listed}"
    );
    assert!(line("partner").ends_with(flow), "{listed}");
    assert!(line("ops").ends_with(" -"), "{listed}");
    let refused = rotor(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--grants",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--pkce-optional",
        ],
        &config,
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--pkce-optional"));
}

#[tokio::test]
async fn a_users_consents_are_listed_and_withdrawn_one_at_a_time() {
    // Arrange: bob consented to two clients.
    let dir = TempDir::new();
    let config = dir.config("");
    for client in ["partner", "other"] {
        assert_success(&rotor(&["client", "add", client], &config, None));
    }
    assert_success(&rotor(
        &["user", "add", "bob", "--password-stdin"],
        &config,
        Some("pw"),
    ));
    let store = SqliteStore::connect(&dir.db_url(), 2).await.unwrap();
    let bob = rotor::store::UserStore::find_user(&store, "bob")
        .await
        .unwrap()
        .unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for (client, scope) in [("partner", "read offline_access"), ("other", "write")] {
        rotor::store::ConsentStore::grant_consent(&store, bob.id, client, scope, at)
            .await
            .unwrap();
    }

    // Act
    let listed = rotor(&["user", "consents", "bob"], &config, None);
    let revoked = rotor(&["user", "revoke-consent", "bob", "partner"], &config, None);
    let again = rotor(&["user", "revoke-consent", "bob", "partner"], &config, None);

    // Assert
    assert_success(&listed);
    let listed = stdout(&listed);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("CLIENT_ID"));
    assert!(
        lines.iter().any(|l| l.starts_with("partner ")
            && l.contains("2023-11-14T22:13:20Z")
            && l.ends_with(" read offline_access")),
        "{lines:?}"
    );
    assert_success(&revoked);
    assert_eq!(
        stdout(&revoked),
        "consent of user bob to client partner withdrawn\n"
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains(r#"user "bob" has given client "partner" no consent"#),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let left = stdout(&rotor(&["user", "consents", "bob"], &config, None));
    assert!(
        !left.contains("partner") && left.contains("other "),
        "{left}"
    );
    let nobody = rotor(&["user", "consents", "nobody"], &config, None);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains(r#"no user "nobody""#));
}

#[tokio::test]
async fn first_start_registers_the_demo_public_client_and_shows_rotor_login() {
    // Arrange
    let dir = TempDir::new();
    let config = dir.config("");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Act: the banner, up to its rotor login line.
    let out = child.stdout.take().unwrap();
    let banner: Vec<String> = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader};
        let mut lines = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let done = line.contains("rotor login");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();

    // Assert: the curl line is still there, then the login command with the
    // config file; the client it names is registered.
    assert!(
        banner.iter().any(|l| l.contains("curl -s -u 'demo:")),
        "{banner:?}"
    );
    assert_eq!(
        banner.last().unwrap(),
        &format!(
            "  rotor login --client demo-cli --config {}",
            config.display()
        )
    );
    let listed = stdout(&rotor(&["client", "list"], &config, None));
    let demo_cli = listed
        .lines()
        .find(|l| l.starts_with("demo-cli "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        demo_cli.contains(" public ")
            && demo_cli.contains(" authorization_code,refresh_token ")
            && demo_cli.contains(" read write ")
            && demo_cli.ends_with(
                " first-party pkce=required offline=off redirect=http://127.0.0.1/callback"
            ),
        "{demo_cli}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A server whose `tokens.issuer` is its own address, as `rotor login` needs:
/// the issuer must be set before binding, so a free port is found first and
/// taken again by the server (another one if it was taken in between).
async fn serve_with_own_issuer(dir: &TempDir, tls: bool) -> TestApp {
    let store = std::sync::Arc::new(SqliteStore::connect(&dir.db_url(), 4).await.unwrap());
    rotor::store::DatabaseStore::migrate(store.as_ref())
        .await
        .unwrap();
    let fixture = |name: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    };
    for _ in 0..10 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = test_settings();
        settings.database.url = dir.db_url().into();
        settings.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.tokens.issuer = if tls {
            settings.server.tls_cert = Some(fixture("cert.pem"));
            settings.server.tls_key = Some(fixture("key.pem"));
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        let Ok(app) = Application::with_store(settings.clone(), store.clone()).await else {
            continue;
        };
        let clock = app.state().clock.clone();
        tokio::spawn(app.run_until_stopped());
        return TestApp {
            address: settings.tokens.issuer.clone(),
            store,
            clock,
            settings,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            client: crate::helpers::TestClient {
                id: "demo-cli".into(),
                secret: None,
            },
            user: crate::helpers::TestUser {
                username: "demo".into(),
                password: String::new(),
            },
        };
    }
    panic!("no free port for the server");
}

/// The config file `rotor login` reads: the server's issuer.
fn login_config(dir: &TempDir, app: &TestApp) -> PathBuf {
    dir.config(&format!(
        "[tokens]\nissuer = \"{}\"\n",
        app.settings.tokens.issuer
    ))
}

/// A `rotor login` under way, up to the authorize URL it printed.
struct LoginRun {
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// What it wrote to standard error before the URL.
    before: String,
    url: url::Url,
}

impl LoginRun {
    /// Starts `rotor login ARGS --config CONFIG` (60 s timeout) with `env`, and
    /// reads standard error up to the authorize URL on a line of its own.
    async fn start(args: &[&str], config: &Path, env: &[(&str, &str)]) -> LoginRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .arg("login")
            .args(args)
            .args(["--timeout", "60s", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("BROWSER")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (stderr, before, url) = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut stderr = std::io::BufReader::new(stderr);
            let mut before = String::new();
            loop {
                let mut line = String::new();
                assert!(
                    stderr.read_line(&mut line).unwrap() > 0,
                    "no URL printed: {before}"
                );
                if line.starts_with("http://") || line.starts_with("https://") {
                    return (stderr, before, url::Url::parse(line.trim_end()).unwrap());
                }
                before.push_str(&line);
            }
        })
        .await
        .unwrap();
        LoginRun {
            child,
            stderr,
            before,
            url,
        }
    }

    fn param(&self, name: &str) -> String {
        self.url
            .query_pairs()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {}", self.url))
            .1
            .into_owned()
    }

    /// Plays the browser's last step: GETs the redirect URI with `params`, and
    /// returns the page the listener answered.
    async fn callback(&self, params: &[(&str, &str)]) -> (u16, String) {
        let mut url = url::Url::parse(&self.param("redirect_uri")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        let answer = reqwest::get(url).await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// Waits for the exit; its status, standard output and the rest of standard
    /// error.
    async fn finish(self) -> (std::process::ExitStatus, String, String) {
        let LoginRun {
            mut child,
            mut stderr,
            before,
            ..
        } = self;
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            let mut err = before;
            stderr.read_to_string(&mut err).unwrap();
            (child.wait().unwrap(), out, err)
        })
        .await
        .unwrap()
    }
}

/// `rotor client add ID --public` for the code flow on the loopback.
fn add_loopback_client(config: &Path, id: &str) {
    assert_success(&rotor(
        &[
            "client",
            "add",
            id,
            "--public",
            "--grants",
            "authorization_code,refresh_token",
            "--scopes",
            "read write",
            "--redirect-uri",
            "http://127.0.0.1/callback",
        ],
        config,
        None,
    ));
}

#[tokio::test]
async fn rotor_login_sends_a_pkce_authorization_request_and_exchanges_the_code_it_gets_back() {
    // Arrange: no browser can be started; the test plays it.
    let dir = TempDir::new();
    let app = serve_with_own_issuer(&dir, false).await;
    let config = login_config(&dir, &app);
    add_loopback_client(&config, "tool");
    let login = LoginRun::start(
        &["--client", "tool", "--scope", "read"],
        &config,
        &[("BROWSER", "/nonexistent/browser")],
    )
    .await;

    // Assert: the authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
    let issuer = &app.settings.tokens.issuer;
    assert_eq!(
        login.url[..url::Position::AfterPath],
        format!("{issuer}/oauth2/authorize")
    );
    assert_eq!(login.param("response_type"), "code");
    assert_eq!(login.param("client_id"), "tool");
    assert_eq!(login.param("scope"), "read");
    assert_eq!(login.param("code_challenge_method"), "S256");
    assert_eq!(login.param("code_challenge").len(), 43);
    assert!(login.param("state").len() >= 32);
    let redirect = url::Url::parse(&login.param("redirect_uri")).unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/callback");
    assert!(redirect.port().is_some());

    // Act: another path first (a browser asks for its icon), then the callback
    // with a code the server never issued.
    let icon = reqwest::get(format!(
        "http://127.0.0.1:{}/favicon.ico",
        redirect.port().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(icon.status(), 404);
    let state = login.param("state");
    let (status, page) = login
        .callback(&[("code", "never-issued"), ("state", &state), ("iss", issuer)])
        .await;
    let (exit, out, err) = login.finish().await;

    // Assert: the code went to the token endpoint, which refused it.
    assert_eq!(status, 200);
    assert!(page.contains("You can close this window"), "{page}");
    assert!(!exit.success());
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("the token endpoint answered 400: invalid_grant"),
        "{err}"
    );
    // Not opening a browser is only a note.
    assert!(err.contains("note: could not start $BROWSER"), "{err}");
}

#[tokio::test]
async fn rotor_login_reports_an_error_callback_and_exits_non_zero() {
    let dir = TempDir::new();
    let app = serve_with_own_issuer(&dir, false).await;
    let config = login_config(&dir, &app);
    let login = LoginRun::start(&["--client", "tool"], &config, &[]).await;
    assert!(login.url.query_pairs().all(|(n, _)| n != "scope"));
    let state = login.param("state");
    let (status, page) = login
        .callback(&[
            ("error", "access_denied"),
            ("error_description", "The person said no"),
            ("state", &state),
            ("iss", &app.settings.tokens.issuer),
        ])
        .await;
    let (exit, out, err) = login.finish().await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(!exit.success());
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("the authorization server answered access_denied: The person said no"),
        "{err}"
    );
}

#[tokio::test]
async fn rotor_login_refuses_a_callback_with_another_state_or_issuer() {
    let dir = TempDir::new();
    let app = serve_with_own_issuer(&dir, false).await;
    let config = login_config(&dir, &app);
    let issuer = app.settings.tokens.issuer.clone();
    for forged in ["state", "iss"] {
        let login = LoginRun::start(&["--client", "tool"], &config, &[]).await;
        let state = login.param("state");
        let (state, iss) = match forged {
            "state" => ("forged".to_owned(), issuer.clone()),
            _ => (state, "https://evil.example".to_owned()),
        };
        let (_, page) = login
            .callback(&[("code", "c"), ("state", &state), ("iss", &iss)])
            .await;
        let (exit, out, err) = login.finish().await;
        assert!(page.contains("Sign-in failed"), "{page}");
        assert!(!exit.success());
        assert!(out.is_empty(), "{out}");
        let expected = match forged {
            "state" => "the callback's state is not this login's: refused".to_owned(),
            _ => format!(
                "the callback's iss \"https://evil.example\" is not tokens.issuer {issuer:?}"
            ),
        };
        assert!(err.contains(&expected), "{err}");
    }
}

#[tokio::test]
async fn rotor_login_talks_https_to_an_issuer_whose_ca_it_is_given() {
    // Arrange: rotor serving https with the test CA's certificate for localhost.
    let dir = TempDir::new();
    let app = serve_with_own_issuer(&dir, true).await;
    let config = login_config(&dir, &app);
    add_loopback_client(&config, "tool");
    let ca = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let issuer = app.settings.tokens.issuer.clone();

    for trusted in [true, false] {
        let mut args = vec!["--client", "tool"];
        if trusted {
            args.extend(["--ca-file", ca.to_str().unwrap()]);
        }
        let login = LoginRun::start(&args, &config, &[]).await;
        assert!(
            login
                .url
                .as_str()
                .starts_with(&format!("{issuer}/oauth2/authorize?"))
        );
        let state = login.param("state");
        // Act
        login
            .callback(&[
                ("code", "never-issued"),
                ("state", &state),
                ("iss", &issuer),
            ])
            .await;
        let (exit, _, err) = login.finish().await;
        // Assert: with the CA the token endpoint answers; without it the
        // certificate is refused.
        assert!(!exit.success());
        if trusted {
            assert!(
                err.contains("the token endpoint answered 400: invalid_grant"),
                "{err}"
            );
        } else {
            assert!(err.contains("TLS handshake"), "{err}");
        }
    }
}

/// The browser for `rotor login`: Python's standard library only. It opens the
/// authorize URL keeping cookies, expects the login page (`<title>Sign in</title>`,
/// one `<form method="post">` with hidden inputs including `csrf_token`, and the
/// fields `username` and `password`), posts it to `/oauth2/authorize` with
/// BROWSER_USERNAME and BROWSER_PASSWORD, expects a 303 to the redirect URI with
/// `code`, `state` and `iss`, and follows it. Any surprise goes to standard error
/// (which is rotor login's) and ends the script, so that no callback comes.
const LOGIN_BROWSER: &str = r#"#!/usr/bin/env python3
import html.parser, http.cookiejar, os, sys, urllib.error, urllib.parse, urllib.request

url = sys.argv[1]
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
redirect_uri, state = query["redirect_uri"], query["state"]

def fail(message):
    sys.exit("browser: " + message)

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar), NoRedirect)

def open_(request):
    try:
        response = opener.open(request, timeout=30)
    except urllib.error.HTTPError as e:
        response = e
    return response.status, response.headers, response.read().decode("utf-8", "replace")

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self.in_title, self.title = [], False, ""
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self.in_title = True
        elif tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(),
                               "action": a.get("action"), "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append(a)
    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
    def handle_data(self, data):
        if self.in_title:
            self.title += data

status, headers, body = open_(url)
if status != 200:
    fail("GET authorize answered %d: %s" % (status, body[:500]))
if len(jar) == 0:
    fail("GET authorize set no cookie")
page = Page()
page.feed(body)
if page.title.strip() != "Sign in":
    fail("the page's title is %r" % page.title)
if len(page.forms) != 1 or page.forms[0]["method"] != "post":
    fail("expected one form method=post, got %r" % page.forms)
form = page.forms[0]
fields = {i["name"]: i.get("value") or "" for i in form["inputs"]
          if i.get("type") == "hidden" and i.get("name")}
if not fields.get("csrf_token"):
    fail("no hidden csrf_token in %r" % form["inputs"])
names = {i.get("name") for i in form["inputs"]}
if not {"username", "password"} <= names:
    fail("no username and password fields in %r" % form["inputs"])
submit = [i for i in form["inputs"] if i.get("type") == "submit" and i.get("name")]
if submit:
    fields[submit[0]["name"]] = submit[0].get("value") or ""
fields["username"] = os.environ["BROWSER_USERNAME"]
fields["password"] = os.environ["BROWSER_PASSWORD"]
action = urllib.parse.urljoin(url, form["action"] or url)
if urllib.parse.urlsplit(action).path != "/oauth2/authorize":
    fail("the form posts to %r" % action)
status, headers, body = open_(urllib.request.Request(
    action, data=urllib.parse.urlencode(fields).encode(), method="POST",
    headers={"Content-Type": "application/x-www-form-urlencoded"}))
if status != 303:
    fail("POST authorize answered %d: %s" % (status, body[:500]))
location = headers["Location"]
if not location.startswith(redirect_uri + "?"):
    fail("redirected to %r, not to %r" % (location, redirect_uri))
answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
if not answer.get("code") or answer.get("state") != state or not answer.get("iss"):
    fail("the redirect lacks code, state or iss: %r" % sorted(answer))
status, headers, body = open_(location)
if status != 200 or "You can close this window" not in body:
    fail("the callback answered %d: %s" % (status, body[:500]))
"#;

#[tokio::test]
async fn rotor_login_signs_the_demo_user_in_through_the_login_page() {
    // Arrange: the first-start demo on a server whose issuer is its address, and
    // a browser that signs in as demo.
    let dir = TempDir::new();
    let app = serve_with_own_issuer(&dir, false).await;
    let hasher = rotor::crypto::password::PasswordHasher::new(&app.settings.passwords).unwrap();
    let demo =
        rotor::admin::create_demo(app.store.as_ref(), &hasher, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .unwrap();
    let config = login_config(&dir, &app);
    let browser = dir.0.join("browser.py");
    std::fs::write(&browser, LOGIN_BROWSER).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // Act
    let login = LoginRun::start(
        &["--client", "demo-cli"],
        &config,
        &[
            ("BROWSER", browser.to_str().unwrap()),
            ("BROWSER_USERNAME", "demo"),
            ("BROWSER_PASSWORD", demo.password.expose()),
        ],
    )
    .await;
    let (exit, out, err) = login.finish().await;

    // Assert: the token response, whose refresh token works for demo-cli.
    assert!(exit.success(), "stdout: {out}\nstderr: {err}");
    let tokens: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tokens["token_type"], "Bearer", "{out}");
    assert_eq!(tokens["scope"], "read write", "{out}");
    let claims = app
        .verify_access_token(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(claims.client_id, "demo-cli");
    let refreshed = TestApp::read(
        app.http
            .post(app.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", "demo-cli"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    refreshed.assert_ok();
}
