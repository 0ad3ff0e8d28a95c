//! What the command line accepts: the commands and their flags (clap derive), and
//! the parsing of flag values clap does not know.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

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
    /// Show and change the refresh-token settings stored in the database, which
    /// override the configuration on every instance within
    /// settings.reload_interval.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// List audit events, newest first: issuance, refresh, reuse detection,
    /// revocation, failed logins and lockouts.
    Audit(AuditArgs),
    /// Sign in through a browser with the authorization code flow and PKCE, and
    /// print the token response (like `gh auth login`).
    Login(LoginArgs),
}

/// `rotor login`: the authorize URL goes to standard error, on a line of its own,
/// and the token response to standard output as JSON. The endpoints are
/// `tokens.issuer` + `/oauth2/authorize` and `/oauth2/token`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The client to sign in with; its redirect URIs must include
    /// http://127.0.0.1/callback (loopback: any port matches).
    #[arg(long, value_name = "ID")]
    pub client: String,
    /// The scopes to ask for (space-separated); the client's scopes when left out.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// How long to wait for the browser to come back.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m", value_name = "DURATION")]
    pub timeout: Duration,
    /// A confidential client: read its secret from standard input (sent with HTTP
    /// Basic).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Also trust the CA certificates in this PEM file for an https issuer.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
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
pub enum SettingsCommand {
    /// Every setting that can be changed at run time: its value in force and
    /// where it comes from (default, file, environment or database).
    Show,
    /// Store a value, e.g. `rotor settings set refresh.max_refreshes 3`; it is
    /// checked as the configuration file's would be.
    Set {
        /// A dotted key: refresh.enabled, refresh.rotate, refresh.max_refreshes,
        /// refresh.reuse_detection, refresh.extra_ttl, refresh.ttl,
        /// refresh.grace_period, tokens.session_timeout, dpop.require_nonce,
        /// dpop.proof_max_age or dpop.allowed_algs.
        key: String,
        /// The value as in the file: true, 3, 20m, unlimited, none.
        value: String,
    },
    /// Remove the stored value: the configuration's applies again.
    Unset { key: String },
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
    /// A redirect URI of the authorization code flow; repeat for more. Compared
    /// exactly, except that a loopback IP one (http://127.0.0.1/cb) matches any port.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Someone else's application: people are asked to consent.
    #[arg(long)]
    pub third_party: bool,
    /// The client may ask for offline_access: refresh tokens that outlive the
    /// browser session.
    #[arg(long)]
    pub offline_access: bool,
    /// Lifetime of each offline refresh token (1 to 365 days; default 90d).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub offline_ttl: Option<Duration>,
    /// A confidential client may leave PKCE out (never a public one).
    #[arg(long)]
    pub pkce_optional: bool,
    /// Refresh tokens from the authorization code flow only with offline_access.
    #[arg(long)]
    pub refresh_requires_offline: bool,
    /// Every token request must carry a DPoP proof (RFC 9449
    /// dpop_bound_access_tokens): the client's access tokens are all DPoP-bound.
    #[arg(long)]
    pub require_dpop: bool,
    /// Whether this client's DPoP proofs need a server nonce, instead of
    /// dpop.require_nonce.
    #[arg(long, value_name = "true|false")]
    pub dpop_nonce: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. A generated password is printed once unless one is read from stdin.
    Add {
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// An admin: may use the admin console and the admin API.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Disable a user; their refresh tokens stop working at once.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// List the consents a user gave to third-party clients.
    Consents { username: String },
    /// Withdraw a user's consent to a client: the client asks again next time.
    RevokeConsent { username: String, client_id: String },
    /// Give a user the admin role (the console and the admin API).
    GrantAdmin { username: String },
    /// Take the admin role away; the user's admin tokens stop working at once.
    RevokeAdmin { username: String },
}

/// `--since`: a duration ago, or an RFC 3339 moment.
///
/// # Errors
/// Neither.
pub fn parse_since(text: &str, now: time::OffsetDateTime) -> anyhow::Result<time::OffsetDateTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now - ago);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |_| anyhow::anyhow!("--since: {text:?} is neither a duration like 1h nor an RFC 3339 time"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_duration_ago_or_an_rfc_3339_time() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            parse_since("1h", now).unwrap(),
            now - Duration::from_secs(3600)
        );
        assert_eq!(parse_since("2023-11-14T22:13:20Z", now).unwrap(), now);
        assert_eq!(
            parse_since("yesterday-ish", now).unwrap_err().to_string(),
            r#"--since: "yesterday-ish" is neither a duration like 1h nor an RFC 3339 time"#
        );
    }
}
