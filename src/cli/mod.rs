//! The command line: serve, migrate, the administration of clients, users, keys,
//! settings and the audit trail, and `rotor login` ([`login`]). clap reads only the command
//! and `--config`; every setting comes from the configuration layers. This module
//! dispatches: the commands are parsed in [`args`], the rules live in
//! [`crate::admin`], and what is printed comes from [`render`].

use std::{io::Read, path::Path, sync::Arc};

use anyhow::{Context, bail};

use crate::{
    admin::{self, Actor, clients, consents, settings as stored_settings, users},
    app::Application,
    config::Settings,
    crypto::password::PasswordHasher,
    store::{self, CodeFlowSettings, Consent, DpopClientSettings, Pkce, Store},
    telemetry,
};

pub mod args;
pub mod http_client;
pub mod login;
pub mod render;

pub use args::{
    AuditArgs, Cli, ClientAdd, ClientCommand, Command, KeysCommand, LoginArgs, SettingsCommand,
    UserCommand,
};

/// Runs a parsed command line.
///
/// # Errors
/// Bad configuration, an unreachable store, or a refused administrative change.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init_with_format(&settings.log.filter, settings.log.format, std::io::stderr);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings, cli.config.as_deref()).await,
        Command::Migrate => {
            let store = open_store(&settings, false).await?;
            store.migrate().await.context("running migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Client(cmd) => client(cmd, &settings).await,
        Command::User(cmd) => user(cmd, &settings).await,
        Command::Keys(cmd) => keys(cmd, &settings).await,
        Command::Settings(cmd) => settings_command(cmd, &settings).await,
        Command::Audit(query) => audit(query, &settings).await,
        Command::Login(args) => login::run(args, &settings).await,
    }
}

async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(
        secrecy::ExposeSecret::expose_secret(&settings.database.url),
        settings.database.max_connections.min(2),
    )
    .await
    .context("connecting to the database (database.url)")?;
    if migrate && settings.database.auto_migrate {
        store.migrate().await.context("running migrations")?;
    }
    Ok(store)
}

async fn serve(settings: Settings, config: Option<&Path>) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let addr = app.local_addr()?;
    let state = app.state().clone();
    let settings = state.settings();
    if let Some(id) = &settings.clients.anonymous_client {
        match state.store.find_client(id).await? {
            Some(c) if c.is_public() => {}
            _ => tracing::warn!(
                client_id = %id,
                "clients.anonymous_client names no public client; add it with `rotor client add {id} --public`"
            ),
        }
    }
    if state.store.is_empty().await? {
        let now = time::OffsetDateTime::now_utc();
        if let Some(demo) = admin::create_demo(state.store.as_ref(), &state.hasher, now).await? {
            let issuer = &settings.tokens.issuer;
            print!("{}", render::first_start(&demo, addr, config, issuer));
        }
    }
    // After the demo: a store holding only the console's client is still empty.
    let settings = state.settings();
    let issuer = &settings.tokens.issuer;
    let now = time::OffsetDateTime::now_utc();
    if settings.console.enabled
        && let Err(e) = admin::console::ensure_client(
            state.store.as_ref(),
            settings.console.base_url(issuer),
            now,
        )
        .await
    {
        tracing::warn!(error = %e, "the admin console's client could not be registered");
    }
    tracing::info!(%addr, tls = app.is_tls(), "rotor listening");
    if let Some(console) = app.console_addr()? {
        tracing::info!(addr = %console, "the admin console listening");
    }
    app.run_until_stopped().await.context("serving")
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

async fn client(cmd: ClientCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    match cmd {
        ClientCommand::Add(add) => {
            let client = clients::NewClient {
                id: add.client_id,
                grant_types: add.grants,
                scopes: add.scopes,
                refresh_tokens: !add.no_refresh_tokens,
                refresh_ttl: add.refresh_ttl,
                max_refreshes: add.max_refreshes,
                grace_period: add.grace_period,
                public: add.public,
                code_flow: CodeFlowSettings {
                    redirect_uris: add.redirect_uris,
                    consent: if add.third_party {
                        Consent::ThirdParty
                    } else {
                        Consent::FirstParty
                    },
                    pkce: if add.pkce_optional {
                        Pkce::Optional
                    } else {
                        Pkce::Required
                    },
                    offline_access: add.offline_access,
                    offline_ttl: add.offline_ttl,
                    refresh_requires_offline: add.refresh_requires_offline,
                },
                dpop: DpopClientSettings {
                    bound_access_tokens: add.require_dpop,
                    require_nonce: add.dpop_nonce,
                },
            }
            .validate()?;
            let (secret, generated) = match (add.public, add.secret_stdin) {
                (true, _) => (None, false),
                (false, true) => (
                    Some(clients::chosen_secret(read_stdin_secret("client secret")?)?),
                    false,
                ),
                (false, false) => (Some(clients::generate_secret()), true),
            };
            let now = time::OffsetDateTime::now_utc();
            let record = clients::create(store.as_ref(), client, secret.as_ref(), now).await?;
            cli_change(store.as_ref(), format!("client {}", record.id)).await;
            print!(
                "{}",
                render::client_added(&record, secret.as_ref().filter(|_| generated))
            );
        }
        ClientCommand::List => print!("{}", render::clients(&clients::list(store.as_ref()).await?)),
        ClientCommand::Remove { client_id } => {
            clients::remove(store.as_ref(), &client_id).await?;
            cli_change(store.as_ref(), format!("client {client_id}")).await;
            print!("{}", render::client_removed(&client_id));
        }
    }
    Ok(())
}

async fn user(cmd: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
            admin,
        } => {
            let username = users::Username::parse(&username)?;
            let (password, generated) = if password_stdin {
                (
                    users::NewPassword::parse(read_stdin_secret("password")?)?,
                    false,
                )
            } else {
                (users::NewPassword::generate(), true)
            };
            let hasher = PasswordHasher::new(&settings.passwords)?;
            let now = time::OffsetDateTime::now_utc();
            users::add_with_role(store.as_ref(), &hasher, &username, &password, admin, now).await?;
            cli_change(store.as_ref(), format!("user {username}")).await;
            print!(
                "{}",
                render::user_added(username.as_str(), generated.then_some(&password))
            );
        }
        UserCommand::List => print!("{}", render::users(&users::list(store.as_ref()).await?)),
        UserCommand::Disable { username } => set_disabled(store.as_ref(), &username, true).await?,
        UserCommand::Enable { username } => set_disabled(store.as_ref(), &username, false).await?,
        UserCommand::GrantAdmin { username } => {
            users::set_admin(store.as_ref(), &username, true).await?;
            cli_change(store.as_ref(), format!("user {username}")).await;
            println!("user {username:?} is an admin");
        }
        UserCommand::RevokeAdmin { username } => {
            users::set_admin(store.as_ref(), &username, false).await?;
            cli_change(store.as_ref(), format!("user {username}")).await;
            println!("user {username:?} is no longer an admin");
        }
        UserCommand::Consents { username } => print!(
            "{}",
            render::consents(&consents::list(store.as_ref(), &username).await?)
        ),
        UserCommand::RevokeConsent {
            username,
            client_id,
        } => {
            consents::revoke(store.as_ref(), &username, &client_id).await?;
            cli_change(
                store.as_ref(),
                format!("user {username} consent {client_id}"),
            )
            .await;
            print!("{}", render::consent_revoked(&username, &client_id));
        }
    }
    Ok(())
}

async fn set_disabled(store: &dyn Store, username: &str, disabled: bool) -> anyhow::Result<()> {
    users::set_disabled(store, username, disabled).await?;
    cli_change(store, format!("user {username}")).await;
    print!("{}", render::user_disabled(username, disabled));
    Ok(())
}

/// Records a change made with the command line: an admin change whose actor is
/// `cli`, as the console and the admin API record theirs.
async fn cli_change(store: &dyn Store, target: String) {
    admin::record_change(
        store,
        &Actor::Cli,
        target,
        store::Outcome::Success,
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await;
}

async fn settings_command(cmd: SettingsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    let store = store.as_ref();
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        SettingsCommand::Show => print!(
            "{}",
            render::settings(&stored_settings::show(store, settings).await?)
        ),
        SettingsCommand::Set { key, value } => {
            let view =
                stored_settings::set(store, settings, &key, &value, &Actor::Cli, now).await?;
            print!(
                "{}",
                render::setting_set(&view, settings.settings.reload_interval)
            );
        }
        SettingsCommand::Unset { key } => {
            let removed = stored_settings::unset(store, &key, &Actor::Cli, now).await?;
            print!(
                "{}",
                render::setting_unset(key.trim(), removed, settings.settings.reload_interval)
            );
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        KeysCommand::Rotate => {
            // The session timeout in force may be a stored one: retired keys stay
            // for the longer of it and the configuration's.
            let (in_force, _) = stored_settings::apply(settings, &store.list_settings().await?);
            let key = crate::keyring::rotate(
                store.as_ref(),
                settings.tokens.signing_alg,
                now,
                settings
                    .max_access_token_lifetime()
                    .max(in_force.max_access_token_lifetime()),
                &crate::keyring::cipher(&settings.keys),
            )
            .await?;
            cli_change(store.as_ref(), format!("key {}", key.kid)).await;
            print!(
                "{}",
                render::key_rotated(&key, settings.keys.reload_interval)
            );
        }
        KeysCommand::Reseal => {
            let cipher = crate::keyring::cipher(&settings.keys);
            if !cipher.is_sealing() {
                bail!("keys.secret is not set: nothing to seal under");
            }
            let n = crate::keyring::reseal(store.as_ref(), &cipher).await?;
            print!("{}", render::keys_resealed(n));
        }
        KeysCommand::List => print!("{}", render::keys(&store.signing_keys().await?)),
    }
    Ok(())
}

async fn audit(query: AuditArgs, settings: &Settings) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let since = query
        .since
        .as_deref()
        .map(|text| args::parse_since(text, now))
        .transpose()?;
    let store = open_store(settings, true).await?;
    let events = store
        .audit_events(&crate::store::AuditFilter {
            username: query.user,
            client_id: query.client,
            since,
            limit: query.limit,
            ..crate::store::AuditFilter::default()
        })
        .await?;
    print!("{}", render::audit(&events));
    Ok(())
}
