//! Settings: `config/default.toml`, then `--config FILE`, then `ROTOR__SECTION__KEY`
//! environment variables, deserialised strictly so that a typo or a bad value stops
//! start-up with a message naming the key.
//!
//! Secrets (`keys.secret`, `keys.previous_secrets`, a password in `database.url`)
//! are held so that no `Debug` output, and so no log line, can show them; code that
//! needs one asks for it with `expose_secret()`. This module imports nothing of the
//! crate: every other module may import it.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// The defaults, compiled in so that the binary runs from any directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub refresh: RefreshSettings,
    pub keys: KeySettings,
    pub clients: ClientSettings,
    pub passwords: PasswordSettings,
    pub log: LogSettings,
    pub cleanup: CleanupSettings,
    pub metrics: MetricsSettings,
    pub console: ConsoleSettings,
    pub lockout: LockoutSettings,
    pub audit: AuditSettings,
    pub session: SessionSettings,
    pub authorize: AuthorizeSettings,
    pub dpop: DpopSettings,
    pub settings: RuntimeSettings,
}

/// DPoP (RFC 9449): proofs of possession at the token endpoint and the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSettings {
    /// Proofs must carry a nonce of this server (§8); a client may override it.
    pub require_nonce: bool,
    /// How old a proof's `iat` may be (§4.3 step 11).
    #[serde(with = "humantime_serde")]
    pub proof_max_age: Duration,
    /// The signature algorithms accepted in proofs, published as
    /// `dpop_signing_alg_values_supported` (§5.1).
    pub allowed_algs: Vec<DpopAlg>,
}

/// The longest `dpop.proof_max_age`: a proof is meant for one request, now.
pub const MAX_PROOF_AGE: Duration = Duration::from_secs(300);

/// An asymmetric JWS algorithm a DPoP proof may be signed with (RFC 9449 §4.2:
/// "MUST NOT be none or an identifier for a symmetric algorithm").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DpopAlg {
    ES256,
    EdDSA,
    RS256,
    PS256,
}

impl DpopAlg {
    /// Every algorithm rotor can verify, in the order they are published.
    pub const ALL: [DpopAlg; 4] = [
        DpopAlg::ES256,
        DpopAlg::EdDSA,
        DpopAlg::RS256,
        DpopAlg::PS256,
    ];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopAlg::ES256 => "ES256",
            DpopAlg::EdDSA => "EdDSA",
            DpopAlg::RS256 => "RS256",
            DpopAlg::PS256 => "PS256",
        }
    }

    /// The algorithm named `name` (JOSE names are case-sensitive).
    pub fn parse(name: &str) -> Option<DpopAlg> {
        DpopAlg::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Settings changed at run time (`rotor settings set`, the admin API): stored in
/// the database, they override this configuration on every instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// How often each instance re-reads them from the database.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

/// Browser sessions of the login page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused this long no longer signs anyone in.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after the sign-in, used or not.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
}

/// The authorization endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSettings {
    /// Lifetime of an authorization code; at most 60 s.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// How long a login or consent page may be answered.
    #[serde(with = "humantime_serde")]
    pub page_ttl: Duration,
}

/// The longest an authorization code may live.
pub const MAX_CODE_TTL: Duration = Duration::from_secs(60);

/// The admin console at `/admin/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Serve the console (the admin API under `/admin/api/v1/` is served either way).
    pub enabled: bool,
    /// Serve the console on a listener of its own at this address (e.g. one
    /// reachable only from inside), instead of on `server.bind`.
    #[serde(default)]
    pub bind: Option<SocketAddr>,
    /// The console's public URL when it has a listener of its own: its redirect
    /// URI is `{url}/admin/callback`. The sign-in itself stays at `tokens.issuer`.
    #[serde(default)]
    pub url: Option<String>,
}

impl ConsoleSettings {
    /// Where the console is reached: `console.url` with a listener of its own,
    /// else the issuer.
    pub fn base_url<'a>(&'a self, issuer: &'a str) -> &'a str {
        match (&self.bind, &self.url) {
            (Some(_), Some(url)) => url.trim_end_matches('/'),
            _ => issuer.trim_end_matches('/'),
        }
    }
}

/// The audit trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Events older than this are deleted by the clean-up.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// Temporary lockout after failed password logins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutSettings {
    pub enabled: bool,
    pub max_failures_per_user: u32,
    pub max_failures_per_ip: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// Balancers whose X-Forwarded-For is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// PEM certificate chain; with `tls_key`, rotor serves HTTPS itself.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// How long requests in flight may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long to keep serving after SIGTERM while `/readyz` answers 503, so that
    /// balancers with active health checks stop sending first.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// How long a client may take to send a request body once its headers are in.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a connection may wait for a request's headers to arrive in full,
    /// counted from when the server starts waiting: on a keep-alive connection that
    /// includes the idle time since the previous answer, so this is also the idle
    /// timeout. Then the connection is closed without an answer.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub max_connections: u32,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub session_timeout: SessionTimeout,
    pub signing_alg: SigningAlg,
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshSettings {
    pub enabled: bool,
    pub rotate: bool,
    #[serde(with = "humantime_serde")]
    pub extra_ttl: Duration,
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    pub max_refreshes: u32,
    pub reuse_detection: bool,
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

/// The longest retry grace period: a retry is a matter of seconds, and a longer
/// window keeps a spent token answering for longer.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub previous_secrets: Vec<SecretString>,
}

/// `database.url`, which may carry the database password. `Debug` shows the URL
/// with every password in it replaced by `[redacted]`; the URL itself comes out
/// only through [`ExposeSecret::expose_secret`].
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl ExposeSecret<str> for DatabaseUrl {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url.into())
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl(url.into())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", without_passwords(self.expose_secret()))
    }
}

/// `url` with `[redacted]` for the password of its user-info part
/// (`scheme://user:password@host`) and for the value of every query parameter whose
/// name holds `password` (libpq's `password` and `sslpassword`). Where the URL is
/// not well formed this errs towards hiding more: the user-info part runs to the
/// last `@`, so a raw `/`, `?` or `@` in a password stays hidden.
fn without_passwords(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (user_info, rest) = match rest.rsplit_once('@') {
        Some((user_info, rest)) if scheme.is_some() => (Some(user_info), rest),
        _ => (None, rest),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(user_info) = user_info {
        match user_info.split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
            }
            None => out.push_str(user_info),
        }
        out.push('@');
    }
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    out.push_str(location);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _value)) if name.to_ascii_lowercase().contains("password") => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    #[serde(default)]
    pub anonymous_client: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub max_concurrent: usize,
    /// Verifications that may wait for a hashing thread before logins are refused
    /// with 503; 0 = 32 per hashing thread.
    pub max_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The periodic removal of expired token families and access-token ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupSettings {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub batch_size: u32,
    pub max_batches: u32,
}

/// `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
}

/// The access-token lifetime, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTimeout {
    Limited(Duration),
    /// Secret Server's "unlimited": no refresh tokens are issued.
    Unlimited,
}

impl SessionTimeout {
    /// How long an access token lives. RFC 9068 §2.2 makes `exp` required, so
    /// "unlimited" becomes ten years.
    pub fn access_token_lifetime(self) -> Duration {
        match self {
            SessionTimeout::Limited(d) => d,
            SessionTimeout::Unlimited => Duration::from_secs(10 * 365 * 24 * 3600),
        }
    }
}

impl<'de> Deserialize<'de> for SessionTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().eq_ignore_ascii_case("unlimited") {
            return Ok(SessionTimeout::Unlimited);
        }
        humantime::parse_duration(text.trim())
            .map(SessionTimeout::Limited)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{e}: expected a duration like \"20m\" or \"unlimited\""
                ))
            })
    }
}

/// The JWT signature algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
}

impl SigningAlg {
    /// The JOSE name, as stored beside each key.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(SigningAlg::ES256),
            "RS256" => Ok(SigningAlg::RS256),
            other => Err(format!("unsupported signing algorithm {other:?}")),
        }
    }
}

/// The `ROTOR__SECTION__KEY` layer, reading `environment` instead of the process
/// environment when given (tests).
fn environment_layer(environment: Option<config::Map<String, String>>) -> config::Environment {
    config::Environment::with_prefix("ROTOR")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("server.trusted_proxies")
        .with_list_parse_key("keys.previous_secrets")
        .with_list_parse_key("dpop.allowed_algs")
        .source(environment)
}

/// The dotted keys the environment layer sets.
fn environment_keys(
    environment: Option<config::Map<String, String>>,
) -> anyhow::Result<BTreeSet<String>> {
    use config::Source;
    let values = environment_layer(environment)
        .collect()
        .context("reading ROTOR__ environment variables")?;
    Ok(values.into_keys().collect())
}

impl Settings {
    /// Loads the layered settings.
    ///
    /// # Errors
    /// A missing file, an unknown key or a value of the wrong form; the message names the key.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
        Settings::layered(path, None)
    }

    /// The layers of [`Settings::load`], reading `environment` instead of the
    /// process environment when given (tests).
    ///
    /// List keys take comma-separated values from the environment, e.g.
    /// `ROTOR__SERVER__TRUSTED_PROXIES=10.0.0.2,10.0.0.3`.
    fn layered(
        path: Option<&Path>,
        environment: Option<config::Map<String, String>>,
    ) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = path {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let settings: Settings = builder
            .add_source(environment_layer(environment))
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    /// The compiled defaults alone (`config/default.toml`), without any file or
    /// environment layer.
    ///
    /// # Errors
    /// Only if the compiled defaults were malformed, which a unit test rules out.
    pub fn defaults() -> anyhow::Result<Settings> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .context("reading the compiled defaults")?
            .try_deserialize()
            .context("invalid compiled defaults")?;
        Ok(settings)
    }

    /// The dotted keys (e.g. `refresh.max_refreshes`) that `ROTOR__…` variables of
    /// the process environment set, to tell a value from the environment from one
    /// of the file.
    ///
    /// # Errors
    /// A variable that is not Unicode.
    pub fn environment_keys() -> anyhow::Result<BTreeSet<String>> {
        environment_keys(None)
    }

    /// Cross-field checks, each naming its key.
    ///
    /// # Errors
    /// The first value that cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        let fail =
            |key: &str, why: &str| Err(anyhow::anyhow!("invalid configuration: {key}: {why}"));
        if matches!(self.tokens.session_timeout, SessionTimeout::Limited(d) if d.as_secs() == 0) {
            return fail("tokens.session_timeout", "must be at least one second");
        }
        if self.tokens.issuer.trim().is_empty() {
            return fail("tokens.issuer", "must not be empty");
        }
        if self.console.bind.is_some()
            && self
                .console
                .url
                .as_deref()
                .is_none_or(|u| u.trim().is_empty())
        {
            return fail(
                "console.url",
                "is required with console.bind: the console's redirect URI is {console.url}/admin/callback",
            );
        }
        if self.console.bind.is_some_and(|b| b == self.server.bind) && self.server.bind.port() != 0
        {
            return fail("console.bind", "must differ from server.bind");
        }
        if self.tokens.audience.trim().is_empty() {
            return fail("tokens.audience", "must not be empty");
        }
        if matches!(self.refresh.ttl, Some(d) if d.as_secs() == 0) {
            return fail("refresh.ttl", "must be at least one second");
        }
        let database_url = self.database.url.expose_secret();
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return fail(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        if self.refresh.grace_period > MAX_GRACE_PERIOD {
            return fail("refresh.grace_period", "must be at most 120s");
        }
        if self
            .keys
            .secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().chars().count() < 16)
            || self
                .keys
                .previous_secrets
                .iter()
                .any(|s| s.expose_secret().chars().count() < 16)
        {
            return fail("keys.secret", "must be at least 16 characters");
        }
        if self.lockout.max_failures_per_user == 0 {
            return fail("lockout.max_failures_per_user", "must be at least 1");
        }
        if self.lockout.max_failures_per_ip == 0 {
            return fail("lockout.max_failures_per_ip", "must be at least 1");
        }
        if self.server.request_timeout.is_zero() {
            return fail("server.request_timeout", "must be more than zero");
        }
        if self.server.header_read_timeout.is_zero() {
            return fail("server.header_read_timeout", "must be more than zero");
        }
        if self.database.max_connections == 0 {
            return fail("database.max_connections", "must be at least 1");
        }
        if self.passwords.memory_kib < 8 * self.passwords.parallelism.max(1) {
            return fail("passwords.memory_kib", "must be at least 8 × parallelism");
        }
        if self.passwords.iterations == 0 {
            return fail("passwords.iterations", "must be at least 1");
        }
        if self.passwords.parallelism == 0 {
            return fail("passwords.parallelism", "must be at least 1");
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) => return fail("server.tls_key", "must be set with server.tls_cert"),
            (None, Some(_)) => return fail("server.tls_cert", "must be set with server.tls_key"),
            _ => {}
        }
        if self.cleanup.interval.as_secs() == 0 {
            return fail("cleanup.interval", "must be at least one second");
        }
        if self.cleanup.batch_size == 0 {
            return fail("cleanup.batch_size", "must be at least 1");
        }
        if self.cleanup.max_batches == 0 {
            return fail("cleanup.max_batches", "must be at least 1");
        }
        if self.session.idle_timeout.as_secs() == 0 {
            return fail("session.idle_timeout", "must be at least one second");
        }
        if self.session.max_lifetime < self.session.idle_timeout {
            return fail(
                "session.max_lifetime",
                "must be at least session.idle_timeout",
            );
        }
        if self.authorize.code_ttl.as_secs() == 0 || self.authorize.code_ttl > MAX_CODE_TTL {
            return fail("authorize.code_ttl", "must be between 1s and 60s");
        }
        if self.authorize.page_ttl.as_secs() < 10 {
            return fail("authorize.page_ttl", "must be at least 10s");
        }
        if self.dpop.proof_max_age.as_secs() == 0 || self.dpop.proof_max_age > MAX_PROOF_AGE {
            return fail("dpop.proof_max_age", "must be between 1s and 300s");
        }
        if self.dpop.allowed_algs.is_empty() {
            return fail(
                "dpop.allowed_algs",
                "must name at least one of ES256, EdDSA, RS256, PS256",
            );
        }
        if self.settings.reload_interval.is_zero() {
            return fail("settings.reload_interval", "must be more than zero");
        }
        if self
            .clients
            .anonymous_client
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return fail(
                "clients.anonymous_client",
                "must name a client, or be left out",
            );
        }
        Ok(())
    }

    /// The longest an access token can stay valid: its lifetime plus the leeway. A
    /// retired signing key stays published this long.
    pub fn max_access_token_lifetime(&self) -> Duration {
        self.tokens.session_timeout.access_token_lifetime() + self.tokens.leeway
    }

    /// The lifetime of a refresh token issued now, before per-client overrides.
    pub fn default_refresh_ttl(&self) -> Duration {
        self.refresh.ttl.unwrap_or_else(|| {
            self.tokens.session_timeout.access_token_lifetime() + self.refresh.extra_ttl
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_bind_needs_the_console_s_url() {
        let mut settings = Settings::load(None).unwrap();
        settings.console.bind = Some("127.0.0.1:8081".parse().unwrap());
        let refused = settings.validate().unwrap_err().to_string();
        assert!(
            refused.contains("console.url: is required with console.bind"),
            "{refused}"
        );
        settings.console.url = Some("http://127.0.0.1:8081".into());
        settings.validate().unwrap();
        assert_eq!(
            settings.console.base_url("https://auth.example.com"),
            "http://127.0.0.1:8081"
        );
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.server.bind.port(), 8080);
        assert_eq!(
            s.tokens.session_timeout,
            SessionTimeout::Limited(Duration::from_secs(1200))
        );
        assert_eq!(s.default_refresh_ttl(), Duration::from_secs(1200 + 900));
        assert_eq!(s.tokens.signing_alg, SigningAlg::ES256);
        assert!(s.clients.anonymous_client.is_none());
        assert!(s.server.tls_cert.is_none() && s.server.tls_key.is_none());
        assert_eq!(s.server.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.log.format, LogFormat::Text);
        assert!(s.cleanup.enabled && s.metrics.enabled);
        assert_eq!(s.server.request_timeout, Duration::from_secs(10));
        assert_eq!(s.server.header_read_timeout, Duration::from_secs(30));
    }

    #[test]
    fn list_keys_take_comma_separated_values_from_the_environment() {
        let environment = [
            ("ROTOR__SERVER__TRUSTED_PROXIES", "10.0.0.2,10.0.0.3"),
            ("ROTOR__KEYS__SECRET", "a-new-secret-of-some-length"),
            (
                "ROTOR__KEYS__PREVIOUS_SECRETS",
                "an-old-secret-of-some-length",
            ),
            ("ROTOR__TOKENS__ISSUER", "https://auth.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let s = Settings::layered(None, Some(environment)).unwrap();
        assert_eq!(
            s.server.trusted_proxies,
            [
                "10.0.0.2".parse::<std::net::IpAddr>().unwrap(),
                "10.0.0.3".parse().unwrap()
            ]
        );
        assert_eq!(
            s.keys.secret.as_ref().map(|s| s.expose_secret()),
            Some("a-new-secret-of-some-length")
        );
        let previous: Vec<&str> = s
            .keys
            .previous_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(previous, ["an-old-secret-of-some-length"]);
        assert_eq!(s.tokens.issuer, "https://auth.example.com");
    }

    #[test]
    fn the_compiled_defaults_are_the_defaults_of_load() {
        let defaults = Settings::defaults().unwrap();
        let loaded = Settings::load(None).unwrap();
        assert_eq!(format!("{defaults:?}"), format!("{loaded:?}"));
        assert_eq!(defaults.settings.reload_interval, Duration::from_secs(2));
    }

    #[test]
    fn environment_keys_are_the_dotted_keys_of_rotor_variables() {
        let environment = [
            ("ROTOR__REFRESH__MAX_REFRESHES", "3"),
            ("ROTOR__TOKENS__SESSION_TIMEOUT", "5m"),
            ("OTHER__REFRESH__ROTATE", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let keys = environment_keys(Some(environment)).unwrap();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            ["refresh.max_refreshes", "tokens.session_timeout"]
        );
    }

    #[test]
    fn a_tls_certificate_without_its_key_names_the_missing_key() {
        let mut s = Settings::load(None).unwrap();
        s.server.tls_cert = Some("cert.pem".into());
        let message = s.validate().unwrap_err().to_string();
        assert!(message.contains("server.tls_key"), "{message}");
    }

    #[test]
    fn log_format_is_text_or_json() {
        let f: LogFormat = serde_json::from_str("\"json\"").unwrap();
        assert_eq!(f, LogFormat::Json);
        assert!(serde_json::from_str::<LogFormat>("\"xml\"").is_err());
    }

    #[test]
    fn grace_period_over_the_cap_names_the_key() {
        let mut s = Settings::load(None).unwrap();
        assert_eq!(s.refresh.grace_period, Duration::ZERO);
        s.refresh.grace_period = Duration::from_secs(121);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("refresh.grace_period"), "{err}");
    }

    #[test]
    fn unlimited_session_timeout_parses() {
        let t: SessionTimeout = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(t, SessionTimeout::Unlimited);
        assert!(serde_json::from_str::<SessionTimeout>("\"soon\"").is_err());
    }

    #[test]
    fn debug_output_of_the_settings_shows_no_secret() {
        let url = "postgres://rotor:db-password-4711@db.internal:5432/rotor?sslmode=require&sslpassword=tls-key-password-0815";
        let environment = [
            ("ROTOR__DATABASE__URL", url),
            ("ROTOR__KEYS__SECRET", "current-keys-secret-0123"),
            (
                "ROTOR__KEYS__PREVIOUS_SECRETS",
                "former-keys-secret-4567,oldest-keys-secret-8901",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let s = Settings::layered(None, Some(environment)).unwrap();
        for debug in [format!("{s:?}"), format!("{s:#?}")] {
            for secret in [
                "db-password-4711",
                "tls-key-password-0815",
                "current-keys-secret-0123",
                "former-keys-secret-4567",
                "oldest-keys-secret-8901",
            ] {
                assert!(!debug.contains(secret), "{secret} shown in {debug}");
            }
            assert!(
                debug.contains(
                    "postgres://rotor:[redacted]@db.internal:5432/rotor?sslmode=require&sslpassword=[redacted]"
                ),
                "{debug}"
            );
        }
        // The code that needs them still has them.
        assert_eq!(s.database.url.expose_secret(), url);
        assert_eq!(s.keys.previous_secrets.len(), 2);
    }

    #[test]
    fn database_urls_lose_their_passwords_even_when_malformed() {
        let cases = [
            ("sqlite://rotor.db", "sqlite://rotor.db"),
            ("sqlite:rotor.db?mode=rwc", "sqlite:rotor.db?mode=rwc"),
            ("postgres://rotor@db/rotor", "postgres://rotor@db/rotor"),
            (
                "postgres://rotor:s3cret@db/rotor",
                "postgres://rotor:[redacted]@db/rotor",
            ),
            // Raw '/', '?' and '@' in a password that was not percent-encoded.
            (
                "postgres://rotor:se/cr?et@x@db/rotor",
                "postgres://rotor:[redacted]@db/rotor",
            ),
            (
                "postgres://db/rotor?user=rotor&PASSWORD=s3cret",
                "postgres://db/rotor?user=rotor&PASSWORD=[redacted]",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(without_passwords(url), shown);
            assert_eq!(
                format!("{:?}", DatabaseUrl::from(url)),
                format!("{shown:?}")
            );
        }
    }
}
