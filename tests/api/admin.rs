//! The administration rules over a real store: what `rotor client …` and
//! `rotor user …` (and the console after them) are answered.

use rotor::{
    admin::{
        self, AdminError,
        clients::{self, NewClient},
        users::{self, NewPassword, Username},
    },
    crypto::password::{Password, PasswordHasher},
};
use time::OffsetDateTime;

use crate::helpers::{Db, test_settings};
use crate::on_both_stores;

on_both_stores!(
    a_client_id_is_registered_once,
    a_confidential_client_keeps_only_the_hash_of_its_secret,
    removing_a_client_that_is_not_there_is_refused,
    a_username_is_added_once_with_a_verifiable_hash,
    disabling_a_user_that_is_not_there_is_refused,
    the_demo_is_created_once,
);

fn new_client(id: &str) -> NewClient {
    NewClient {
        id: id.into(),
        grant_types: vec!["password".into()],
        scopes: "read".into(),
        refresh_tokens: false,
        refresh_ttl: None,
        max_refreshes: Some(3),
        grace_period: None,
        public: false,
        code_flow: Default::default(),
        dpop: Default::default(),
    }
}

fn hasher() -> PasswordHasher {
    PasswordHasher::new(&test_settings().passwords).unwrap()
}

async fn a_client_id_is_registered_once(db: Db) {
    // Arrange
    let store = db.open_store().await;
    let now = OffsetDateTime::now_utc();
    let valid = new_client("spa").validate().unwrap();
    clients::create(store.as_ref(), valid.clone(), None, now)
        .await
        .unwrap();
    // Act
    let again = clients::create(store.as_ref(), valid, None, now).await;
    // Assert
    let err = again.unwrap_err();
    assert!(matches!(&err, AdminError::ClientExists(id) if id == "spa"));
    assert_eq!(err.to_string(), r#"client "spa" already exists"#);
    let listed = clients::list(store.as_ref()).await.unwrap();
    assert_eq!(listed.len(), 1);
    let spa = &listed[0];
    assert!(spa.is_public());
    assert_eq!(
        (spa.grant_types.clone(), spa.scopes.clone()),
        (
            vec![rotor::wire::GrantType::Password],
            vec!["read".to_owned()]
        )
    );
    assert_eq!((spa.refresh_tokens, spa.max_refreshes), (false, Some(3)));
}

async fn a_confidential_client_keeps_only_the_hash_of_its_secret(db: Db) {
    // Arrange
    let store = db.open_store().await;
    let secret = clients::generate_secret();
    // Act
    clients::create(
        store.as_ref(),
        new_client("api").validate().unwrap(),
        Some(&secret),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    // Assert
    let stored = store.find_client("api").await.unwrap().unwrap();
    assert!(stored.secret_hash.unwrap().ct_eq(&secret.hash()));
    assert!(!db.dump().await.contains(secret.expose()));
}

async fn removing_a_client_that_is_not_there_is_refused(db: Db) {
    // Arrange
    let store = db.open_store().await;
    clients::create(
        store.as_ref(),
        new_client("spa").validate().unwrap(),
        None,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    clients::remove(store.as_ref(), "spa").await.unwrap();
    // Act
    let again = clients::remove(store.as_ref(), "spa").await;
    // Assert
    let err = again.unwrap_err();
    assert!(matches!(&err, AdminError::NoSuchClient(id) if id == "spa"));
    assert_eq!(err.to_string(), r#"no client "spa""#);
    assert!(store.find_client("spa").await.unwrap().is_none());
}

async fn a_username_is_added_once_with_a_verifiable_hash(db: Db) {
    // Arrange
    let store = db.open_store().await;
    let hasher = hasher();
    let bob = Username::parse("bob").unwrap();
    let password = NewPassword::parse("pa ss-word".into()).unwrap();
    let now = OffsetDateTime::now_utc();
    users::add(store.as_ref(), &hasher, &bob, &password, now)
        .await
        .unwrap();
    // Act
    let again = users::add(store.as_ref(), &hasher, &bob, &NewPassword::generate(), now).await;
    // Assert
    let err = again.unwrap_err();
    assert!(matches!(&err, AdminError::UserExists(name) if name == "bob"));
    assert_eq!(err.to_string(), r#"user "bob" already exists"#);
    let stored = store.find_user("bob").await.unwrap().unwrap();
    assert!(!stored.disabled);
    assert!(stored.password_hash.starts_with("$argon2id$"));
    let verified = hasher
        .verify(
            Password::new("pa ss-word".into()),
            Some(stored.password_hash),
        )
        .await
        .unwrap();
    assert!(verified);
}

async fn disabling_a_user_that_is_not_there_is_refused(db: Db) {
    // Arrange
    let store = db.open_store().await;
    // Act
    let err = users::set_disabled(store.as_ref(), "nobody", true)
        .await
        .unwrap_err();
    // Assert
    assert!(matches!(&err, AdminError::NoSuchUser(name) if name == "nobody"));
    assert_eq!(err.to_string(), r#"no user "nobody""#);
    assert!(users::list(store.as_ref()).await.unwrap().is_empty());
}

async fn the_demo_is_created_once(db: Db) {
    // Arrange
    let store = db.open_store().await;
    let hasher = hasher();
    let now = OffsetDateTime::now_utc();
    // Act
    let first = admin::create_demo(store.as_ref(), &hasher, now)
        .await
        .unwrap();
    let second = admin::create_demo(store.as_ref(), &hasher, now)
        .await
        .unwrap();
    // Assert
    let demo = first.expect("the first start creates the demo");
    assert!(second.is_none());
    let client = store.find_client("demo").await.unwrap().unwrap();
    assert!(
        client
            .secret_hash
            .unwrap()
            .ct_eq(&demo.client_secret.hash())
    );
    assert_eq!(
        client.grant_types,
        [
            rotor::wire::GrantType::Password,
            rotor::wire::GrantType::RefreshToken
        ]
    );
    assert_eq!(client.scopes, ["read", "write"]);
    let user = store.find_user("demo").await.unwrap().unwrap();
    let verified = hasher
        .verify(
            Password::new(demo.password.expose().to_owned()),
            Some(user.password_hash),
        )
        .await
        .unwrap();
    assert!(verified);
}
