//! The admin console's own client: `rotor-console`, a first-party public client
//! of the authorization code flow with PKCE, allowed only the scope
//! `rotor:admin`, whose one redirect URI is `{BASE}/admin/callback`, BASE being
//! `tokens.issuer`, or `console.url` when the console has a listener of its own.
//! It is registered when rotor serves and again whenever the console finds it
//! missing (or pointing elsewhere); instances that race to register it all
//! succeed.

use time::OffsetDateTime;

use super::{AdminError, clients};
use crate::{
    oauth::{bearer::ADMIN_SCOPE, redirect},
    store::{ClientRecord, CodeFlowSettings, Store},
    wire::GrantType,
};

/// The console's client id.
pub const CLIENT_ID: &str = "rotor-console";

/// The console's redirect URI when it is reached at `base`.
pub fn redirect_uri(base: &str) -> String {
    format!("{}/admin/callback", base.trim_end_matches('/'))
}

/// The console's client, registered first when missing.
///
/// # Errors
/// [`AdminError::InvalidRedirectUri`] when the issuer makes no registrable
/// redirect URI (`http` to a host that is not the loopback), or the store failed.
pub async fn ensure_client(
    store: &dyn Store,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<ClientRecord, AdminError> {
    if let Some(mut client) = store.find_client(CLIENT_ID).await? {
        // Moved (another issuer, or `console.url`): its one redirect URI follows.
        let expected = vec![redirect_uri(issuer)];
        if client.code_flow.redirect_uris != expected {
            redirect::check_registration(&expected[0]).map_err(AdminError::InvalidRedirectUri)?;
            client.code_flow.redirect_uris = expected;
            store.update_client(&client).await?;
        }
        return Ok(client);
    }
    let client = clients::NewClient {
        id: CLIENT_ID.into(),
        grant_types: vec![GrantType::AuthorizationCode.as_str().to_owned()],
        scopes: ADMIN_SCOPE.into(),
        // A console session lasts one access token; the next one comes from the
        // browser session at rotor, without a password.
        refresh_tokens: false,
        refresh_ttl: None,
        max_refreshes: None,
        grace_period: None,
        public: true,
        code_flow: CodeFlowSettings {
            redirect_uris: vec![redirect_uri(issuer)],
            ..CodeFlowSettings::default()
        },
        dpop: Default::default(),
    }
    .validate()?;
    match clients::create(store, client, None, now).await {
        Ok(record) => Ok(record),
        // Another instance was first.
        Err(AdminError::ClientExists(_)) => store
            .find_client(CLIENT_ID)
            .await?
            .ok_or_else(|| AdminError::NoSuchClient(CLIENT_ID.into())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_uri_is_the_issuer_s_admin_callback() {
        assert_eq!(
            redirect_uri("https://auth.example.com/"),
            "https://auth.example.com/admin/callback"
        );
        assert_eq!(
            redirect_uri("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/admin/callback"
        );
    }
}
