//! Client ids as RFC 6749 Appendix A.1 allows them (`*VSCHAR`: printable ASCII and
//! the space), registered with `rotor client add` on each store and used through a
//! real server with `client_secret_basic` (form-url-encoded, §2.3.1),
//! `client_secret_post` and as public clients.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

use crate::helpers::{Db, TestApp, basic, spawn_app};

/// Runs a test body on a fresh PostgreSQL database and a fresh SQLite file, giving
/// it the database's URL for the `rotor` binary as well.
macro_rules! on_both_stores_with_url {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[sqlx::test(migrations = "migrations/postgres")]
            async fn postgres(pool: sqlx::PgPool) {
                let options = pool.connect_options();
                let url = format!(
                    "postgres://{}@{}:{}/{}",
                    options.get_username(),
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap(),
                );
                let db = $crate::helpers::Db::postgres(pool);
                super::$name(db.clone(), url).await;
                db.close().await;
            }
            #[sqlx::test(migrations = "migrations/sqlite")]
            async fn sqlite(pool: sqlx::SqlitePool) {
                let url = format!("sqlite://{}", pool.connect_options().get_filename().display());
                let db = $crate::helpers::Db::sqlite(pool);
                super::$name(db.clone(), url).await;
                db.close().await;
            }
        }
    )*};
}

on_both_stores_with_url!(
    client_ids_with_any_vschar_work_with_basic_and_post,
    public_client_ids_with_spaces_work,
    client_ids_outside_vschar_are_refused_by_the_cli,
);

/// The `rotor` binary on one database, with a configuration file of its own.
struct Rotor {
    dir: PathBuf,
    config: PathBuf,
}

impl Rotor {
    fn on(url: &str) -> Rotor {
        let dir = std::env::temp_dir().join(format!("rotor-ids-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("rotor.toml");
        std::fs::write(
            &config,
            format!("[database]\nurl = \"{url}\"\n[log]\nfilter = \"warn\"\n"),
        )
        .unwrap();
        Rotor { dir, config }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
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
}

impl Drop for Rotor {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A password grant for the seeded user with `extra` parameters and an optional
/// Authorization header.
async fn login(
    app: &TestApp,
    auth: Option<String>,
    extra: &[(&str, &str)],
) -> crate::helpers::Answer {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", app.user.username.as_str()),
        ("password", app.user.password.as_str()),
    ];
    form.extend_from_slice(extra);
    let mut req = app.http.post(app.token_url()).form(&form);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    TestApp::read(req.send().await.unwrap()).await
}

async fn client_ids_with_any_vschar_work_with_basic_and_post(db: Db, url: String) {
    // Arrange: ids and secrets with the characters §2.3.1's encoding must carry.
    let app = spawn_app(db).await;
    let rotor = Rotor::on(&url);
    let clients = [
        (
            "my client",
            "a secret with spaces, of more than 32 characters",
        ),
        ("svc:reports", "colon:percent%plus+slash/0123456789abcdef"),
        ("100% sure", "%41%42 is not decoded twice 0123456789abcdef"),
        ("a+b/c", "+++///:::%%% and enough characters to pass"),
        (
            " !\"#$&'()*,.;<=>?@[\\]^_`{|}~",
            "\"quoted\" and \\back\\slashed\\ 0123456789",
        ),
    ];
    for (id, secret) in clients {
        assert_success(&rotor.run(
            &["client", "add", id, "--secret-stdin", "--scopes", "read"],
            Some(secret),
        ));
    }
    for (id, secret) in clients {
        // Act
        let with_basic = login(&app, Some(basic(id, secret)), &[]).await;
        let with_post = login(&app, None, &[("client_id", id), ("client_secret", secret)]).await;
        let wrong = login(&app, Some(basic(id, &format!("{secret}x"))), &[]).await;
        // Assert
        with_basic.assert_ok();
        with_post.assert_ok();
        let claims = app
            .verify_access_token(with_basic.str("access_token"))
            .await;
        assert_eq!(claims.client_id, id);
        let claims = app.verify_access_token(with_post.str("access_token")).await;
        assert_eq!(claims.client_id, id);
        wrong.assert_error(401, "invalid_client");
    }
    let list = rotor.run(&["client", "list"], None);
    assert_success(&list);
    assert!(String::from_utf8_lossy(&list.stdout).contains("my client"));
}

async fn public_client_ids_with_spaces_work(db: Db, url: String) {
    // Arrange
    let app = spawn_app(db).await;
    let rotor = Rotor::on(&url);
    assert_success(&rotor.run(&["client", "add", "my spa", "--public"], None));
    // Act
    let answer = login(&app, None, &[("client_id", "my spa")]).await;
    // Assert
    answer.assert_ok();
    let claims = app.verify_access_token(answer.str("access_token")).await;
    assert_eq!(claims.client_id, "my spa");
}

async fn client_ids_outside_vschar_are_refused_by_the_cli(db: Db, url: String) {
    // Arrange
    let _app = spawn_app(db).await;
    let rotor = Rotor::on(&url);
    let longest = "x".repeat(255);
    let too_long = "x".repeat(256);
    // Act and assert
    assert_success(&rotor.run(&["client", "add", &longest, "--public"], None));
    for id in [
        "",
        "caf\u{e9}",
        "tab\there",
        "new\nline",
        "del\x7f",
        too_long.as_str(),
    ] {
        let refused = rotor.run(&["client", "add", id, "--public"], None);
        assert!(!refused.status.success(), "{id:?} was accepted");
        if !id.is_empty() {
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(stderr.contains("client id"), "{id:?}: {stderr}");
        }
    }
    let list = rotor.run(&["client", "list"], None);
    assert_success(&list);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.contains(&longest));
    assert!(
        !listed.contains("caf") && !listed.contains("here"),
        "{listed}"
    );
}
