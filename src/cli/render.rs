//! What the command line prints: tables and confirmations, as text ending in a
//! newline. No rule is decided here.

use std::{fmt::Write, net::SocketAddr, time::Duration};

use crate::{
    admin::{DEMO, DemoCredentials, users::NewPassword},
    crypto::{signing_key::StoredKey, token::ClientSecret},
    store::{AuditEvent, ClientRecord, UserRecord},
};

/// `client list`.
pub fn clients(clients: &[ClientRecord]) -> String {
    let mut out = format!(
        "{:<24} {:<12} {:<26} {:<20} REFRESH\n",
        "CLIENT_ID", "TYPE", "GRANTS", "SCOPES"
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
            "{:<24} {:<12} {:<26} {:<20} {}",
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
            refresh
        );
    }
    out
}

/// `client add`: a generated secret is shown here, once; a secret read from stdin
/// is not repeated.
pub fn client_added(client: &ClientRecord, generated_secret: Option<&ClientSecret>) -> String {
    match generated_secret {
        Some(secret) => format!(
            "client {} added\nclient_secret: {}\n(shown only once)\n",
            client.id,
            secret.expose()
        ),
        None if client.is_public() => format!("client {} added (public)\n", client.id),
        None => format!("client {} added (confidential)\n", client.id),
    }
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

/// `audit`.
pub fn audit(events: &[AuditEvent]) -> String {
    let mut out = format!(
        "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} FAMILY\n",
        "AT", "KIND", "OUTCOME", "USER", "CLIENT", "IP"
    );
    for e in events {
        let at =
            e.at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| e.at.to_string());
        let _ = writeln!(
            out,
            "{:<26} {:<15} {:<20} {:<16} {:<22} {:<16} {}",
            at,
            e.kind.as_str(),
            e.outcome.as_str(),
            e.username.as_deref().unwrap_or("-"),
            e.client_id.as_deref().unwrap_or("-"),
            e.ip.as_deref().unwrap_or("-"),
            e.family_id
                .map_or_else(|| "-".to_owned(), |f| f.to_string()),
        );
    }
    out
}

/// The first-start banner: the demo credentials, shown once, and a curl command
/// that gets tokens from the server listening on `addr`.
pub fn first_start(demo: &DemoCredentials, addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    format!(
        "\nFirst start: created a demo client and user. These credentials are shown only once.\n\
         \n  client_id:     {DEMO}\n  client_secret: {secret}\n  username:      {DEMO}\n  password:      {password}\n\
         \nGet tokens:\n\n  curl -s -u '{DEMO}:{secret}' -d grant_type=password -d username={DEMO} -d 'password={password}' http://{host}/oauth2/token\n\n",
        secret = demo.client_secret.expose(),
        password = demo.password.expose(),
    )
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
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_client_table_has_aligned_columns_and_the_refresh_settings() {
        let table = clients(&[client("app", true, true), client("spa", false, false)]);
        assert_eq!(
            table,
            "CLIENT_ID                TYPE         GRANTS                     SCOPES               REFRESH\n\
             app                      confidential password,refresh_token     read write           on ttl=30days max=default\n\
             spa                      public       password,refresh_token     read write           off\n"
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
        let banner = first_start(&demo, "0.0.0.0:8080".parse().unwrap());
        assert!(banner.contains(&format!(
            "curl -s -u 'demo:{}' -d grant_type=password -d username=demo -d 'password={}' http://127.0.0.1:8080/oauth2/token\n",
            demo.client_secret.expose(),
            demo.password.expose()
        )));
        let banner = first_start(&demo, "192.0.2.7:9000".parse().unwrap());
        assert!(banner.contains("http://192.0.2.7:9000/oauth2/token"));
    }
}
