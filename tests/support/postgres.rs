//! Fresh PostgreSQL databases for tests, behind a once-per-process check that the
//! server at `DATABASE_URL` answers. Without the check, each `#[sqlx::test]` waits
//! out sqlx's 30 s pool timeout on its own when PostgreSQL is down, and a run ends
//! in a hundred alike failures; with it, the first PostgreSQL test says what is
//! missing and how to start it, and every later one fails at once in one line.
//!
//! Shared by the `api` and `store` test binaries (`#[path]`).

use std::{future::Future, sync::OnceLock, time::Duration};

use sqlx::{
    Connection, PgConnection, PgPool,
    migrate::Migrator,
    testing::{TestArgs, TestFn},
};

/// The migrations every PostgreSQL test database gets.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long the check waits for PostgreSQL to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the check found, once per process.
static REACHABLE: OnceLock<Result<(), Unreachable>> = OnceLock::new();

/// Why PostgreSQL cannot be used, and which test found out.
#[derive(Debug)]
struct Unreachable {
    url: String,
    cause: String,
    first_test: String,
}

/// Runs `test` on a fresh, migrated PostgreSQL database, as
/// `#[sqlx::test(migrations = "migrations/postgres")]` does, after the
/// once-per-process check. `test_path` names the database, as sqlx's macro does:
/// `concat!(module_path!(), "::", name)`.
pub fn run_on_fresh_database<Fut>(test_path: &'static str, test: fn(PgPool) -> Fut)
where
    Fut: Future<Output = ()>,
{
    require_postgres();
    let mut args = TestArgs::new(test_path);
    args.migrator(&MIGRATOR);
    TestFn::run_test(test, args);
}

/// Panics unless PostgreSQL answers at `DATABASE_URL`: with the whole story in the
/// test that checked, with one line in the others.
fn require_postgres() {
    let mut checked_here = false;
    let found = REACHABLE.get_or_init(|| {
        checked_here = true;
        check()
    });
    let Err(unreachable) = found else { return };
    let Unreachable {
        url,
        cause,
        first_test,
    } = unreachable;
    if checked_here {
        panic!(
            "PostgreSQL is not reachable at {url}: {cause}\n\
             The PostgreSQL tests create a fresh database per test there, so they need a \
             running server and a user that may create databases.\n\
             Start it (`pg_ctlcluster <version> main start`, `systemctl start postgresql`) \
             or set DATABASE_URL to one that runs; \
             `cargo test -- sqlite` runs the SQLite half alone.\n\
             Every other PostgreSQL test of this run fails at once, pointing here."
        );
    }
    panic!("PostgreSQL is not reachable at {url}: see the failure of {first_test}");
}

/// One connection attempt with a short timeout.
fn check() -> Result<(), Unreachable> {
    let first_test = std::thread::current()
        .name()
        .unwrap_or("the first PostgreSQL test")
        .to_owned();
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Err(Unreachable {
            url: "(DATABASE_URL is not set)".into(),
            cause: "nowhere to connect".into(),
            first_test,
        });
    };
    let attempt = async {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url)).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(CONNECT_TIMEOUT)
            )),
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime for the check: {e}"))
        .and_then(|runtime| runtime.block_on(attempt));
    outcome.map_err(|cause| Unreachable {
        url: without_password(&url),
        cause,
        first_test,
    })
}

/// The URL as it may be printed: a password in the user part or in the query is
/// replaced by `[redacted]`.
fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest
        .find(['/', '?'])
        .map_or((rest, ""), |at| rest.split_at(at));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:[redacted]@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=[redacted]")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

#[test]
fn printed_urls_keep_everything_but_the_password() {
    assert_eq!(
        without_password("postgres://postgres@127.0.0.1:5432/postgres"),
        "postgres://postgres@127.0.0.1:5432/postgres"
    );
    assert_eq!(
        without_password("postgres://rotor:s3cr%40t@db:5432/rotor?sslmode=require"),
        "postgres://rotor:[redacted]@db:5432/rotor?sslmode=require"
    );
    assert_eq!(
        without_password("postgres://db/rotor?user=rotor&password=s3cret"),
        "postgres://db/rotor?user=rotor&password=[redacted]"
    );
    assert_eq!(
        without_password("postgres://u:p@host"),
        "postgres://u:[redacted]@host"
    );
}
