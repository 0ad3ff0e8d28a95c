//! The command line: serve, migrate, and the administration of clients and users.
//! clap reads only the command and `--config`; every setting comes from the
//! configuration layers.

use std::{io::Read, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::{
    app::Application,
    config::Settings,
    crypto::{
        password::{Password, PasswordHasher},
        token::{ClientSecret, generate_password},
    },
    oauth::{Scope, request::syntax},
    store::{self, ClientRecord, Store, StoreError, UserRecord},
    telemetry,
};

/// rotor: an OAuth 2.0 token server with single-use, rotating refresh tokens.
#[derive(Debug, Parser)]
#[command(name = "rotor", version, about)]
pub struct Cli {
    /// Configuration file (TOML), layered over the defaults; ROTOR__SECTION__KEY
    /// environment variables win over both.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply the database migrations; safe to run any number of times.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users of the password grant.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List audit events, newest first: issuance, refresh, reuse detection,
    /// revocation, failed logins and lockouts.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this username.
    #[arg(long)]
    pub user: Option<String>,
    /// Only events of this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Only events since a moment: a duration ago (`1h`, `7d`) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active. Older keys stay published until every token
    /// they signed has expired, then are dropped.
    Rotate,
    /// List the signing keys.
    List,
    /// Seal every signing key under the current `keys.secret` (after changing it;
    /// the old secret must be in `keys.previous_secrets`).
    Reseal,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's generated secret is printed once.
    Add(ClientAdd),
    /// List clients.
    List,
    /// Remove a client; its tokens stop working at once.
    Remove { client_id: String },
}

#[derive(Debug, Args)]
pub struct ClientAdd {
    pub client_id: String,
    /// A public client: no secret, identified by client_id alone.
    #[arg(long, conflicts_with = "secret_stdin")]
    pub public: bool,
    /// Read the secret (at least 32 characters) from standard input instead of
    /// generating one.
    #[arg(long)]
    pub secret_stdin: bool,
    /// Grant types the client may use.
    #[arg(long, value_delimiter = ',', default_value = "password,refresh_token")]
    pub grants: Vec<String>,
    /// Scopes the client may request (space-separated); the default scope of its tokens.
    #[arg(long, default_value = "")]
    pub scopes: String,
    /// Refresh-token lifetime for this client (e.g. 30d), instead of the server's.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub refresh_ttl: Option<Duration>,
    /// Refreshes allowed per login for this client (0 = unlimited), instead of the server's.
    #[arg(long, value_name = "N")]
    pub max_refreshes: Option<u32>,
    /// Issue no refresh tokens to this client.
    #[arg(long)]
    pub no_refresh_tokens: bool,
    /// Retry grace period for this client (at most 120s), instead of the server's.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace_period: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. A generated password is printed once unless one is read from stdin.
    Add {
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user; their refresh tokens stop working at once.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
}

/// Grant types rotor implements.
const GRANT_TYPES: [&str; 2] = ["password", "refresh_token"];

/// Runs a parsed command line.
///
/// # Errors
/// Bad configuration, an unreachable store, or a refused administrative change.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init_with_format(&settings.log.filter, settings.log.format, std::io::stderr);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let store = open_store(&settings, false).await?;
            store.migrate().await.context("running migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Client(cmd) => client(cmd, &settings).await,
        Command::User(cmd) => user(cmd, &settings).await,
        Command::Keys(cmd) => keys(cmd, &settings).await,
        Command::Audit(args) => audit(args, &settings).await,
    }
}

async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(
        &settings.database.url,
        settings.database.max_connections.min(2),
    )
    .await
    .context("connecting to the database (database.url)")?;
    if migrate && settings.database.auto_migrate {
        store.migrate().await.context("running migrations")?;
    }
    Ok(store)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let addr = app.local_addr()?;
    let state = app.state().clone();
    if let Some(id) = &state.settings.clients.anonymous_client {
        match state.store.find_client(id).await? {
            Some(c) if c.is_public() => {}
            _ => tracing::warn!(
                client_id = %id,
                "clients.anonymous_client names no public client; add it with `rotor client add {id} --public`"
            ),
        }
    }
    if state.store.is_empty().await? {
        create_demo(state.store.as_ref(), &state.hasher, addr).await?;
    }
    tracing::info!(%addr, tls = app.is_tls(), "rotor listening");
    app.run_until_stopped().await.context("serving")
}

/// On first start, a demo client and user so that a newcomer gets tokens at once.
async fn create_demo(
    store: &dyn Store,
    hasher: &PasswordHasher,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let secret = ClientSecret::generate();
    let password = generate_password();
    let now = time::OffsetDateTime::now_utc();
    let created = store
        .create_client(&ClientRecord {
            id: "demo".into(),
            secret_hash: Some(secret.hash()),
            grant_types: GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
            scopes: vec!["read".into(), "write".into()],
            refresh_tokens: true,
            refresh_ttl: None,
            max_refreshes: None,
            grace_period: None,
            created_at: now,
        })
        .await;
    match created {
        // Instances starting together on an empty store: another one was first.
        Err(StoreError::Conflict { .. }) => return Ok(()),
        other => other?,
    }
    let hash = hash_password(hasher, password.clone()).await?;
    store
        .create_user(&UserRecord {
            id: Uuid::new_v4(),
            username: "demo".into(),
            password_hash: hash,
            disabled: false,
            created_at: now,
        })
        .await?;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!(
        "\nFirst start: created a demo client and user. These credentials are shown only once.\n\
         \n  client_id:     demo\n  client_secret: {secret}\n  username:      demo\n  password:      {password}\n\
         \nGet tokens:\n\n  curl -s -u 'demo:{secret}' -d grant_type=password -d username=demo -d 'password={password}' http://{host}/oauth2/token\n",
        secret = secret.expose(),
    );
    Ok(())
}

async fn hash_password(hasher: &PasswordHasher, password: String) -> anyhow::Result<String> {
    let hasher = hasher.clone();
    tokio::task::spawn_blocking(move || hasher.hash_blocking(&Password::new(password)))
        .await
        .context("hashing task")?
}

/// Reads a secret from stdin without its trailing newline.
fn read_stdin_secret(what: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let trimmed = text.trim_end_matches(['\r', '\n']).to_owned();
    if trimmed.is_empty() {
        bail!("the {what} read from standard input is empty");
    }
    Ok(trimmed)
}

/// RFC 6749 Appendix A.1: `client-id = *VSCHAR`, printable ASCII and the space.
/// Empty ids and ids over 255 characters are refused as well; clients send theirs
/// form-url-encoded in a Basic header (§2.3.1), so `:`, `%` and `+` are fine.
fn check_client_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > 255 || !id.chars().all(syntax::is_vschar) {
        bail!(
            "a client id must be 1 to 255 printable ASCII characters or spaces \
             (RFC 6749 Appendix A.1)"
        );
    }
    Ok(())
}

fn check_name(kind: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        bail!("a {kind} must be 1 to 255 characters without control characters");
    }
    Ok(())
}

async fn client(cmd: ClientCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    match cmd {
        ClientCommand::Add(add) => {
            check_client_id(&add.client_id)?;
            for g in &add.grants {
                if !GRANT_TYPES.contains(&g.as_str()) {
                    bail!(
                        "unknown grant type {g:?}; rotor supports {}",
                        GRANT_TYPES.join(", ")
                    );
                }
            }
            if add
                .grace_period
                .is_some_and(|g| g > crate::config::MAX_GRACE_PERIOD)
            {
                bail!("--grace-period must be at most 120s");
            }
            let scopes = Scope::parse(&add.scopes)
                .map_err(|e| anyhow::anyhow!("--scopes: {}", e.description()))?;
            let secret = match (add.public, add.secret_stdin) {
                (true, _) => None,
                (false, true) => Some(
                    ClientSecret::parse(read_stdin_secret("client secret")?)
                        .map_err(anyhow::Error::msg)?,
                ),
                (false, false) => Some(ClientSecret::generate()),
            };
            let record = ClientRecord {
                id: add.client_id.clone(),
                secret_hash: secret.as_ref().map(ClientSecret::hash),
                grant_types: add.grants.clone(),
                scopes: scopes.tokens().to_vec(),
                refresh_tokens: !add.no_refresh_tokens,
                refresh_ttl: add.refresh_ttl,
                max_refreshes: add.max_refreshes,
                grace_period: add.grace_period,
                created_at: time::OffsetDateTime::now_utc(),
            };
            match store.create_client(&record).await {
                Err(StoreError::Conflict { .. }) => {
                    bail!("client {:?} already exists", add.client_id)
                }
                other => other?,
            }
            match (secret, add.secret_stdin) {
                (Some(s), false) => println!(
                    "client {} added\nclient_secret: {}\n(shown only once)",
                    add.client_id,
                    s.expose()
                ),
                (Some(_), true) => println!("client {} added (confidential)", add.client_id),
                (None, _) => println!("client {} added (public)", add.client_id),
            }
        }
        ClientCommand::List => {
            println!(
                "{:<24} {:<12} {:<26} {:<20} REFRESH",
                "CLIENT_ID", "TYPE", "GRANTS", "SCOPES"
            );
            for c in store.list_clients().await? {
                let refresh = if c.refresh_tokens {
                    format!(
                        "on ttl={} max={}",
                        c.refresh_ttl
                            .map_or("default".into(), |d| humantime::format_duration(d)
                                .to_string()),
                        c.max_refreshes.map_or("default".into(), |m| m.to_string()),
                    )
                } else {
                    "off".into()
                };
                println!(
                    "{:<24} {:<12} {:<26} {:<20} {}",
                    c.id,
                    if c.is_public() {
                        "public"
                    } else {
                        "confidential"
                    },
                    c.grant_types.join(","),
                    c.scopes.join(" "),
                    refresh
                );
            }
        }
        ClientCommand::Remove { client_id } => match store.remove_client(&client_id).await {
            Err(StoreError::NotFound) => bail!("no client {client_id:?}"),
            other => {
                other?;
                println!("client {client_id} removed");
            }
        },
    }
    Ok(())
}

async fn user(cmd: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
        } => {
            check_name("username", &username)?;
            let (password, generated) = if password_stdin {
                (read_stdin_secret("password")?, false)
            } else {
                (generate_password(), true)
            };
            let hasher = PasswordHasher::new(&settings.passwords)?;
            let hash = hash_password(&hasher, password.clone()).await?;
            let record = UserRecord {
                id: Uuid::new_v4(),
                username: username.clone(),
                password_hash: hash,
                disabled: false,
                created_at: time::OffsetDateTime::now_utc(),
            };
            match store.create_user(&record).await {
                Err(StoreError::Conflict { .. }) => bail!("user {username:?} already exists"),
                other => other?,
            }
            if generated {
                println!("user {username} added\npassword: {password}\n(shown only once)");
            } else {
                println!("user {username} added");
            }
        }
        UserCommand::List => {
            println!("{:<32} {:<10} CREATED", "USERNAME", "STATE");
            for u in store.list_users().await? {
                println!(
                    "{:<32} {:<10} {}",
                    u.username,
                    if u.disabled { "disabled" } else { "active" },
                    u.created_at
                );
            }
        }
        UserCommand::Disable { username } => set_disabled(store.as_ref(), &username, true).await?,
        UserCommand::Enable { username } => set_disabled(store.as_ref(), &username, false).await?,
    }
    Ok(())
}

async fn set_disabled(store: &dyn Store, username: &str, disabled: bool) -> anyhow::Result<()> {
    match store.set_user_disabled(username, disabled).await {
        Err(StoreError::NotFound) => bail!("no user {username:?}"),
        other => other?,
    }
    println!(
        "user {username} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

async fn keys(cmd: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        KeysCommand::Rotate => {
            let key = crate::crypto::keys::rotate(
                store.as_ref(),
                settings.tokens.signing_alg,
                now,
                settings.max_access_token_lifetime(),
                &settings.keys.cipher(),
            )
            .await?;
            println!(
                "new {} signing key {} is active; running instances switch within {}",
                key.alg.as_str(),
                key.kid,
                humantime::format_duration(settings.keys.reload_interval)
            );
        }
        KeysCommand::Reseal => {
            let cipher = settings.keys.cipher();
            if !cipher.is_sealing() {
                bail!("keys.secret is not set: nothing to seal under");
            }
            let n = crate::crypto::keys::reseal(store.as_ref(), &cipher).await?;
            println!("{n} signing keys sealed under the current keys.secret");
        }
        KeysCommand::List => {
            println!("{:<45} {:<6} CREATED", "KID", "ALG");
            for k in store.signing_keys().await? {
                println!("{:<45} {:<6} {}", k.kid, k.alg.as_str(), k.created_at);
            }
        }
    }
    Ok(())
}

async fn audit(args: AuditArgs, settings: &Settings) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let since = args
        .since
        .as_deref()
        .map(|text| parse_since(text, now))
        .transpose()?;
    let store = open_store(settings, true).await?;
    let events = store
        .audit_events(&crate::store::AuditFilter {
            username: args.user,
            client_id: args.client,
            since,
            limit: args.limit,
        })
        .await?;
    println!(
        "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} FAMILY",
        "AT", "KIND", "OUTCOME", "USER", "CLIENT", "IP"
    );
    for e in events {
        let at =
            e.at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| e.at.to_string());
        println!(
            "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} {}",
            at,
            e.kind,
            e.outcome,
            e.username.as_deref().unwrap_or("-"),
            e.client_id.as_deref().unwrap_or("-"),
            e.ip.as_deref().unwrap_or("-"),
            e.family_id
                .map_or_else(|| "-".to_owned(), |f| f.to_string()),
        );
    }
    Ok(())
}

/// `--since`: a duration ago, or an RFC 3339 moment.
fn parse_since(text: &str, now: time::OffsetDateTime) -> anyhow::Result<time::OffsetDateTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now - ago);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |_| anyhow::anyhow!("--since: {text:?} is neither a duration like 1h nor an RFC 3339 time"),
    )
}
