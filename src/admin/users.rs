//! Adding, listing, disabling and enabling the users of the password grant: which
//! usernames and passwords are accepted, and how a password is stored (argon2id).

use std::fmt;

use anyhow::Context;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AdminError,
    lists::{self, Page},
};
use crate::{
    crypto::{
        password::{Password, PasswordHasher},
        token::generate_password,
    },
    oauth::credentials::username_lockout_key,
    store::{KeyPage, Store, StoreError, UserRecord},
};

/// A username that passed the rule: 1 to 255 bytes without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks a username.
    ///
    /// # Errors
    /// [`AdminError::InvalidUsername`].
    pub fn parse(name: &str) -> Result<Username, AdminError> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(AdminError::InvalidUsername);
        }
        Ok(Username(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new user's password in clear, generated or chosen by the operator, until it
/// is hashed. `Debug` never prints it.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// A random password (144 bits), to show once.
    pub fn generate() -> NewPassword {
        NewPassword(generate_password())
    }

    /// An operator-chosen password. Its strength is the operator's call: the
    /// rule is only that there is one.
    ///
    /// # Errors
    /// [`AdminError::EmptyPassword`].
    pub fn parse(text: String) -> Result<NewPassword, AdminError> {
        if text.is_empty() {
            return Err(AdminError::EmptyPassword);
        }
        Ok(NewPassword(text))
    }

    /// The clear value, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// Adds an active user; the store keeps an argon2id hash of the password, made
/// with `hasher`'s parameters on a blocking thread.
///
/// # Errors
/// [`AdminError::UserExists`], the hasher failed, or the store failed.
pub async fn add(
    store: &dyn Store,
    hasher: &PasswordHasher,
    username: &Username,
    password: &NewPassword,
    now: OffsetDateTime,
) -> Result<(), AdminError> {
    add_with_role(store, hasher, username, password, false, now).await
}

/// Adds a user, an admin of the console and the admin API when `admin`.
///
/// # Errors
/// [`AdminError::UserExists`], the hasher failed, or the store failed.
pub async fn add_with_role(
    store: &dyn Store,
    hasher: &PasswordHasher,
    username: &Username,
    password: &NewPassword,
    admin: bool,
    now: OffsetDateTime,
) -> Result<(), AdminError> {
    let password_hash = hash(hasher, password).await?;
    let record = UserRecord {
        id: Uuid::new_v4(),
        username: username.0.clone(),
        password_hash,
        disabled: false,
        admin,
        created_at: now,
    };
    match store.create_user(&record).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict { .. }) => Err(AdminError::UserExists(record.username)),
        Err(e) => Err(e.into()),
    }
}

/// Every user.
///
/// # Errors
/// The store failed.
pub async fn list(store: &dyn Store) -> Result<Vec<UserRecord>, AdminError> {
    Ok(store.list_users().await?)
}

/// Disables a user (their refresh tokens stop working at once), or enables them
/// again.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn set_disabled(
    store: &dyn Store,
    username: &str,
    disabled: bool,
) -> Result<(), AdminError> {
    match store.set_user_disabled(username, disabled).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchUser(username.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Grants (`admin`) or withdraws the admin role.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn set_admin(store: &dyn Store, username: &str, admin: bool) -> Result<(), AdminError> {
    match store.set_user_admin(username, admin).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchUser(username.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Sets a user's password: `chosen`, or a generated one. Returns the generated
/// one, to show once. The user's logins stay; revoking them is
/// [`super::families::revoke_all`].
///
/// # Errors
/// [`AdminError::NoSuchUser`], the hasher failed, or the store failed.
pub async fn reset_password(
    store: &dyn Store,
    hasher: &PasswordHasher,
    username: &str,
    chosen: Option<NewPassword>,
) -> Result<Option<NewPassword>, AdminError> {
    let (password, generated) = match chosen {
        Some(password) => (password, false),
        None => (NewPassword::generate(), true),
    };
    let password_hash = hash(hasher, &password).await?;
    match store.set_user_password(username, &password_hash).await {
        Ok(()) => Ok(generated.then_some(password)),
        Err(StoreError::NotFound) => Err(AdminError::NoSuchUser(username.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// An argon2id hash of `password`, made on a blocking thread.
async fn hash(hasher: &PasswordHasher, password: &NewPassword) -> Result<String, AdminError> {
    let hasher = hasher.clone();
    let password = Password::new(password.0.clone());
    Ok(
        tokio::task::spawn_blocking(move || hasher.hash_blocking(&password))
            .await
            .context("hashing task")??,
    )
}

/// A user as the console and the admin API list them: with the end of a lockout
/// of their username, if one holds.
#[derive(Debug, Clone)]
pub struct UserState {
    pub user: UserRecord,
    pub locked_until: Option<OffsetDateTime>,
}

/// One page of the users whose name contains [`KeyPage::contains`] (ignoring
/// case; every user when there is none), by name, each with its lockout. The
/// search runs in the store, so that a page costs the same however many users
/// there are.
///
/// # Errors
/// The store failed.
pub async fn search(
    store: &dyn Store,
    page: &KeyPage,
    now: OffsetDateTime,
) -> Result<Page<UserState>, AdminError> {
    let users = lists::cut(
        store.users_page(&lists::probe(page)).await?,
        page.limit,
        |u| u.username.clone(),
    );
    let keys: Vec<String> = users
        .items
        .iter()
        .map(|u| username_lockout_key(&u.username))
        .collect();
    let locked = store.locked_keys(&keys, now).await?;
    Ok(Page {
        items: users
            .items
            .into_iter()
            .map(|user| {
                let key = username_lockout_key(&user.username);
                let locked_until = locked.iter().find(|(k, _)| *k == key).map(|(_, t)| *t);
                UserState { user, locked_until }
            })
            .collect(),
        next: users.next,
    })
}

/// Ends a lockout of `username` and forgets its failures, so that the next
/// sign-in is checked at once.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn unlock(store: &dyn Store, username: &str) -> Result<(), AdminError> {
    if store.find_user(username).await?.is_none() {
        return Err(AdminError::NoSuchUser(username.to_owned()));
    }
    store
        .clear_login_failures(&username_lockout_key(username))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_one_to_255_characters_without_control_characters() {
        let message = "a username must be 1 to 255 characters without control characters";
        for bad in ["", "a\u{0}b", "tab\there", "del\u{7f}"] {
            assert_eq!(Username::parse(bad).unwrap_err().to_string(), message);
        }
        assert_eq!(
            Username::parse(&"x".repeat(256)).unwrap_err().to_string(),
            message
        );
        assert!(Username::parse(&"x".repeat(255)).is_ok());
        assert_eq!(Username::parse("Zoë Smith").unwrap().as_str(), "Zoë Smith");
    }

    #[test]
    fn a_chosen_password_must_not_be_empty() {
        assert!(matches!(
            NewPassword::parse(String::new()),
            Err(AdminError::EmptyPassword)
        ));
        assert_eq!(NewPassword::parse("pw".into()).unwrap().expose(), "pw");
    }

    #[test]
    fn generated_passwords_differ_and_never_show_in_debug() {
        let (a, b) = (NewPassword::generate(), NewPassword::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 24);
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
