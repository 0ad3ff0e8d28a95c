//! The consents people gave to third-party clients on the consent page: listing
//! them per user and withdrawing one, after which the client asks again.

use super::AdminError;
use crate::store::{ConsentRecord, Store};

/// Every consent of `username`, by client id.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn list(store: &dyn Store, username: &str) -> Result<Vec<ConsentRecord>, AdminError> {
    let user = store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?;
    Ok(store.list_consents(user.id).await?)
}

/// Withdraws the consent of `username` to `client_id`: the next authorization
/// request of that client shows the consent page again. Tokens already issued
/// are not revoked by this; `client remove` or token revocation does that.
///
/// # Errors
/// [`AdminError::NoSuchUser`], [`AdminError::NoSuchConsent`] when the user gave
/// that client none, or the store failed.
pub async fn revoke(store: &dyn Store, username: &str, client_id: &str) -> Result<(), AdminError> {
    let user = store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?;
    if store.revoke_consent(user.id, client_id).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchConsent {
            username: username.to_owned(),
            client_id: client_id.to_owned(),
        })
    }
}
