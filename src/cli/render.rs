//! What the command line prints: tables and confirmations, as text ending in a
//! newline. No rule is decided here.

use std::{fmt::Write, net::SocketAddr, path::Path, time::Duration};

use crate::{
    admin::{
        DEMO, DEMO_PUBLIC, DemoCredentials,
        settings::{SettingView, Source, Updated},
        users::NewPassword,
    },
    crypto::{signing_key::StoredKey, token::ClientSecret},
    oauth::policy::DEFAULT_OFFLINE_TTL,
    store::{
        AuditEvent, ClientRecord, CodeFlowSettings, Consent, ConsentRecord, DpopClientSettings,
        Pkce, UserRecord,
    },
};

/// `client list`: one line per client; the last column is the authorization
/// code flow (`-` for a client without redirect URIs, which cannot use it).
pub fn clients(clients: &[ClientRecord]) -> String {
    let mut out = format!(
        "{:<24} {:<12} {:<26} {:<20} {:<26} CODE_FLOW\n",
        "CLIENT_ID", "TYPE", "GRANTS", "SCOPES", "REFRESH"
    );
    for c in clients {
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
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:<26} {:<20} {:<26} {}",
            c.id,
            if c.is_public() {
                "public"
            } else {
                "confidential"
            },
            c.grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(","),
            c.scopes.join(" "),
            refresh,
            code_flow(&c.code_flow).unwrap_or_else(|| "-".into()),
        );
    }
    out
}

/// A client's code-flow settings on one line, e.g. `first-party pkce=required
/// offline=off redirect=http://127.0.0.1/callback`; `None` without redirect URIs.
fn code_flow(flow: &CodeFlowSettings) -> Option<String> {
    if flow.redirect_uris.is_empty() {
        return None;
    }
    let mut line = format!(
        "{} pkce={} offline={}",
        match flow.consent {
            Consent::FirstParty => "first-party",
            Consent::ThirdParty => "third-party",
        },
        match flow.pkce {
            Pkce::Required => "required",
            Pkce::Optional => "optional",
        },
        if flow.offline_access {
            format!(
                "on ttl={}",
                in_days(flow.offline_ttl.unwrap_or(DEFAULT_OFFLINE_TTL))
            )
        } else {
            "off".into()
        },
    );
    if flow.refresh_requires_offline {
        line.push_str(" refresh=offline-only");
    }
    let _ = write!(line, " redirect={}", flow.redirect_uris.join(","));
    Some(line)
}

/// A lifetime counted in days, as `--offline-ttl` takes it (humantime would write
/// 90 days as months, hours and minutes).
fn in_days(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("{}days", secs / 86_400)
    } else {
        humantime::format_duration(ttl).to_string()
    }
}

/// `client add`: a generated secret is shown here, once; a secret read from stdin
/// is not repeated. A client of the code flow also gets a line of its settings.
pub fn client_added(client: &ClientRecord, generated_secret: Option<&ClientSecret>) -> String {
    let mut out = match generated_secret {
        Some(secret) => format!(
            "client {} added\nclient_secret: {}\n(shown only once)\n",
            client.id,
            secret.expose()
        ),
        None if client.is_public() => format!("client {} added (public)\n", client.id),
        None => format!("client {} added (confidential)\n", client.id),
    };
    if let Some(line) = code_flow(&client.code_flow) {
        let _ = writeln!(out, "code flow: {line}");
    }
    if let Some(line) = dpop(&client.dpop) {
        let _ = writeln!(out, "dpop: {line}");
    }
    out
}

/// A client's DPoP settings on one line, e.g. `required nonce=server`; `None`
/// when they are the defaults.
fn dpop(settings: &DpopClientSettings) -> Option<String> {
    if *settings == DpopClientSettings::default() {
        return None;
    }
    Some(format!(
        "{} nonce={}",
        if settings.bound_access_tokens {
            "required"
        } else {
            "optional"
        },
        match settings.require_nonce {
            None => "server",
            Some(true) => "required",
            Some(false) => "off",
        }
    ))
}

/// `client remove`.
pub fn client_removed(client_id: &str) -> String {
    format!("client {client_id} removed\n")
}

/// `user list`.
pub fn users(users: &[UserRecord]) -> String {
    let mut out = format!("{:<32} {:<10} CREATED\n", "USERNAME", "STATE");
    for u in users {
        let _ = writeln!(
            out,
            "{:<32} {:<10} {}",
            u.username,
            if u.disabled { "disabled" } else { "active" },
            u.created_at
        );
    }
    out
}

/// `user add`: a generated password is shown here, once.
pub fn user_added(username: &str, generated_password: Option<&NewPassword>) -> String {
    match generated_password {
        Some(password) => format!(
            "user {username} added\npassword: {}\n(shown only once)\n",
            password.expose()
        ),
        None => format!("user {username} added\n"),
    }
}

/// `user disable` and `user enable`.
pub fn user_disabled(username: &str, disabled: bool) -> String {
    format!(
        "user {username} {}\n",
        if disabled { "disabled" } else { "enabled" }
    )
}

/// `user consents`.
pub fn consents(consents: &[ConsentRecord]) -> String {
    let mut out = format!("{:<24} {:<26} SCOPES\n", "CLIENT_ID", "GRANTED");
    for c in consents {
        let _ = writeln!(
            out,
            "{:<24} {:<26} {}",
            c.client_id,
            rfc3339(c.granted_at),
            c.scope
        );
    }
    out
}

/// `user revoke-consent`.
pub fn consent_revoked(username: &str, client_id: &str) -> String {
    format!("consent of user {username} to client {client_id} withdrawn\n")
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `keys list`.
pub fn keys(keys: &[StoredKey]) -> String {
    let mut out = format!("{:<45} {:<6} CREATED\n", "KID", "ALG");
    for k in keys {
        let _ = writeln!(out, "{:<45} {:<6} {}", k.kid, k.alg.as_str(), k.created_at);
    }
    out
}

/// `keys rotate`.
pub fn key_rotated(key: &StoredKey, reload_interval: Duration) -> String {
    format!(
        "new {} signing key {} is active; running instances switch within {}\n",
        key.alg.as_str(),
        key.kid,
        humantime::format_duration(reload_interval)
    )
}

/// `keys reseal`.
pub fn keys_resealed(count: usize) -> String {
    format!("{count} signing keys sealed under the current keys.secret\n")
}

/// `settings show`: the value in force of every setting that can be changed at
/// run time, where it comes from, and for a stored value who stored it when.
pub fn settings(views: &[SettingView]) -> String {
    let mut out = format!("{:<24} {:<12} {:<12} CHANGED\n", "KEY", "VALUE", "SOURCE");
    for v in views {
        let changed = v.updated.as_ref().map_or_else(
            || "-".to_owned(),
            |Updated { at, by }| format!("{} by {by}", rfc3339(*at)),
        );
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:<12} {changed}",
            v.key.as_str(),
            v.value,
            v.source.as_str(),
        );
    }
    out
}

/// `settings set`.
pub fn setting_set(view: &SettingView, reload_interval: Duration) -> String {
    debug_assert_eq!(view.source, Source::Database);
    format!(
        "{} = {} stored; running instances apply it within {}\n",
        view.key,
        view.value,
        humantime::format_duration(reload_interval)
    )
}

/// `settings unset`.
pub fn setting_unset(key: &str, removed: bool, reload_interval: Duration) -> String {
    if removed {
        format!(
            "{key}: stored value removed; running instances go back to the configuration's within {}\n",
            humantime::format_duration(reload_interval)
        )
    } else {
        format!("{key}: no value was stored; the configuration's applies\n")
    }
}

/// `audit`.
pub fn audit(events: &[AuditEvent]) -> String {
    let mut out = format!(
        "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} {:<36} TARGET\n",
        "AT", "KIND", "OUTCOME", "USER", "CLIENT", "IP", "FAMILY"
    );
    for e in events {
        let _ = writeln!(
            out,
            "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} {:<36} {}",
            rfc3339(e.at),
            e.kind.as_str(),
            e.outcome.as_str(),
            e.username.as_deref().unwrap_or("-"),
            e.client_id.as_deref().unwrap_or("-"),
            e.ip.as_deref().unwrap_or("-"),
            e.family_id
                .map_or_else(|| "-".to_owned(), |f| f.to_string()),
            e.target.as_deref().unwrap_or("-"),
        );
    }
    out
}

/// The first-start banner: the demo credentials, shown once, a curl command that
/// gets tokens from the server listening on `addr`, and the `rotor login` command
/// that signs the demo user in through a browser with the demo public client.
/// `config` is the `--config` file the server was started with, which `rotor
/// login` needs to find the same `tokens.issuer`.
pub fn first_start(
    demo: &DemoCredentials,
    addr: SocketAddr,
    config: Option<&Path>,
    issuer: &str,
) -> String {
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let config = config.map_or_else(String::new, |path| {
        format!(" --config {}", shell_quote(&path.to_string_lossy()))
    });
    format!(
        "\nFirst start: created a demo client and user. These credentials are shown only once.\n\
         \n  client_id:     {DEMO}\n  client_secret: {secret}\n  username:      {DEMO}\n  password:      {password}\n\
         \nGet tokens:\n\n  curl -s -u '{DEMO}:{secret}' -d grant_type=password -d username={DEMO} -d 'password={password}' http://{host}/oauth2/token\n\
         \nOr sign in as {DEMO} through a browser, with the public client {DEMO_PUBLIC} (authorization\n\
         code flow with PKCE, at {issuer}/oauth2/authorize from tokens.issuer):\n\
         \n  rotor login --client {DEMO_PUBLIC}{config}\n\n",
        secret = demo.client_secret.expose(),
        password = demo.password.expose(),
        issuer = issuer.trim_end_matches('/'),
    )
}

/// `text` as one word of a POSIX shell command line.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@,%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, secret: bool, refresh_tokens: bool) -> ClientRecord {
        ClientRecord {
            id: id.into(),
            secret_hash: secret.then(|| crate::crypto::token::TokenHash::of("s")),
            grant_types: vec![
                crate::wire::GrantType::Password,
                crate::wire::GrantType::RefreshToken,
            ],
            scopes: vec!["read".into(), "write".into()],
            refresh_tokens,
            refresh_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            max_refreshes: None,
            grace_period: None,
            code_flow: Default::default(),
            dpop: Default::default(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_client_table_has_aligned_columns_and_the_refresh_settings() {
        let table = clients(&[client("app", true, true), client("spa", false, false)]);
        assert_eq!(
            table,
            "CLIENT_ID                TYPE         GRANTS                     SCOPES               REFRESH                    CODE_FLOW\n\
             app                      confidential password,refresh_token     read write           on ttl=30days max=default  -\n\
             spa                      public       password,refresh_token     read write           off                        -\n"
        );
    }

    #[test]
    fn a_generated_secret_is_shown_and_a_chosen_one_is_not() {
        let secret = ClientSecret::generate();
        let shown = client_added(&client("app", true, true), Some(&secret));
        assert_eq!(
            shown,
            format!(
                "client app added\nclient_secret: {}\n(shown only once)\n",
                secret.expose()
            )
        );
        assert_eq!(
            client_added(&client("ops", true, true), None),
            "client ops added (confidential)\n"
        );
        assert_eq!(
            client_added(&client("spa", false, true), None),
            "client spa added (public)\n"
        );
    }

    #[test]
    fn the_first_start_banner_points_curl_at_a_reachable_address() {
        let demo = DemoCredentials {
            client_secret: ClientSecret::generate(),
            password: NewPassword::generate(),
        };
        let banner = first_start(&demo, "0.0.0.0:8080".parse().unwrap(), None, "http://x");
        assert!(banner.contains(&format!(
            "curl -s -u 'demo:{}' -d grant_type=password -d username=demo -d 'password={}' http://127.0.0.1:8080/oauth2/token\n",
            demo.client_secret.expose(),
            demo.password.expose()
        )));
        let banner = first_start(&demo, "192.0.2.7:9000".parse().unwrap(), None, "http://x");
        assert!(banner.contains("http://192.0.2.7:9000/oauth2/token"));
    }

    #[test]
    fn the_first_start_banner_shows_rotor_login_with_the_servers_config_file() {
        let demo = DemoCredentials {
            client_secret: ClientSecret::generate(),
            password: NewPassword::generate(),
        };
        let addr = "127.0.0.1:8080".parse().unwrap();
        let issuer = "https://auth.example.com/";
        let banner = first_start(&demo, addr, None, issuer);
        assert!(
            banner.contains("\n  rotor login --client demo-cli\n"),
            "{banner}"
        );
        assert!(
            banner.contains("https://auth.example.com/oauth2/authorize"),
            "{banner}"
        );
        let banner = first_start(
            &demo,
            addr,
            Some(Path::new("/etc/rotor/rotor.toml")),
            issuer,
        );
        assert!(
            banner.contains("\n  rotor login --client demo-cli --config /etc/rotor/rotor.toml\n")
        );
        let banner = first_start(&demo, addr, Some(Path::new("my conf/it's.toml")), issuer);
        assert!(
            banner.contains(r"--config 'my conf/it'\''s.toml'"),
            "{banner}"
        );
    }

    #[test]
    fn a_code_flow_client_shows_its_settings_on_its_line() {
        let mut spa = client("spa", false, true);
        spa.code_flow = CodeFlowSettings {
            redirect_uris: vec![
                "http://127.0.0.1/cb".into(),
                "https://app.example/cb".into(),
            ],
            consent: Consent::ThirdParty,
            pkce: Pkce::Required,
            offline_access: true,
            offline_ttl: None,
            refresh_requires_offline: true,
        };
        let table = clients(&[spa.clone()]);
        assert!(
            table.lines().nth(1).unwrap().ends_with(
                " on ttl=30days max=default  third-party pkce=required offline=on ttl=90days \
                 refresh=offline-only redirect=http://127.0.0.1/cb,https://app.example/cb"
            ),
            "{table}"
        );
        let mut app = client("app", true, true);
        app.code_flow.redirect_uris = vec!["https://app.example/cb".into()];
        app.code_flow.pkce = Pkce::Optional;
        app.code_flow.offline_access = true;
        app.code_flow.offline_ttl = Some(Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            client_added(&app, None),
            "client app added (confidential)\n\
             code flow: first-party pkce=optional offline=on ttl=7days redirect=https://app.example/cb\n"
        );
        assert_eq!(
            client_added(&spa, None).lines().nth(1),
            Some(
                "code flow: third-party pkce=required offline=on ttl=90days refresh=offline-only \
                 redirect=http://127.0.0.1/cb,https://app.example/cb"
            )
        );
    }

    #[test]
    fn the_settings_table_shows_each_value_its_source_and_who_stored_it() {
        use crate::admin::settings::Key;
        let table = settings(&[
            SettingView {
                key: Key::RefreshEnabled,
                value: "true".into(),
                source: Source::Default,
                updated: None,
            },
            SettingView {
                key: Key::RefreshMaxRefreshes,
                value: "3".into(),
                source: Source::Database,
                updated: Some(Updated {
                    at: time::OffsetDateTime::UNIX_EPOCH,
                    by: "cli".into(),
                }),
            },
        ]);
        assert_eq!(
            table,
            "KEY                      VALUE        SOURCE       CHANGED\n\
             refresh.enabled          true         default      -\n\
             refresh.max_refreshes    3            database     1970-01-01T00:00:00Z by cli\n"
        );
    }

    #[test]
    fn consents_are_listed_with_their_time_and_scopes() {
        let table = consents(&[ConsentRecord {
            client_id: "partner".into(),
            scope: "read offline_access".into(),
            granted_at: time::OffsetDateTime::UNIX_EPOCH,
        }]);
        assert_eq!(
            table,
            "CLIENT_ID                GRANTED                    SCOPES\n\
             partner                  1970-01-01T00:00:00Z       read offline_access\n"
        );
    }
}
