//! Settings changed at run time: which keys may be changed (the refresh-token
//! switches of Secret Server's and WSO2's consoles, and the session timeout), how
//! their values are written, and how a value stored in the database overrides the
//! configuration file's. The command line, the admin API and the console all
//! change settings through here, so that one value is refused with one message
//! wherever it is typed.
//!
//! Values are text, written as in the file without the TOML quotes: `true`, `3`,
//! `20m`, `unlimited` (a quoted `"20m"` is taken too). A stored value must pass
//! the checks of the file ([`Settings::validate`]); it is stored in the canonical
//! form it is shown in.

use std::{collections::BTreeSet, fmt, time::Duration};

use time::OffsetDateTime;

use super::{Actor, AdminError};
use crate::{
    config::{DpopAlg, SessionTimeout, Settings},
    store::{AuditEvent, AuditKind, Outcome, SettingRecord, Store},
};

/// A key that can be changed at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `refresh.enabled`: refresh tokens issued and the refresh_token grant accepted.
    RefreshEnabled,
    /// `refresh.rotate`: every refresh spends the token and returns a new one.
    RefreshRotate,
    /// `refresh.max_refreshes`: refreshes per login, 0 = unlimited.
    RefreshMaxRefreshes,
    /// `refresh.reuse_detection`: a spent token presented again ends its login.
    RefreshReuseDetection,
    /// `refresh.extra_ttl`: a refresh token outlives its access token by this.
    RefreshExtraTtl,
    /// `refresh.ttl`: a fixed refresh-token lifetime, or `none`.
    RefreshTtl,
    /// `refresh.grace_period`: the retry window, at most 120s.
    RefreshGracePeriod,
    /// `tokens.session_timeout`: the access-token lifetime, or `unlimited`.
    TokensSessionTimeout,
    /// `dpop.require_nonce`: DPoP proofs must carry a server nonce.
    DpopRequireNonce,
    /// `dpop.proof_max_age`: how old a DPoP proof may be, at most 300s.
    DpopProofMaxAge,
    /// `dpop.allowed_algs`: the algorithms accepted in DPoP proofs.
    DpopAllowedAlgs,
}

impl Key {
    /// Every key that can be changed at run time, in the order they are shown.
    pub const ALL: [Key; 11] = [
        Key::RefreshEnabled,
        Key::RefreshRotate,
        Key::RefreshMaxRefreshes,
        Key::RefreshReuseDetection,
        Key::RefreshExtraTtl,
        Key::RefreshTtl,
        Key::RefreshGracePeriod,
        Key::TokensSessionTimeout,
        Key::DpopRequireNonce,
        Key::DpopProofMaxAge,
        Key::DpopAllowedAlgs,
    ];

    /// The dotted key of the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Key::RefreshEnabled => "refresh.enabled",
            Key::RefreshRotate => "refresh.rotate",
            Key::RefreshMaxRefreshes => "refresh.max_refreshes",
            Key::RefreshReuseDetection => "refresh.reuse_detection",
            Key::RefreshExtraTtl => "refresh.extra_ttl",
            Key::RefreshTtl => "refresh.ttl",
            Key::RefreshGracePeriod => "refresh.grace_period",
            Key::TokensSessionTimeout => "tokens.session_timeout",
            Key::DpopRequireNonce => "dpop.require_nonce",
            Key::DpopProofMaxAge => "dpop.proof_max_age",
            Key::DpopAllowedAlgs => "dpop.allowed_algs",
        }
    }

    /// The key named `name`.
    ///
    /// # Errors
    /// [`AdminError::NotChangeable`], naming the key, for a key that is unknown or
    /// cannot be changed at run time.
    pub fn parse(name: &str) -> Result<Key, AdminError> {
        Key::ALL
            .into_iter()
            .find(|k| k.as_str() == name.trim())
            .ok_or_else(|| AdminError::NotChangeable(name.to_owned()))
    }

    /// Every key's name, comma-separated, for messages.
    pub fn names() -> String {
        Key::ALL.map(Key::as_str).join(", ")
    }

    /// The key's value in `settings`, as it is shown and stored.
    pub fn value(self, settings: &Settings) -> String {
        let refresh = &settings.refresh;
        match self {
            Key::RefreshEnabled => refresh.enabled.to_string(),
            Key::RefreshRotate => refresh.rotate.to_string(),
            Key::RefreshMaxRefreshes => refresh.max_refreshes.to_string(),
            Key::RefreshReuseDetection => refresh.reuse_detection.to_string(),
            Key::RefreshExtraTtl => duration(refresh.extra_ttl),
            Key::RefreshTtl => refresh.ttl.map_or_else(|| NONE.to_owned(), duration),
            Key::RefreshGracePeriod => duration(refresh.grace_period),
            Key::TokensSessionTimeout => match settings.tokens.session_timeout {
                SessionTimeout::Limited(d) => duration(d),
                SessionTimeout::Unlimited => UNLIMITED.to_owned(),
            },
            Key::DpopRequireNonce => settings.dpop.require_nonce.to_string(),
            Key::DpopProofMaxAge => duration(settings.dpop.proof_max_age),
            Key::DpopAllowedAlgs => settings
                .dpop
                .allowed_algs
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Sets the key in `settings` to the value written `text`. The checks of the
    /// whole configuration ([`Settings::validate`]) are the caller's.
    ///
    /// # Errors
    /// [`AdminError::InvalidSetting`], naming the key and the form expected.
    pub fn apply(self, settings: &mut Settings, text: &str) -> Result<(), AdminError> {
        let text = unquoted(text);
        let refused = |expected: &str| {
            AdminError::InvalidSetting(format!(
                "{}: expected {expected}, got {text:?}",
                self.as_str()
            ))
        };
        let boolean = || match text {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(refused("true or false")),
        };
        let span = |what: &str| humantime::parse_duration(text).map_err(|_| refused(what));
        const A_DURATION: &str = "a duration like 90s, 20m or 12h";
        let refresh = &mut settings.refresh;
        match self {
            Key::RefreshEnabled => refresh.enabled = boolean()?,
            Key::RefreshRotate => refresh.rotate = boolean()?,
            Key::RefreshReuseDetection => refresh.reuse_detection = boolean()?,
            Key::RefreshMaxRefreshes => {
                refresh.max_refreshes = text
                    .parse()
                    .map_err(|_| refused("a whole number, 0 for unlimited"))?;
            }
            Key::RefreshExtraTtl => refresh.extra_ttl = span(A_DURATION)?,
            Key::RefreshGracePeriod => refresh.grace_period = span(A_DURATION)?,
            Key::RefreshTtl => {
                refresh.ttl = if text.eq_ignore_ascii_case(NONE) {
                    None
                } else {
                    Some(span("a duration like 30d, or none")?)
                };
            }
            Key::TokensSessionTimeout => {
                settings.tokens.session_timeout = if text.eq_ignore_ascii_case(UNLIMITED) {
                    SessionTimeout::Unlimited
                } else {
                    SessionTimeout::Limited(span("a duration like 20m, or unlimited")?)
                };
            }
            Key::DpopRequireNonce => settings.dpop.require_nonce = boolean()?,
            Key::DpopProofMaxAge => settings.dpop.proof_max_age = span(A_DURATION)?,
            Key::DpopAllowedAlgs => {
                // `ES256,EdDSA`, as in the environment, or the file's list.
                let names = text.trim_start_matches('[').trim_end_matches(']');
                settings.dpop.allowed_algs = names
                    .split([',', ' '])
                    .map(|n| n.trim().trim_matches('"'))
                    .filter(|n| !n.is_empty())
                    .map(|n| {
                        DpopAlg::parse(n)
                            .ok_or_else(|| refused("ES256, EdDSA, RS256 or PS256, comma-separated"))
                    })
                    .collect::<Result<_, _>>()?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `refresh.ttl` without a fixed lifetime.
const NONE: &str = "none";
/// `tokens.session_timeout` without a limit.
const UNLIMITED: &str = "unlimited";

/// A duration as shown: `20m`, `1h 30m`, `0s`.
fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `text` without surrounding blanks, and without TOML's quotes around a string.
fn unquoted(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map_or(text, str::trim)
}

/// Where the value of a setting in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The compiled default (a file value equal to it counts as this).
    Default,
    /// The configuration file.
    File,
    /// A `ROTOR__SECTION__KEY` environment variable.
    Environment,
    /// A value stored by `rotor settings set`, the admin API or the console.
    Database,
}

impl Source {
    /// `default`, `file`, `environment` or `database`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Environment => "environment",
            Source::Database => "database",
        }
    }
}

/// One changeable setting as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingView {
    pub key: Key,
    /// The value in force, in canonical form.
    pub value: String,
    pub source: Source,
    /// When the stored value was set and by whom; `None` unless the source is
    /// the database.
    pub updated: Option<Updated>,
}

/// When and by whom a stored value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub at: OffsetDateTime,
    /// `cli`, `user NAME` or `client ID` ([`Actor`]'s `Display`).
    pub by: String,
}

/// The settings in force: `file` (the configuration's layers) with every stored
/// value of `stored` over it. A stored value that cannot be read or fails the
/// file's checks (written by another version, or by hand) is left out; those are
/// returned beside the settings, to be logged.
pub fn apply(file: &Settings, stored: &[SettingRecord]) -> (Settings, Vec<AdminError>) {
    let mut settings = file.clone();
    let mut refused = Vec::new();
    for record in stored {
        let mut candidate = settings.clone();
        let applied = Key::parse(&record.key)
            .and_then(|key| key.apply(&mut candidate, &record.value))
            .and_then(|()| checked(&candidate));
        match applied {
            Ok(()) => settings = candidate,
            Err(e) => refused.push(e),
        }
    }
    (settings, refused)
}

/// [`Settings::validate`], its message naming the key.
fn checked(settings: &Settings) -> Result<(), AdminError> {
    settings.validate().map_err(|e| {
        let message = e.to_string();
        let message = message
            .strip_prefix("invalid configuration: ")
            .map_or(message.clone(), str::to_owned);
        AdminError::InvalidSetting(message)
    })
}

/// Every changeable setting: its value in force over `file` (the configuration
/// this process read), and where that value comes from.
///
/// # Errors
/// The store failed.
pub async fn show(store: &dyn Store, file: &Settings) -> Result<Vec<SettingView>, AdminError> {
    let stored = store.list_settings().await?;
    let defaults = Settings::defaults()?;
    let environment = Settings::environment_keys()?;
    Ok(views(file, &defaults, &environment, &stored))
}

/// [`show`] with its inputs given.
fn views(
    file: &Settings,
    defaults: &Settings,
    environment: &BTreeSet<String>,
    stored: &[SettingRecord],
) -> Vec<SettingView> {
    let (in_force, _) = apply(file, stored);
    Key::ALL
        .into_iter()
        .map(|key| {
            // A stored value in force: one that applies over the file.
            let record = stored
                .iter()
                .find(|r| r.key == key.as_str())
                .filter(|r| apply(file, std::slice::from_ref(r)).1.is_empty());
            let (source, updated) = match record {
                Some(r) => (
                    Source::Database,
                    Some(Updated {
                        at: r.updated_at,
                        by: r.updated_by.clone(),
                    }),
                ),
                None => (layer(key, file, defaults, environment), None),
            };
            SettingView {
                key,
                value: key.value(&in_force),
                source,
                updated,
            }
        })
        .collect()
}

/// Which configuration layer `key`'s value in `file` comes from.
fn layer(key: Key, file: &Settings, defaults: &Settings, environment: &BTreeSet<String>) -> Source {
    if environment.contains(key.as_str()) {
        Source::Environment
    } else if key.value(file) == key.value(defaults) {
        Source::Default
    } else {
        Source::File
    }
}

/// Stores `value` for `key`, over the configuration `file`, as `actor`, with an
/// audit event; every instance applies it within `settings.reload_interval`.
/// Returns the setting as now shown.
///
/// # Errors
/// [`AdminError::NotChangeable`] for a key that cannot be changed at run time,
/// [`AdminError::InvalidSetting`] for a value of the wrong form or one the file's
/// checks refuse (nothing is stored then), or the store failed.
pub async fn set(
    store: &dyn Store,
    file: &Settings,
    key: &str,
    value: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<SettingView, AdminError> {
    let mut views = update(store, file, &[(key, value)], actor, now).await?;
    views
        .pop()
        .ok_or_else(|| AdminError::NotChangeable(key.to_owned()))
}

/// [`set`] for several keys at once (`PATCH settings`): every value is checked
/// before any is stored, so that one bad value changes nothing. Returns the
/// changed settings as now shown, in the order given.
///
/// # Errors
/// As [`set`], for the first key or value refused.
pub async fn update(
    store: &dyn Store,
    file: &Settings,
    changes: &[(&str, &str)],
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<Vec<SettingView>, AdminError> {
    let stored = store.list_settings().await?;
    let (mut candidate, _) = apply(file, &stored);
    let mut values = Vec::with_capacity(changes.len());
    for (name, text) in changes {
        let key = Key::parse(name)?;
        key.apply(&mut candidate, text)?;
        checked(&candidate)?;
        values.push((key, key.value(&candidate)));
    }
    let mut views = Vec::with_capacity(values.len());
    for (key, value) in values {
        let record = SettingRecord {
            key: key.as_str().to_owned(),
            value,
            updated_at: now,
            updated_by: actor.to_string(),
        };
        store
            .put_setting(&record, &audit_event(actor, key, now))
            .await?;
        views.push(SettingView {
            key,
            value: record.value,
            source: Source::Database,
            updated: Some(Updated {
                at: now,
                by: record.updated_by,
            }),
        });
    }
    Ok(views)
}

/// Removes the stored value of `key`, as `actor`, with an audit event: the
/// configuration's value applies again on every instance within
/// `settings.reload_interval`. Returns whether a value was stored.
///
/// # Errors
/// [`AdminError::NotChangeable`] for a key that cannot be changed at run time,
/// or the store failed.
pub async fn unset(
    store: &dyn Store,
    key: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<bool, AdminError> {
    let key = Key::parse(key)?;
    Ok(store
        .remove_setting(key.as_str(), &audit_event(actor, key, now))
        .await?)
}

/// The audit event of a change of `key` by `actor`: an admin change whose target
/// is `setting KEY`, naming the actor (`cli` for the command line) and the acting
/// user or client.
fn audit_event(actor: &Actor, key: Key, now: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        at: now,
        kind: AuditKind::AdminChange,
        username: actor.username().map(str::to_owned),
        client_id: actor.client_id().map(str::to_owned),
        family_id: None,
        ip: None,
        outcome: Outcome::Success,
        target: Some(format!("setting {key}")),
        actor: Some(actor.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Settings {
        Settings::load(None).unwrap()
    }

    fn stored(key: &str, value: &str) -> SettingRecord {
        SettingRecord {
            key: key.into(),
            value: value.into(),
            updated_at: OffsetDateTime::UNIX_EPOCH,
            updated_by: "cli".into(),
        }
    }

    fn set(key: &str, text: &str) -> Result<String, AdminError> {
        let key = Key::parse(key)?;
        let mut settings = file();
        key.apply(&mut settings, text)?;
        checked(&settings)?;
        Ok(key.value(&settings))
    }

    #[test]
    fn every_key_reads_back_the_value_it_shows() {
        let settings = file();
        for key in Key::ALL {
            assert_eq!(Key::parse(key.as_str()).unwrap(), key);
            let shown = key.value(&settings);
            let mut again = file();
            key.apply(&mut again, &shown).unwrap();
            assert_eq!(key.value(&again), shown, "{key}");
        }
    }

    #[test]
    fn values_are_written_as_in_the_file_with_or_without_quotes() {
        assert_eq!(set("refresh.enabled", "false").unwrap(), "false");
        assert_eq!(set("refresh.max_refreshes", " 3 ").unwrap(), "3");
        assert_eq!(set("refresh.extra_ttl", "\"20m\"").unwrap(), "20m");
        assert_eq!(
            set("refresh.grace_period", "1200s")
                .unwrap_err()
                .to_string(),
            "refresh.grace_period: must be at most 120s"
        );
        assert_eq!(set("refresh.grace_period", "90s").unwrap(), "1m 30s");
        assert_eq!(set("refresh.ttl", "30d").unwrap(), "30days");
        assert_eq!(set("refresh.ttl", "none").unwrap(), "none");
        assert_eq!(
            set("tokens.session_timeout", "Unlimited").unwrap(),
            "unlimited"
        );
        assert_eq!(set("tokens.session_timeout", "5m").unwrap(), "5m");
    }

    #[test]
    fn a_value_of_the_wrong_form_is_refused_naming_the_key() {
        let refused = |key: &str, text: &str| set(key, text).unwrap_err().to_string();
        assert_eq!(
            refused("refresh.enabled", "yes"),
            r#"refresh.enabled: expected true or false, got "yes""#
        );
        assert_eq!(
            refused("refresh.max_refreshes", "-1"),
            r#"refresh.max_refreshes: expected a whole number, 0 for unlimited, got "-1""#
        );
        assert_eq!(
            refused("tokens.session_timeout", "soon"),
            r#"tokens.session_timeout: expected a duration like 20m, or unlimited, got "soon""#
        );
        assert_eq!(
            refused("tokens.session_timeout", "0s"),
            "tokens.session_timeout: must be at least one second"
        );
        assert_eq!(
            refused("refresh.ttl", "0s"),
            "refresh.ttl: must be at least one second"
        );
    }

    #[test]
    fn dpop_settings_are_written_as_in_the_file_and_checked_like_it() {
        let mut settings = file();
        Key::DpopAllowedAlgs
            .apply(&mut settings, r#"["ES256", "EdDSA"]"#)
            .unwrap();
        assert_eq!(Key::DpopAllowedAlgs.value(&settings), "ES256,EdDSA");
        Key::DpopAllowedAlgs.apply(&mut settings, "PS256").unwrap();
        assert_eq!(settings.dpop.allowed_algs, [DpopAlg::PS256]);
        assert!(Key::DpopAllowedAlgs.apply(&mut settings, "HS256").is_err());
        assert!(Key::DpopAllowedAlgs.apply(&mut settings, "none").is_err());
        Key::DpopRequireNonce.apply(&mut settings, "true").unwrap();
        assert!(settings.dpop.require_nonce);
        Key::DpopProofMaxAge.apply(&mut settings, "10m").unwrap();
        assert!(checked(&settings).is_err());
    }

    #[test]
    fn a_key_that_cannot_change_at_run_time_is_refused_naming_it() {
        for name in ["server.bind", "refresh.nonsense", ""] {
            let message = Key::parse(name).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!(
                    "{name:?} cannot be changed at run time; these can: refresh.enabled, "
                )),
                "{message}"
            );
            assert!(message.ends_with("dpop.allowed_algs"), "{message}");
        }
    }

    #[test]
    fn stored_values_apply_over_the_file_and_bad_ones_are_left_out() {
        let (settings, refused) = apply(
            &file(),
            &[
                stored("refresh.max_refreshes", "2"),
                stored("refresh.grace_period", "10m"),
                stored("keys.secret", "x"),
                stored("tokens.session_timeout", "unlimited"),
            ],
        );
        assert_eq!(settings.refresh.max_refreshes, 2);
        assert_eq!(settings.refresh.grace_period, Duration::ZERO);
        assert_eq!(settings.tokens.session_timeout, SessionTimeout::Unlimited);
        assert!(settings.keys.secret.is_none());
        assert_eq!(refused.len(), 2, "{refused:?}");
    }

    #[test]
    fn each_value_shows_where_it_comes_from() {
        // Arrange: the file changes extra_ttl, the environment rotate, the store
        // max_refreshes, and the store holds a grace period that cannot apply.
        let defaults = file();
        let mut configured = file();
        configured.refresh.extra_ttl = Duration::from_secs(60);
        configured.refresh.rotate = false;
        let environment = BTreeSet::from(["refresh.rotate".to_owned()]);
        let stored = [
            stored("refresh.max_refreshes", "4"),
            stored("refresh.grace_period", "1h"),
        ];

        // Act
        let views = views(&configured, &defaults, &environment, &stored);

        // Assert
        let of = |key: Key| views.iter().find(|v| v.key == key).unwrap();
        assert_eq!(views.len(), Key::ALL.len());
        assert_eq!(
            (
                of(Key::RefreshMaxRefreshes).value.as_str(),
                of(Key::RefreshMaxRefreshes).source
            ),
            ("4", Source::Database)
        );
        assert_eq!(
            of(Key::RefreshMaxRefreshes).updated,
            Some(Updated {
                at: OffsetDateTime::UNIX_EPOCH,
                by: "cli".to_owned()
            })
        );
        assert_eq!(
            (
                of(Key::RefreshExtraTtl).value.as_str(),
                of(Key::RefreshExtraTtl).source
            ),
            ("1m", Source::File)
        );
        assert_eq!(of(Key::RefreshRotate).source, Source::Environment);
        assert_eq!(
            (
                of(Key::RefreshGracePeriod).value.as_str(),
                of(Key::RefreshGracePeriod).source
            ),
            ("0s", Source::Default)
        );
        assert_eq!(of(Key::RefreshGracePeriod).updated, None);
        assert_eq!(of(Key::TokensSessionTimeout).source, Source::Default);
    }

    #[test]
    fn actors_are_named_as_the_audit_and_the_stored_row_show_them() {
        let user = Actor::User("alice".into());
        let client = Actor::Client("ops-ci".into());
        assert_eq!(
            [Actor::Cli.to_string(), user.to_string(), client.to_string()],
            ["cli", "user alice", "client ops-ci"]
        );
        let now = OffsetDateTime::UNIX_EPOCH;
        let e = audit_event(&user, Key::RefreshMaxRefreshes, now);
        assert_eq!(
            (
                e.kind,
                e.username.as_deref(),
                e.client_id,
                e.target.as_deref()
            ),
            (
                AuditKind::AdminChange,
                Some("alice"),
                None,
                Some("setting refresh.max_refreshes")
            )
        );
        let e = audit_event(&client, Key::RefreshEnabled, now);
        assert_eq!((e.username, e.client_id.as_deref()), (None, Some("ops-ci")));
        let e = audit_event(&Actor::Cli, Key::RefreshEnabled, now);
        assert_eq!((e.username, e.client_id), (None, None));
    }
}
