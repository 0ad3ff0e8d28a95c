//! Spawns a real rotor server on a random port against a fresh database, and talks
//! to it over HTTP.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use rotor::{
    Application, Settings,
    clock::Clock,
    crypto::{
        jwt::AccessClaims,
        password::{Password, PasswordHasher},
        token::TokenHash,
    },
    store::{ClientRecord, PgStore, SqliteStore, Store, UserRecord},
};
use serde_json::Value;
use uuid::Uuid;

/// Runs one test body against PostgreSQL and against SQLite, each on a fresh
/// database: `mod name { postgres(), sqlite() }` calling `async fn name(db: Db)`.
/// The PostgreSQL half first checks, once per process, that PostgreSQL answers
/// (see `tests/support/postgres.rs`).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn postgres() {
                async fn on(pool: sqlx::PgPool) {
                    let db = $crate::helpers::Db::postgres(pool);
                    super::$name(db.clone()).await;
                    db.close().await;
                }
                $crate::postgres::run_on_fresh_database(
                    concat!(module_path!(), "::postgres"),
                    on,
                );
            }
            #[sqlx::test(migrations = "migrations/sqlite")]
            async fn sqlite(pool: sqlx::SqlitePool) {
                let db = $crate::helpers::Db::sqlite(pool);
                super::$name(db.clone()).await;
                db.close().await;
            }
        }
    )*};
}

/// A fresh, migrated test database, and the stores opened on it.
#[derive(Debug, Clone)]
pub struct Db {
    kind: DbKind,
    opened: Arc<Mutex<Vec<Arc<dyn Store>>>>,
}

#[derive(Debug, Clone)]
enum DbKind {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    pub fn postgres(pool: sqlx::PgPool) -> Db {
        Db {
            kind: DbKind::Postgres(pool),
            opened: Arc::default(),
        }
    }

    pub fn sqlite(pool: sqlx::SqlitePool) -> Db {
        Db {
            kind: DbKind::Sqlite(pool),
            opened: Arc::default(),
        }
    }

    /// A store with a pool of its own, as a separate rotor instance would have.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = match &self.kind {
            DbKind::Postgres(pool) => Arc::new(
                PgStore::open((*pool.connect_options()).clone(), 16)
                    .await
                    .unwrap(),
            ),
            DbKind::Sqlite(pool) => Arc::new(
                SqliteStore::open((*pool.connect_options()).clone(), 16)
                    .await
                    .unwrap(),
            ),
        };
        self.opened.lock().unwrap().push(store.clone());
        store
    }

    /// Closes every store opened on this database, so that the test database can
    /// be dropped at once.
    pub async fn close(&self) {
        let opened: Vec<_> = self.opened.lock().unwrap().drain(..).collect();
        for store in opened {
            store.close().await;
        }
        // Closed connections can linger server-side for a moment, and DROP DATABASE
        // then waits five seconds for them: end them now.
        if let DbKind::Postgres(pool) = &self.kind {
            sqlx::query(
                "select pg_terminate_backend(pid) from pg_stat_activity
                 where datname = current_database() and pid <> pg_backend_pid()",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }

    /// A `database.url` naming this database, for a `rotor` command run beside the
    /// test's servers.
    pub fn url(&self) -> String {
        match &self.kind {
            DbKind::Postgres(pool) => {
                // The server and credentials of DATABASE_URL, this test's database.
                let server = std::env::var("DATABASE_URL").unwrap();
                let (server, query) = server.split_once('?').unwrap_or((&server, ""));
                let (server, _) = server.rsplit_once('/').unwrap();
                let database = pool.connect_options().get_database().unwrap().to_owned();
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                format!("{server}/{database}{query}")
            }
            DbKind::Sqlite(pool) => format!(
                "sqlite://{}",
                pool.connect_options().get_filename().display()
            ),
        }
    }

    /// The answer of a `select count(*) …` query, on either backend.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.kind {
            DbKind::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            DbKind::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// Every row of every table as text, as a database dump would show it.
    pub async fn dump(&self) -> String {
        match &self.kind {
            DbKind::Postgres(pool) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "select table_name::text from information_schema.tables where table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                let mut out = String::new();
                for (table,) in tables {
                    let rows: Vec<(String,)> =
                        sqlx::query_as(&format!("select row_to_json(t)::text from \"{table}\" t"))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    for (row,) in rows {
                        out.push_str(&row);
                        out.push('\n');
                    }
                }
                out
            }
            DbKind::Sqlite(pool) => {
                // The file itself, WAL included: what a copy of the database holds.
                let path = pool.connect_options().get_filename().to_owned();
                let mut bytes = std::fs::read(&path).unwrap();
                if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
                    bytes.extend(wal);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }
}

/// A client the test can authenticate as.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

/// A user the test can log in as.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub username: String,
    pub password: String,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error` code of an error answer.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// A string field of the body.
    pub fn str(&self, field: &str) -> &str {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.body))
    }

    pub fn refresh_token(&self) -> String {
        self.str("refresh_token").to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 6749 §5.2 error answer.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, error),
            "answer: {}",
            self.body
        );
        assert!(
            self.body["error_description"].is_string(),
            "no description: {}",
            self.body
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.status, 200, "answer: {}", self.body);
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
    }
}

/// A running server and what the test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub client: TestClient,
    pub user: TestUser,
}

/// Settings for tests: random port, cheap argon2, a recognisable issuer.
pub fn test_settings() -> Settings {
    let mut s = Settings::load(None).unwrap();
    s.server.bind = "127.0.0.1:0".parse().unwrap();
    s.tokens.issuer = "https://rotor.test".into();
    s.passwords.memory_kib = 64;
    s.passwords.iterations = 1;
    s.log.filter = "warn".into();
    // A clean-up at a random moment would race tests that move the clock; the
    // clean-up tests turn it on.
    s.cleanup.enabled = false;
    s
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        rotor::telemetry::init("debug", std::io::stdout);
    } else {
        rotor::telemetry::init("off", std::io::sink);
    }
}

pub const CLIENT_ID: &str = "app";
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// Spawns a server with the test settings.
pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Spawns a server with adjusted settings, seeded with a confidential client
/// (`app`, scopes `read write`) and a user (`alice`).
pub async fn spawn_app_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    configure(&mut settings);
    let store = db.open_store().await;
    let secret = "app-secret-0123456789-0123456789-0123456789".to_owned();
    store
        .create_client(&client_record(CLIENT_ID, Some(&secret), "read write"))
        .await
        .unwrap();
    add_user(store.as_ref(), &settings, USERNAME, PASSWORD).await;
    let mut app = spawn_instance(db, settings).await;
    app.client = TestClient {
        id: CLIENT_ID.into(),
        secret: Some(secret),
    };
    app
}

/// Spawns one more server on an existing database (another instance behind the
/// same load balancer), with a store pool of its own.
pub async fn spawn_instance(db: Db, settings: Settings) -> TestApp {
    init_logs();
    let store = db.open_store().await;
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
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        client: TestClient {
            id: CLIENT_ID.into(),
            secret: None,
        },
        user: TestUser {
            username: USERNAME.into(),
            password: PASSWORD.into(),
        },
    }
}

/// A client record with both grants.
pub fn client_record(id: &str, secret: Option<&str>, scopes: &str) -> ClientRecord {
    ClientRecord {
        id: id.into(),
        secret_hash: secret.map(TokenHash::of),
        grant_types: vec![
            rotor::wire::GrantType::Password,
            rotor::wire::GrantType::RefreshToken,
        ],
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        refresh_tokens: true,
        refresh_ttl: None,
        max_refreshes: None,
        grace_period: None,
        code_flow: Default::default(),
        dpop: Default::default(),
        created_at: time::OffsetDateTime::now_utc(),
    }
}

/// Adds a user with an argon2id hash made with the settings' parameters.
pub async fn add_user(store: &dyn Store, settings: &Settings, username: &str, password: &str) {
    let hasher = PasswordHasher::new(&settings.passwords).unwrap();
    store
        .create_user(&UserRecord {
            id: Uuid::new_v4(),
            username: username.into(),
            password_hash: hasher
                .hash_blocking(&Password::new(password.into()))
                .unwrap(),
            disabled: false,
            admin: false,
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
}

/// `Authorization: Basic` for a client, with RFC 6749 §2.3.1 form-url-encoding.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

impl TestApp {
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.address)
    }

    /// Reads a response whole; a non-JSON body becomes `Value::Null`.
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// POSTs a form to the token endpoint, authenticating as `client` with Basic.
    pub async fn post_form_as(&self, client: &TestClient, form: &[(&str, &str)]) -> Answer {
        let mut req = self.http.post(self.token_url()).form(form);
        if let Some(secret) = &client.secret {
            req = req.header("Authorization", basic(&client.id, secret));
        } else {
            let mut with_id = form.to_vec();
            with_id.push(("client_id", &client.id));
            req = self.http.post(self.token_url()).form(&with_id);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// POSTs a form as the seeded client.
    pub async fn post_form(&self, form: &[(&str, &str)]) -> Answer {
        self.post_form_as(&self.client, form).await
    }

    /// POSTs raw bytes with a content type and optional Authorization header.
    pub async fn post_raw(
        &self,
        content_type: Option<&str>,
        auth: Option<String>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self.http.post(self.token_url()).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// POSTs a form to any endpoint, authenticating as `client` (Basic when it has
    /// a secret, else `client_id` in the body).
    pub async fn post_to(&self, path: &str, client: &TestClient, form: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.address);
        let req = match &client.secret {
            Some(secret) => self
                .http
                .post(url)
                .header("Authorization", basic(&client.id, secret))
                .form(form),
            None => {
                let mut with_id = form.to_vec();
                with_id.push(("client_id", &client.id));
                self.http.post(url).form(&with_id)
            }
        };
        Self::read(req.send().await.unwrap()).await
    }

    /// Revokes a token as the seeded client.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Answer {
        let mut form = vec![("token", token)];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        self.post_to("/oauth2/revoke", &self.client, &form).await
    }

    /// Introspects a token as the seeded client.
    pub async fn introspect(&self, token: &str) -> Answer {
        self.post_to("/oauth2/introspect", &self.client, &[("token", token)])
            .await
    }

    /// GETs `path` with an optional bearer token.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.address));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// The seeded client's Basic header.
    pub fn client_basic(&self) -> String {
        basic(&self.client.id, self.client.secret.as_deref().unwrap())
    }

    /// A password grant for the seeded user.
    pub async fn login(&self) -> Answer {
        self.post_form(&[
            ("grant_type", "password"),
            ("username", &self.user.username),
            ("password", &self.user.password),
        ])
        .await
    }

    /// A password grant for the seeded user, as `client`.
    pub async fn login_as(&self, client: &TestClient) -> Answer {
        self.post_form_as(
            client,
            &[
                ("grant_type", "password"),
                ("username", &self.user.username),
                ("password", &self.user.password),
            ],
        )
        .await
    }

    /// A refresh as `client`.
    pub async fn refresh_as(&self, client: &TestClient, refresh_token: &str) -> Answer {
        self.post_form_as(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A refresh with the seeded client.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// The access token's claims, after verifying it against `/oauth2/jwks`.
    pub async fn verify_access_token(&self, jwt: &str) -> AccessClaims {
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(format!("{}/oauth2/jwks", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid published in jwks");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.tokens.issuer]);
        validation.set_audience(&[&self.settings.tokens.audience]);
        jsonwebtoken::decode::<AccessClaims>(jwt, &key, &validation)
            .unwrap()
            .claims
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// What `rotor serve` prints on first start: the demo credentials and the token URL
/// of its curl command.
pub struct FirstStart {
    pub client_secret: String,
    pub password: String,
    pub token_url: String,
}

/// Reads the first-start banner from a `rotor serve` child's stdout, up to and
/// including the curl line.
pub async fn read_first_start(out: std::process::ChildStdout) -> FirstStart {
    use std::io::{BufRead, BufReader};
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let done = line.contains("curl ");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{name} not printed: {lines:?}"))
    };
    let curl = lines.last().unwrap();
    let token_url = curl
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/oauth2/token"))
        .unwrap_or_else(|| panic!("no token URL in {curl}"))
        .to_owned();
    FirstStart {
        client_secret: field("client_secret:"),
        password: field("password:"),
        token_url,
    }
}
