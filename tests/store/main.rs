//! Store contract: the same behaviour tests against PostgreSQL and SQLite, each on a
//! fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use rotor::wire::GrantType;
use rotor::{
    config::SigningAlg,
    crypto::{
        signing_key::StoredKey,
        token::{AuthorizationCode, RefreshToken, SessionToken, TokenHash},
    },
    store::{
        AuditCursor, AuditEvent, AuditFilter, AuditKind, ClientRecord, Consume, ConsumeOutcome,
        CreatedCursor, CreatedPage, FamilyOwner, KeyPage, LoginAttempt, NewAccessToken,
        NewAuthorizationCode, NewBrowserSession, NewFamily, NewRefreshToken, Outcome, ProofUse,
        Purged, Redeem, RedeemOutcome, SettingRecord, SqliteStore, Store, StoreError, Subject,
        UserRecord,
    },
};
use time::OffsetDateTime;
use uuid::Uuid;

#[path = "../support/postgres.rs"]
mod postgres;

/// One contract test on both backends. The PostgreSQL half first checks, once per
/// process, that PostgreSQL answers (see `tests/support/postgres.rs`).
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn postgres() {
                async fn on(pool: sqlx::PgPool) {
                    let store = std::sync::Arc::new(rotor::store::PgStore::from_pool(pool));
                    super::$name(store).await
                }
                $crate::postgres::run_on_fresh_database(concat!(module_path!(), "::postgres"), on);
            }
            #[sqlx::test(migrations = "migrations/sqlite")]
            async fn sqlite(pool: sqlx::SqlitePool) {
                let store = rotor::store::SqliteStore::open((*pool.connect_options()).clone(), 8).await.unwrap();
                super::$name(std::sync::Arc::new(store)).await
            }
        }
    )*};
}

contract!(
    users_are_paged_by_name_and_searched_with_literal_wildcards,
    clients_are_paged_by_id_and_searched_ignoring_case,
    a_client_is_edited_and_its_secret_replaced_keeping_the_rest,
    revoking_all_families_of_a_user_or_client_spares_the_others,
    a_users_families_and_sessions_are_paged_newest_first_without_repeats,
    the_audit_trail_pages_by_position_without_repeats_and_counts_by_kind,
    locked_keys_and_retries_are_read_back,
    a_code_is_redeemed_once_for_one_family,
    a_code_of_an_ended_session_or_past_its_life_is_refused,
    ending_a_session_revokes_its_families_that_are_not_offline,
    consents_are_kept_per_user_and_client_until_withdrawn,
    expired_codes_and_ended_sessions_are_purged,
    migrations_can_run_again,
    users_are_unique_by_name_and_can_be_disabled,
    clients_are_unique_by_id_and_removal_cascades_to_their_tokens,
    a_family_is_found_by_its_refresh_token_hash,
    rotation_spends_the_token_once_and_counts,
    a_consume_whose_last_write_fails_keeps_nothing,
    concurrent_rotations_stay_apart_when_some_of_them_fail,
    instances_beat_are_listed_while_seen_and_go,
    a_consume_cut_off_by_a_cancelled_request_is_whole_or_absent,
    rotation_stops_at_the_family_limit,
    rotation_of_a_revoked_family_or_disabled_user_is_refused,
    rotation_without_spending_keeps_the_token_live,
    concurrent_rotations_of_one_token_succeed_exactly_once,
    signing_keys_round_trip,
    spent_token_keeps_its_sealed_answer_until_erased,
    login_attempts_lock_at_the_limit_within_the_window,
    concurrent_login_attempts_allow_at_most_the_limit,
    consume_says_why_it_refused_and_changes_nothing,
    a_consumed_refresh_is_audited_in_the_same_step,
    a_family_of_a_client_has_the_client_as_its_subject,
    revoking_a_family_erases_its_retry_answers,
    old_audit_events_and_ended_lockout_counters_are_purged,
    access_tokens_are_found_and_revoked_by_jti,
    ping_answers_until_the_store_is_closed,
    active_families_are_live_and_unrevoked,
    purge_removes_expired_access_token_ids_and_dead_families_in_batches,
    concurrent_purges_delete_each_family_once,
    of_instances_starting_together_exactly_one_adds_a_signing_key,
    settings_are_stored_replaced_and_removed_each_with_its_audit_event,
    a_dpop_proof_is_recorded_once_per_key_and_url_and_purged_when_expired,
    concurrent_records_of_one_dpop_proof_succeed_exactly_once,
    a_bound_family_is_rotated_only_with_a_proof_of_its_key,
    a_replayed_proof_in_a_rotation_spends_nothing,
    a_public_clients_first_proof_binds_an_unbound_family,
    of_instances_starting_together_every_one_gets_the_same_server_secret,
    a_clients_dpop_settings_are_stored_and_edited,
);

/// Tests of behaviour only PostgreSQL has, with the same once-per-process check.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn postgres() {
                $crate::postgres::run_on_fresh_database(concat!(module_path!(), "::postgres"), super::$name);
            }
        }
    )*};
}

on_postgres!(postgres_runs_a_rotation_aborted_by_a_deadlock_again);

fn now() -> OffsetDateTime {
    // Whole seconds: SQLite keeps unix seconds.
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

async fn seed(store: &dyn Store) -> (UserRecord, ClientRecord) {
    let user = UserRecord {
        id: Uuid::new_v4(),
        username: "alice".into(),
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        disabled: false,
        admin: false,
        created_at: now(),
    };
    store.create_user(&user).await.unwrap();
    let client = ClientRecord {
        id: "app".into(),
        secret_hash: Some(TokenHash::of("secret")),
        grant_types: vec![GrantType::Password, GrantType::RefreshToken],
        scopes: vec!["read".into(), "write".into()],
        refresh_tokens: true,
        refresh_ttl: Some(Duration::from_secs(3600)),
        max_refreshes: Some(5),
        grace_period: None,
        code_flow: Default::default(),
        dpop: Default::default(),
        created_at: now(),
    };
    store.create_client(&client).await.unwrap();
    (user, client)
}

fn access() -> NewAccessToken {
    NewAccessToken {
        jti: Uuid::new_v4(),
        issued_at: now(),
        expires_at: now() + Duration::from_secs(60),
    }
}

fn refresh(token: &RefreshToken) -> NewRefreshToken {
    NewRefreshToken {
        hash: token.hash(),
        issued_at: now(),
        expires_at: now() + Duration::from_secs(600),
    }
}

/// A login with one refresh token; returns the family id and the token.
async fn login(store: &dyn Store, user: &UserRecord) -> (Uuid, RefreshToken) {
    let token = RefreshToken::generate();
    let family_id = Uuid::new_v4();
    store
        .create_family(&NewFamily {
            family_id,
            client_id: "app".into(),
            user_id: Some(user.id),
            scope: "read write".into(),
            created_at: now(),
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: None,
            refresh: Some(refresh(&token)),
            access: access(),
        })
        .await
        .unwrap();
    (family_id, token)
}

fn rotation(old: &RefreshToken, family_id: Uuid, max: u32) -> (Consume, RefreshToken) {
    let next = RefreshToken::generate();
    let r = Consume {
        token: old.hash(),
        client_id: "app".into(),
        now: now(),
        max_refreshes: max,
        successor: Some(refresh(&next)),
        access: access(),
        retry: None,
        proof: None,
        bind_family: false,
        audit: AuditEvent {
            at: now(),
            kind: AuditKind::Refresh,
            username: Some("alice".into()),
            client_id: Some("app".into()),
            family_id: Some(family_id),
            ip: Some("192.0.2.1".into()),
            outcome: Outcome::Success,
            target: None,
            actor: None,
        },
    };
    (r, next)
}

async fn migrations_can_run_again(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.is_empty().await.unwrap());
}

async fn users_are_unique_by_name_and_can_be_disabled(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    assert!(!store.is_empty().await.unwrap());
    let found = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(found.id, user.id);
    assert_eq!(found.password_hash, user.password_hash);
    assert!(store.find_user("bob").await.unwrap().is_none());
    let dup = UserRecord {
        id: Uuid::new_v4(),
        ..user.clone()
    };
    assert!(matches!(
        store.create_user(&dup).await,
        Err(StoreError::Conflict { .. })
    ));
    store.set_user_disabled("alice", true).await.unwrap();
    assert!(store.find_user("alice").await.unwrap().unwrap().disabled);
    assert!(matches!(
        store.set_user_disabled("bob", true).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

/// The keys of one page read with `contains`, `after` and `limit`.
fn page(contains: Option<&str>, after: Option<&str>, limit: u32) -> KeyPage {
    KeyPage {
        contains: contains.map(str::to_owned),
        after: after.map(str::to_owned),
        limit,
    }
}

async fn users_are_paged_by_name_and_searched_with_literal_wildcards(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    for name in ["bob_1", "bobx1", "Carol%", "dave\\x", "erin"] {
        store
            .create_user(&UserRecord {
                id: Uuid::new_v4(),
                username: name.into(),
                ..user.clone()
            })
            .await
            .unwrap();
    }
    let names = |users: Vec<UserRecord>| -> Vec<String> {
        users.into_iter().map(|u| u.username).collect::<Vec<_>>()
    };
    let all = |p: KeyPage| {
        let store = store.clone();
        async move { names(store.users_page(&p).await.unwrap()) }
    };
    // Byte order, as both backends sort text here: capitals first.
    assert_eq!(all(page(None, None, 3)).await, ["Carol%", "alice", "bob_1"]);
    assert_eq!(
        all(page(None, Some("bob_1"), 3)).await,
        ["bobx1", "dave\\x", "erin"]
    );
    assert!(all(page(None, Some("erin"), 3)).await.is_empty());
    assert_eq!(all(page(Some("BOB"), None, 10)).await, ["bob_1", "bobx1"]);
    assert_eq!(all(page(Some("b_"), None, 10)).await, ["bob_1"]);
    assert_eq!(all(page(Some("%"), None, 10)).await, ["Carol%"]);
    assert_eq!(all(page(Some("carol"), None, 10)).await, ["Carol%"]);
    assert_eq!(all(page(Some("\\"), None, 10)).await, ["dave\\x"]);
    assert_eq!(all(page(Some("bob"), Some("bob_1"), 10)).await, ["bobx1"]);
    assert!(all(page(Some("nobody"), None, 10)).await.is_empty());
}

async fn clients_are_paged_by_id_and_searched_ignoring_case(store: Arc<dyn Store>) {
    let (_, client) = seed(store.as_ref()).await;
    for id in ["web_1", "webx", "Mobile"] {
        store
            .create_client(&ClientRecord {
                id: id.into(),
                ..client.clone()
            })
            .await
            .unwrap();
    }
    let ids = |p: KeyPage| {
        let store = store.clone();
        async move {
            store
                .clients_page(&p)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(page(None, None, 2)).await, ["Mobile", "app"]);
    assert_eq!(ids(page(None, Some("app"), 2)).await, ["web_1", "webx"]);
    assert!(ids(page(None, Some("webx"), 2)).await.is_empty());
    assert_eq!(ids(page(Some("WEB"), None, 5)).await, ["web_1", "webx"]);
    assert_eq!(ids(page(Some("_"), None, 5)).await, ["web_1"]);
    assert_eq!(ids(page(Some("mob"), None, 5)).await, ["Mobile"]);
    let found = store
        .clients_page(&page(Some("app"), None, 5))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].scopes, client.scopes);
}

async fn clients_are_unique_by_id_and_removal_cascades_to_their_tokens(store: Arc<dyn Store>) {
    let (user, client) = seed(store.as_ref()).await;
    let found = store.find_client("app").await.unwrap().unwrap();
    assert_eq!(found.scopes, client.scopes);
    assert_eq!(found.grant_types, client.grant_types);
    assert_eq!(found.refresh_ttl, Some(Duration::from_secs(3600)));
    assert_eq!(found.max_refreshes, Some(5));
    assert!(found.secret_hash.unwrap().ct_eq(&TokenHash::of("secret")));
    assert!(matches!(
        store.create_client(&client).await,
        Err(StoreError::Conflict { .. })
    ));
    let (_, token) = login(store.as_ref(), &user).await;
    store.remove_client("app").await.unwrap();
    assert!(
        store
            .find_refresh_token(&token.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.remove_client("app").await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_clients().await.unwrap().is_empty());
}

async fn a_family_is_found_by_its_refresh_token_hash(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let record = store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.family_id, family_id);
    assert_eq!(record.client_id, "app");
    assert_eq!(record.subject.username(), Some("alice"));
    assert_eq!(record.scope, "read write");
    assert_eq!(record.refresh_count, 0);
    assert!(!record.family_revoked && !record.subject_disabled && record.used_at.is_none());
    assert!(record.expires_at > record.issued_at);
    assert!(
        store
            .find_refresh_token(&TokenHash::of("nope"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn rotation_spends_the_token_once_and_counts(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, first) = login(store.as_ref(), &user).await;
    let (r, second) = rotation(&first, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 1 }
    );
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::AlreadyUsed
    );
    assert!(
        store
            .find_refresh_token(&first.hash())
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_some()
    );
    let (r2, _) = rotation(&second, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&r2).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 2 }
    );
}

async fn instances_beat_are_listed_while_seen_and_go(store: Arc<dyn Store>) {
    let started = now() - Duration::from_secs(60);
    let first = rotor::store::InstanceRecord {
        id: Uuid::new_v4(),
        name: "rotor-a".into(),
        version: "1.0.0".into(),
        started_at: started,
        seen_at: started,
        signing_kid: Some("kid-1".into()),
    };
    let second = rotor::store::InstanceRecord {
        id: Uuid::new_v4(),
        name: "rotor-b".into(),
        ..first.clone()
    };
    store.record_instance(&first).await.unwrap();
    store.record_instance(&second).await.unwrap();
    // A later beat moves the time seen and the key, not the rest.
    let beat = rotor::store::InstanceRecord {
        seen_at: now(),
        signing_kid: Some("kid-2".into()),
        name: "renamed".into(),
        ..first.clone()
    };
    store.record_instance(&beat).await.unwrap();
    let recent = store
        .list_instances(now() - Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        recent,
        vec![rotor::store::InstanceRecord {
            name: "rotor-a".into(),
            ..beat.clone()
        }]
    );
    assert_eq!(store.list_instances(started).await.unwrap().len(), 2);
    assert_eq!(
        store
            .purge_instances(now() - Duration::from_secs(30))
            .await
            .unwrap(),
        1
    );
    assert!(store.remove_instance(first.id).await.unwrap());
    assert!(!store.remove_instance(first.id).await.unwrap());
    assert!(store.list_instances(started).await.unwrap().is_empty());
}

/// The successor is the consume's last write: when it fails (here on a hash that
/// is taken), the spend, the counter, the access token and the audit row before it
/// are all undone, and the store goes on writing — no transaction is left open.
async fn a_consume_whose_last_write_fails_keeps_nothing(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, first) = login(store.as_ref(), &user).await;
    let audited = |store: Arc<dyn Store>| async move {
        store
            .audit_events(&AuditFilter {
                family_id: Some(family_id),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .len()
    };
    let before = audited(store.clone()).await;
    let (mut clash, _) = rotation(&first, family_id, 0);
    let taken = clash.successor.as_mut().unwrap();
    taken.hash = first.hash();
    let failed = store.consume_refresh_token(&clash).await;
    assert!(
        matches!(failed, Err(StoreError::Conflict { .. })),
        "{failed:?}"
    );
    let record = store
        .find_refresh_token(&first.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(record.used_at.is_none());
    assert_eq!(audited(store.clone()).await, before);
    assert!(
        store
            .find_access_token(clash.access.jti)
            .await
            .unwrap()
            .is_none()
    );
    let (r, _) = rotation(&first, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 1 }
    );
}

/// Concurrent writes may run together (SQLite commits the ones queued behind one
/// another in one transaction), yet each stays its own: one that fails keeps
/// nothing of itself and takes nothing of the others with it.
async fn concurrent_rotations_stay_apart_when_some_of_them_fail(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let mut rotations = Vec::new();
    for i in 0..48 {
        let (family_id, first) = login(store.as_ref(), &user).await;
        let (mut r, next) = rotation(&first, family_id, 0);
        let fails = i % 3 == 1;
        if fails {
            // Its successor's hash is taken (by the token it spends).
            r.successor.as_mut().unwrap().hash = first.hash();
        }
        rotations.push((fails, first, next, r));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (fails, first, next, r) in rotations {
        let store = store.clone();
        tasks.spawn(async move {
            let outcome = store.consume_refresh_token(&r).await;
            (fails, first, next, r.access.jti, outcome)
        });
    }
    let outcomes = tasks.join_all().await;
    for (fails, first, next, jti, outcome) in outcomes {
        let access = store.find_access_token(jti).await.unwrap();
        if fails {
            assert!(
                matches!(outcome, Err(StoreError::Conflict { .. })),
                "{outcome:?}"
            );
            assert!(unspent(store.as_ref(), &first).await);
            assert!(access.is_none());
        } else {
            assert_eq!(
                outcome.unwrap(),
                ConsumeOutcome::Consumed { refresh_count: 1 }
            );
            assert!(!unspent(store.as_ref(), &first).await);
            assert!(unspent(store.as_ref(), &next).await);
            assert!(access.is_some());
        }
    }
}

/// Polls `f` up to `polls` times, letting other tasks and threads run between
/// polls, then drops it: a request cancelled at some moment of its work.
async fn polled_then_dropped<F: std::future::Future>(f: F, polls: usize) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    for _ in 0..polls {
        let poll = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(out) = poll {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// A request cancelled while its consume runs (the client went away) drops the
/// store call part-way, at one of many moments. Each time, the consume happened
/// wholly or not at all, and the next write on the token goes through and sees
/// which: no transaction is left open on the writer, nothing is half-done.
async fn a_consume_cut_off_by_a_cancelled_request_is_whole_or_absent(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    for polls in 0..300 {
        let (family_id, first) = login(store.as_ref(), &user).await;
        let (cut, cut_successor) = rotation(&first, family_id, 0);
        let cut_off = polled_then_dropped(store.consume_refresh_token(&cut), polls).await;
        let wait = format!("{polls} polls");
        // Queued behind the cut-off one on the writer (or the token's row lock).
        let (again, successor) = rotation(&first, family_id, 0);
        let outcome = store.consume_refresh_token(&again).await;
        let kept = match outcome {
            Ok(ConsumeOutcome::Consumed { refresh_count: 1 }) => successor,
            Ok(ConsumeOutcome::AlreadyUsed) => cut_successor,
            other => panic!("after a consume cut off at {wait:?} ({cut_off:?}): {other:?}"),
        };
        let (next, _) = rotation(&kept, family_id, 0);
        assert_eq!(
            store.consume_refresh_token(&next).await.unwrap(),
            ConsumeOutcome::Consumed { refresh_count: 2 },
            "the successor of the consume that happened, cut off at {wait:?}"
        );
    }
}

async fn rotation_stops_at_the_family_limit(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, mut token) = login(store.as_ref(), &user).await;
    for _ in 0..2 {
        let (r, next) = rotation(&token, family_id, 2);
        assert!(matches!(
            store.consume_refresh_token(&r).await.unwrap(),
            ConsumeOutcome::Consumed { .. }
        ));
        token = next;
    }
    let (r, _) = rotation(&token, family_id, 2);
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::LimitReached
    );
    // Nothing moved: the token is still unspent.
    assert!(
        store
            .find_refresh_token(&token.hash())
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );
}

async fn rotation_of_a_revoked_family_or_disabled_user_is_refused(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    assert!(store.revoke_family(family_id, now()).await.unwrap());
    assert!(!store.revoke_family(family_id, now()).await.unwrap());
    let (r, _) = rotation(&token, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Revoked
    );
    assert!(
        store
            .find_refresh_token(&token.hash())
            .await
            .unwrap()
            .unwrap()
            .family_revoked
    );

    let (family_id, token) = login(store.as_ref(), &user).await;
    store.set_user_disabled("alice", true).await.unwrap();
    let (r, _) = rotation(&token, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::SubjectDisabled
    );
}

async fn rotation_without_spending_keeps_the_token_live(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    for count in 1..=3 {
        let r = Consume {
            successor: None,
            ..rotation(&token, family_id, 0).0
        };
        assert_eq!(
            store.consume_refresh_token(&r).await.unwrap(),
            ConsumeOutcome::Consumed {
                refresh_count: count
            }
        );
    }
    assert!(
        store
            .find_refresh_token(&token.hash())
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );
}

async fn concurrent_rotations_of_one_token_succeed_exactly_once(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        let (r, _) = rotation(&token, family_id, 0);
        tasks.spawn(async move { store.consume_refresh_token(&r).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, ConsumeOutcome::Consumed { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        ConsumeOutcome::Consumed { .. } | ConsumeOutcome::AlreadyUsed
    )));
    let record = store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.refresh_count, 1);
}

async fn signing_keys_round_trip(store: Arc<dyn Store>) {
    let key = StoredKey::generate(SigningAlg::ES256, now(), &Default::default()).unwrap();
    store.insert_signing_key(&key).await.unwrap();
    assert!(matches!(
        store.insert_signing_key(&key).await,
        Err(StoreError::Conflict { .. })
    ));
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, key.kid);
    assert_eq!(keys[0].private_key, key.private_key);
    assert_eq!(keys[0].alg, SigningAlg::ES256);
}

async fn spent_token_keeps_its_sealed_answer_until_erased(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, first) = login(store.as_ref(), &user).await;
    let until = now() + Duration::from_secs(30);
    let (mut r, second) = rotation(&first, family_id, 0);
    r.retry = Some(rotor::store::SealedAnswer {
        ciphertext: vec![1, 2, 3],
        until,
    });
    assert!(matches!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Consumed { .. }
    ));
    let spent = store
        .find_refresh_token(&first.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spent.retry_answer.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(spent.retry_until, Some(until));
    assert!(!spent.successor_used);
    // Spending the successor closes the window.
    let (r2, _) = rotation(&second, family_id, 0);
    store.consume_refresh_token(&r2).await.unwrap();
    assert!(
        store
            .find_refresh_token(&first.hash())
            .await
            .unwrap()
            .unwrap()
            .successor_used
    );
    // Nothing is erased before the window ends; afterwards the answer goes.
    assert_eq!(
        store.erase_stale_retry_answers(now(), 100).await.unwrap(),
        0
    );
    let later = until + Duration::from_secs(1);
    assert_eq!(
        store.erase_stale_retry_answers(later, 100).await.unwrap(),
        1
    );
    let erased = store
        .find_refresh_token(&first.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(erased.retry_answer.is_none() && erased.retry_until.is_none());
}

async fn access_tokens_are_found_and_revoked_by_jti(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let token = access();
    let family_id = Uuid::new_v4();
    store
        .create_family(&NewFamily {
            family_id,
            client_id: "app".into(),
            user_id: Some(user.id),
            scope: "read".into(),
            created_at: now(),
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: None,
            refresh: None,
            access: token.clone(),
        })
        .await
        .unwrap();
    let found = store.find_access_token(token.jti).await.unwrap().unwrap();
    assert_eq!(found.family_id, family_id);
    assert_eq!(found.client_id, "app");
    assert_eq!(found.subject.username(), Some("alice"));
    assert!(!found.revoked && !found.family_revoked);
    assert!(store.revoke_access_token(token.jti, now()).await.unwrap());
    assert!(!store.revoke_access_token(token.jti, now()).await.unwrap());
    assert!(
        store
            .find_access_token(token.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        store
            .find_access_token(Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
}

async fn ping_answers_until_the_store_is_closed(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

async fn active_families_are_live_and_unrevoked(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    assert_eq!(store.count_active_families(now()).await.unwrap(), 0);
    login(store.as_ref(), &user).await;
    let (revoked, _) = login(store.as_ref(), &user).await;
    assert_eq!(store.count_active_families(now()).await.unwrap(), 2);
    store.revoke_family(revoked, now()).await.unwrap();
    assert_eq!(store.count_active_families(now()).await.unwrap(), 1);
    // Refresh tokens live 600 s, access tokens 60 s.
    let later = now() + Duration::from_secs(700);
    assert_eq!(store.count_active_families(later).await.unwrap(), 0);
}

async fn purge_removes_expired_access_token_ids_and_dead_families_in_batches(
    store: Arc<dyn Store>,
) {
    let (user, _) = seed(store.as_ref()).await;
    let (rotated_family, spent) = login(store.as_ref(), &user).await;
    login(store.as_ref(), &user).await;
    let (_, last) = login(store.as_ref(), &user).await;
    let (r, _) = rotation(&spent, rotated_family, 0);
    store.consume_refresh_token(&r).await.unwrap();

    // Nothing has expired yet.
    assert_eq!(
        store.purge_expired(now(), 2).await.unwrap(),
        Purged::default()
    );
    // Access tokens (60 s) expired, refresh tokens (600 s) live: four ids go, two
    // per batch; the families stay, and so does the spent token of a live family.
    let soon = now() + Duration::from_secs(120);
    let first = store.purge_expired(soon, 2).await.unwrap();
    let second = store.purge_expired(soon, 2).await.unwrap();
    assert_eq!(
        (first, second),
        (
            Purged {
                access_tokens: 2,
                families: 0
            },
            Purged {
                access_tokens: 2,
                families: 0
            }
        )
    );
    let kept = store.find_refresh_token(&spent.hash()).await.unwrap();
    assert!(kept.unwrap().used_at.is_some());
    // Everything expired: the three families go, two per batch, tokens with them.
    let late = now() + Duration::from_secs(700);
    assert_eq!(store.purge_expired(late, 2).await.unwrap().families, 2);
    assert_eq!(store.purge_expired(late, 2).await.unwrap().families, 1);
    assert_eq!(
        store.purge_expired(late, 2).await.unwrap(),
        Purged::default()
    );
    assert!(
        store
            .find_refresh_token(&last.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(&spent.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.find_user("alice").await.unwrap().is_some());
}

async fn concurrent_purges_delete_each_family_once(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    for _ in 0..12 {
        login(store.as_ref(), &user).await;
    }
    let late = now() + Duration::from_secs(700);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut total = 0;
            for _ in 0..20 {
                let purged = store.purge_expired(late, 2).await.unwrap();
                total += purged.families;
                if purged == Purged::default() {
                    break;
                }
            }
            total
        });
    }
    let deleted: u64 = tasks.join_all().await.into_iter().sum();
    assert_eq!(deleted, 12);
    assert_eq!(store.count_active_families(now()).await.unwrap(), 0);
}

async fn of_instances_starting_together_exactly_one_adds_a_signing_key(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = store.clone();
        let key = StoredKey::generate(SigningAlg::ES256, now(), &Default::default()).unwrap();
        tasks.spawn(async move { store.insert_first_signing_key(&key).await.unwrap() });
    }
    let added = tasks.join_all().await;
    assert_eq!(added.iter().filter(|a| **a).count(), 1, "{added:?}");
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    // Another algorithm gets its own first key.
    let rsa = StoredKey::generate(SigningAlg::RS256, now(), &Default::default()).unwrap();
    assert!(store.insert_first_signing_key(&rsa).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
}

async fn login_attempts_lock_at_the_limit_within_the_window(store: Arc<dyn Store>) {
    let t0 = now();
    let window = Duration::from_secs(60);
    let lock = Duration::from_secs(300);
    let key = "user:alice";
    let store = store.as_ref();
    let fail = |at| async move {
        let begun = store.begin_login_attempt(key, at, window, 3).await.unwrap();
        let locked = store
            .end_login_attempt(key, true, at, 3, lock)
            .await
            .unwrap();
        (begun, locked)
    };
    assert_eq!(fail(t0).await, (LoginAttempt::Allowed, false));
    assert_eq!(fail(t0).await, (LoginAttempt::Allowed, false));
    // A failure after the window starts counting again.
    let later = t0 + Duration::from_secs(61);
    assert_eq!(fail(later).await, (LoginAttempt::Allowed, false));
    assert_eq!(fail(later).await, (LoginAttempt::Allowed, false));
    assert_eq!(fail(later).await, (LoginAttempt::Allowed, true));
    assert_eq!(
        store
            .begin_login_attempt(key, later, window, 3)
            .await
            .unwrap(),
        LoginAttempt::Locked
    );
    // Once the lock is over, a new window begins; a success clears the username.
    let after = later + lock + Duration::from_secs(1);
    assert_eq!(fail(after).await, (LoginAttempt::Allowed, false));
    store.clear_login_failures(key).await.unwrap();
    assert_eq!(fail(after).await, (LoginAttempt::Allowed, false));
    assert_eq!(fail(after).await, (LoginAttempt::Allowed, false));
    // Attempts being checked count against the limit until they end.
    assert_eq!(
        store
            .begin_login_attempt(key, after, window, 3)
            .await
            .unwrap(),
        LoginAttempt::Allowed
    );
    assert_eq!(
        store
            .begin_login_attempt(key, after, window, 3)
            .await
            .unwrap(),
        LoginAttempt::Busy
    );
    assert!(
        !store
            .end_login_attempt(key, false, after, 3, lock)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .begin_login_attempt(key, after, window, 3)
            .await
            .unwrap(),
        LoginAttempt::Allowed
    );
}

async fn concurrent_login_attempts_allow_at_most_the_limit(store: Arc<dyn Store>) {
    let at = now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .begin_login_attempt("user:alice", at, Duration::from_secs(60), 5)
                .await
                .unwrap()
        });
    }
    let attempts = tasks.join_all().await;
    let count = |kind| attempts.iter().filter(|a| **a == kind).count();
    assert_eq!(count(LoginAttempt::Allowed), 5, "{attempts:?}");
    assert_eq!(count(LoginAttempt::Busy), 35, "{attempts:?}");
}

async fn consume_says_why_it_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let (r, _) = rotation(&token, family_id, 0);

    let other_client = Consume {
        client_id: "other".into(),
        ..r.clone()
    };
    assert_eq!(
        store.consume_refresh_token(&other_client).await.unwrap(),
        ConsumeOutcome::WrongClient
    );
    let late = Consume {
        now: now() + Duration::from_secs(601),
        ..r.clone()
    };
    assert_eq!(
        store.consume_refresh_token(&late).await.unwrap(),
        ConsumeOutcome::Expired
    );
    let unknown = Consume {
        token: TokenHash::of("nope"),
        ..r.clone()
    };
    assert_eq!(
        store.consume_refresh_token(&unknown).await.unwrap(),
        ConsumeOutcome::Unknown
    );
    let record = store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(record.used_at.is_none() && record.refresh_count == 0);
    assert!(
        store
            .find_access_token(r.access.jti)
            .await
            .unwrap()
            .is_none()
    );
    let audit = store
        .audit_events(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");
    // The refused attempts left the token good for its client.
    assert_eq!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 1 }
    );
}

async fn a_consumed_refresh_is_audited_in_the_same_step(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let (r, next) = rotation(&token, family_id, 0);
    assert!(matches!(
        store.consume_refresh_token(&r).await.unwrap(),
        ConsumeOutcome::Consumed { .. }
    ));
    let audit = store
        .audit_events(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].kind, AuditKind::Refresh);
    assert_eq!(audit[0].family_id, Some(family_id));
    assert_eq!(audit[0].ip.as_deref(), Some("192.0.2.1"));
    let access = store
        .find_access_token(r.access.jti)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(access.family_id, family_id);
    let successor = store
        .find_refresh_token(&next.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(successor.used_at.is_none() && successor.refresh_count == 1);
}

async fn a_family_of_a_client_has_the_client_as_its_subject(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let token = access();
    let family_id = Uuid::new_v4();
    store
        .create_family(&NewFamily {
            family_id,
            client_id: "app".into(),
            user_id: None,
            scope: "read".into(),
            created_at: now(),
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: None,
            refresh: None,
            access: token.clone(),
        })
        .await
        .unwrap();
    let found = store.find_access_token(token.jti).await.unwrap().unwrap();
    assert_eq!(found.subject, Subject::Client { id: "app".into() });
    assert!(!found.subject_disabled && !found.revoked);
    assert!(store.revoke_family(family_id, now()).await.unwrap());
    assert!(
        store
            .find_access_token(token.jti)
            .await
            .unwrap()
            .unwrap()
            .family_revoked
    );
}

async fn revoking_a_family_erases_its_retry_answers(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, first) = login(store.as_ref(), &user).await;
    let (mut r, _) = rotation(&first, family_id, 0);
    r.retry = Some(rotor::store::SealedAnswer {
        ciphertext: vec![1, 2, 3],
        until: now() + Duration::from_secs(30),
    });
    store.consume_refresh_token(&r).await.unwrap();
    assert!(store.revoke_family(family_id, now()).await.unwrap());
    let spent = store
        .find_refresh_token(&first.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(spent.family_revoked);
    assert!(spent.retry_answer.is_none() && spent.retry_until.is_none());
}

async fn old_audit_events_and_ended_lockout_counters_are_purged(store: Arc<dyn Store>) {
    let t0 = now();
    for (offset, who) in [(0, "old"), (100, "new")] {
        store
            .record_audit(&AuditEvent {
                at: t0 + Duration::from_secs(offset),
                kind: AuditKind::LoginFailed,
                username: Some(who.into()),
                client_id: None,
                family_id: None,
                ip: None,
                outcome: Outcome::InvalidCredentials,
                target: None,
                actor: None,
            })
            .await
            .unwrap();
    }
    let cut = t0 + Duration::from_secs(50);
    assert_eq!(store.purge_audit_events(cut, 10).await.unwrap(), 1);
    let left = store
        .audit_events(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].username.as_deref(), Some("new"));

    let window = Duration::from_secs(60);
    let lock = Duration::from_secs(600);
    store
        .begin_login_attempt("user:a", t0, window, 5)
        .await
        .unwrap();
    store
        .begin_login_attempt("user:locked", t0, window, 1)
        .await
        .unwrap();
    assert!(
        store
            .end_login_attempt("user:locked", true, t0, 1, lock)
            .await
            .unwrap()
    );
    let later = t0 + Duration::from_secs(120);
    // The window of both is over; only the unlocked counter goes.
    assert_eq!(
        store
            .purge_login_failures(later, later - window, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .begin_login_attempt("user:locked", later, window, 1)
            .await
            .unwrap(),
        LoginAttempt::Locked
    );
    let unlocked = t0 + lock + Duration::from_secs(1);
    assert_eq!(
        store
            .purge_login_failures(unlocked, unlocked - window, 10)
            .await
            .unwrap(),
        1
    );
}

/// PostgreSQL ends a deadlock by aborting one of the transactions and rolling it
/// back (40P01). A rotation that is the one aborted is run again, once, and
/// succeeds: the client gets its tokens instead of a 503.
async fn postgres_runs_a_rotation_aborted_by_a_deadlock_again(pool: sqlx::PgPool) {
    let store: Arc<dyn Store> = Arc::new(rotor::store::PgStore::from_pool(pool.clone()));
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    // Another transaction holds the family row. It waits 10 s before it looks for
    // deadlocks, so the rotation's backend (1 s) finds the deadlock and is aborted.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("set local deadlock_timeout = '10s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("select 1 from token_families where id = $1 for update")
        .bind(family_id)
        .execute(&mut *other)
        .await
        .unwrap();

    // The rotation spends the token row first, then waits for the family row.
    let (r, next) = rotation(&token, family_id, 0);
    let rotating = tokio::spawn({
        let store = store.clone();
        async move { store.consume_refresh_token(&r).await }
    });
    let waiting = async {
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..500 {
            pace.tick().await;
            let blocked: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if blocked == 1 {
                return true;
            }
        }
        false
    };
    assert!(
        waiting.await,
        "the rotation never waited for the family row"
    );
    // Now this transaction wants the token row the rotation holds: a deadlock.
    sqlx::query("select 1 from refresh_tokens where token_hash = $1 for update")
        .bind(token.hash().as_bytes().as_slice())
        .execute(&mut *other)
        .await
        .unwrap();
    other.commit().await.unwrap();

    let outcome = rotating.await.unwrap();
    assert!(
        matches!(outcome, Ok(ConsumeOutcome::Consumed { refresh_count: 1 })),
        "{outcome:?}"
    );
    let successor = store.find_refresh_token(&next.hash()).await.unwrap();
    assert!(successor.is_some_and(|s| s.used_at.is_none()));
}

/// Applies the migrations of `dir` up to and including `version`.
async fn migrate_to<'a, A>(dir: &str, version: i64, conn: A)
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(dir))
        .await
        .unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(conn).await.unwrap();
}

/// SQLite rebuilds the family and token tables to let a family's user be null: a
/// login made before the upgrade keeps its tokens, its counter and its cascade.
#[sqlx::test(migrations = false)]
async fn sqlite_upgrade_keeps_every_login(pool: sqlx::SqlitePool) {
    migrate_to("migrations/sqlite", 4, &pool).await;
    for sql in [
        "insert into users values ('u1', 'alice', 'h', 0, 1)",
        "insert into clients (id, grant_types, scopes, created_at) values ('app', 'password', 'read', 1)",
        "insert into token_families values ('f1', 'app', 'u1', 'read', 3, 1, null)",
        "insert into refresh_tokens (token_hash, family_id, issued_at, expires_at) values (x'01', 'f1', 1, 2)",
        "insert into access_tokens (jti, family_id, issued_at, expires_at) values ('j1', 'f1', 1, 2)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    migrate_to("migrations/sqlite", i64::MAX, &pool).await;
    let (count,): (i64,) =
        sqlx::query_as("select refresh_count from token_families where id = 'f1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 3);
    let broken: Vec<(String,)> = sqlx::query_as("select \"table\" from pragma_foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    sqlx::query("delete from users where id = 'u1'")
        .execute(&pool)
        .await
        .unwrap();
    for table in ["token_families", "refresh_tokens", "access_tokens"] {
        let (left,): (i64,) = sqlx::query_as(&format!("select count(*) from {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "{table} kept rows of a deleted user");
    }
}

/// With reads and writes always in flight, SQLite never starts its WAL over by
/// itself, and its file grows without end; rotor's checkpoints must start it over.
/// Writers queued behind one another and readers that never pause, on a file as a
/// server has it, write four times the length at which rotor restarts the WAL.
#[test]
fn sqlite_keeps_its_wal_short_under_steady_reads_and_writes() {
    let dir = std::env::temp_dir().join(format!("rotor-wal-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let wal = dir.join("rotor.db-wal");
    let url = format!("sqlite://{}", dir.join("rotor.db").display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let (writes, longest) = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url, 16).await.unwrap());
        store.migrate().await.unwrap();
        let (user, _) = seed(store.as_ref()).await;
        let (_, probe) = login(store.as_ref(), &user).await;
        let probe = probe.hash();
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        assert!(store.find_refresh_token(&probe).await.unwrap().is_some());
                    }
                })
            })
            .collect();
        // A rotation writes at least four pages (token, family, access token,
        // audit event): these many make four times the restart length.
        let most = SqliteStore::WAL_RESET_FRAMES;
        let writes = Arc::new(AtomicI64::new(0));
        let longest = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for _ in 0..16 {
            let (family_id, mut token) = login(store.as_ref(), &user).await;
            let (store, writes, longest, wal) =
                (store.clone(), writes.clone(), longest.clone(), wal.clone());
            writers.push(tokio::spawn(async move {
                while writes.fetch_add(1, Ordering::Relaxed) < most {
                    let (r, next) = rotation(&token, family_id, 0);
                    assert!(matches!(
                        store.consume_refresh_token(&r).await.unwrap(),
                        ConsumeOutcome::Consumed { .. }
                    ));
                    token = next;
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    longest.fetch_max(size, Ordering::Relaxed);
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
        store.close().await;
        (
            writes.load(Ordering::Relaxed),
            longest.load(Ordering::Relaxed),
        )
    });
    std::fs::remove_dir_all(&dir).unwrap();
    // Past the restart length, at most what is written between two checkpoints.
    let bound = 2 * 4096 * u64::try_from(SqliteStore::WAL_RESET_FRAMES).unwrap();
    assert!(
        longest < bound,
        "the WAL grew to {longest} bytes in {writes} rotations"
    );
}

/// A browser session of `user`; returns its id and cookie value.
async fn browser_session(store: &dyn Store, user: &UserRecord) -> (Uuid, SessionToken) {
    let token = SessionToken::generate();
    let id = Uuid::new_v4();
    store
        .create_session(&NewBrowserSession {
            id,
            hash: token.hash(),
            user_id: user.id,
            created_at: now(),
            expires_at: now() + Duration::from_secs(3600),
            ip: Some("192.0.2.7".into()),
        })
        .await
        .unwrap();
    (id, token)
}

/// A code of `session`, living `ttl`.
async fn code(
    store: &dyn Store,
    user: &UserRecord,
    session: Uuid,
    ttl: Duration,
) -> AuthorizationCode {
    let code = AuthorizationCode::generate();
    store
        .create_code(&NewAuthorizationCode {
            hash: code.hash(),
            client_id: "app".into(),
            user_id: user.id,
            session_id: session,
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_sent: true,
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            scope: "read".into(),
            offline: false,
            dpop_jkt: None,
            created_at: now(),
            expires_at: now() + ttl,
        })
        .await
        .unwrap();
    code
}

/// The exchange of `code` for a new family of `session`.
fn redeem(
    code: &AuthorizationCode,
    user: &UserRecord,
    session: Uuid,
    offline: bool,
) -> (Redeem, RefreshToken) {
    let token = RefreshToken::generate();
    let r = Redeem {
        code: code.hash(),
        now: now(),
        family: NewFamily {
            family_id: Uuid::new_v4(),
            client_id: "app".into(),
            user_id: Some(user.id),
            scope: "read".into(),
            created_at: now(),
            session_id: Some(session),
            offline,
            expires_at: Some(now() + Duration::from_secs(3600)),
            dpop_jkt: None,
            refresh: Some(refresh(&token)),
            access: access(),
        },
        audit: AuditEvent {
            at: now(),
            kind: AuditKind::Login,
            username: Some("alice".into()),
            client_id: Some("app".into()),
            family_id: None,
            ip: None,
            outcome: Outcome::Success,
            target: None,
            actor: None,
        },
    };
    (r, token)
}

async fn a_code_is_redeemed_once_for_one_family(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (session, _) = browser_session(store.as_ref(), &user).await;
    let code = code(store.as_ref(), &user, session, Duration::from_secs(60)).await;
    let found = store.find_code(&code.hash()).await.unwrap().unwrap();
    assert_eq!(found.username, "alice");
    assert_eq!(found.session_id, session);
    assert!(found.session_expires_at.is_some());
    assert_eq!(found.used_at, None);
    let mut tasks = tokio::task::JoinSet::new();
    let mut families = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        let (r, _) = redeem(&code, &user, session, false);
        families.push(r.family.family_id);
        tasks.spawn(async move { store.redeem_code(&r).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RedeemOutcome::Redeemed)
            .count(),
        1,
        "{outcomes:?}"
    );
    let spent = store.find_code(&code.hash()).await.unwrap().unwrap();
    let winner = spent.family_id.unwrap();
    assert!(families.contains(&winner));
    assert!(spent.used_at.is_some());
    for o in outcomes.iter().filter(|o| **o != RedeemOutcome::Redeemed) {
        assert_eq!(
            *o,
            RedeemOutcome::AlreadyUsed {
                family_id: Some(winner)
            }
        );
    }
}

async fn a_code_of_an_ended_session_or_past_its_life_is_refused(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (session, _) = browser_session(store.as_ref(), &user).await;
    let expired = code(store.as_ref(), &user, session, Duration::ZERO).await;
    let (r, _) = redeem(&expired, &user, session, false);
    assert_eq!(store.redeem_code(&r).await.unwrap(), RedeemOutcome::Expired);
    let unknown = AuthorizationCode::generate();
    let (r, _) = redeem(&unknown, &user, session, false);
    assert_eq!(store.redeem_code(&r).await.unwrap(), RedeemOutcome::Unknown);
    let live = code(store.as_ref(), &user, session, Duration::from_secs(60)).await;
    assert!(store.end_session(session, now()).await.unwrap());
    let (r, refresh_token) = redeem(&live, &user, session, false);
    assert_eq!(
        store.redeem_code(&r).await.unwrap(),
        RedeemOutcome::SessionEnded
    );
    // Nothing was stored for a refused redeem.
    assert!(
        store
            .find_refresh_token(&refresh_token.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .find_code(&live.hash())
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
}

async fn ending_a_session_revokes_its_families_that_are_not_offline(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (session, cookie) = browser_session(store.as_ref(), &user).await;
    let online_code = code(store.as_ref(), &user, session, Duration::from_secs(60)).await;
    let (r, online) = redeem(&online_code, &user, session, false);
    assert_eq!(
        store.redeem_code(&r).await.unwrap(),
        RedeemOutcome::Redeemed
    );
    let offline_code = code(store.as_ref(), &user, session, Duration::from_secs(60)).await;
    let (r, offline) = redeem(&offline_code, &user, session, true);
    assert_eq!(
        store.redeem_code(&r).await.unwrap(),
        RedeemOutcome::Redeemed
    );
    let (_, detached) = login(store.as_ref(), &user).await;
    let found = store
        .find_refresh_token(&online.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session_id, Some(session));
    assert!(!found.offline);
    assert!(found.family_expires_at.is_some());

    assert!(store.end_session(session, now()).await.unwrap());
    assert!(
        !store.end_session(session, now()).await.unwrap(),
        "ended once"
    );

    let revoked = |t: &RefreshToken| {
        let store = store.clone();
        let hash = t.hash();
        async move {
            store
                .find_refresh_token(&hash)
                .await
                .unwrap()
                .unwrap()
                .family_revoked
        }
    };
    assert!(revoked(&online).await);
    assert!(!revoked(&offline).await);
    assert!(!revoked(&detached).await);
    let ended = store.find_session(&cookie.hash()).await.unwrap().unwrap();
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.ip.as_deref(), Some("192.0.2.7"));
}

async fn consents_are_kept_per_user_and_client_until_withdrawn(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    assert_eq!(store.find_consent(user.id, "app").await.unwrap(), None);
    store
        .grant_consent(user.id, "app", "read", now())
        .await
        .unwrap();
    store
        .grant_consent(user.id, "app", "read write", now())
        .await
        .unwrap();
    assert_eq!(
        store.find_consent(user.id, "app").await.unwrap().as_deref(),
        Some("read write")
    );
    let listed = store.list_consents(user.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, "app");
    assert!(store.revoke_consent(user.id, "app").await.unwrap());
    assert!(!store.revoke_consent(user.id, "app").await.unwrap());
    assert_eq!(store.find_consent(user.id, "app").await.unwrap(), None);
}

async fn expired_codes_and_ended_sessions_are_purged(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (session, cookie) = browser_session(store.as_ref(), &user).await;
    let (_, kept_cookie) = browser_session(store.as_ref(), &user).await;
    let old = code(store.as_ref(), &user, session, Duration::ZERO).await;
    let fresh = code(store.as_ref(), &user, session, Duration::from_secs(600)).await;
    store.end_session(session, now()).await.unwrap();
    let later = now() + Duration::from_secs(10);
    assert_eq!(
        store.purge_codes_and_sessions(later, 1000).await.unwrap(),
        2
    );
    assert!(store.find_code(&old.hash()).await.unwrap().is_none());
    assert!(store.find_code(&fresh.hash()).await.unwrap().is_some());
    assert!(store.find_session(&cookie.hash()).await.unwrap().is_none());
    assert!(
        store
            .find_session(&kept_cookie.hash())
            .await
            .unwrap()
            .is_some()
    );
}

/// A setting change as the admin rules write it, by `who`.
fn setting_change(
    key: &str,
    value: &str,
    who: &str,
    at: OffsetDateTime,
) -> (SettingRecord, AuditEvent) {
    let setting = SettingRecord {
        key: key.into(),
        value: value.into(),
        updated_at: at,
        updated_by: format!("user {who}"),
    };
    let audit = AuditEvent {
        at,
        kind: AuditKind::AdminChange,
        username: Some(who.into()),
        client_id: None,
        family_id: None,
        ip: None,
        outcome: Outcome::Success,
        target: Some(format!("setting {key}")),
        actor: Some("cli".into()),
    };
    (setting, audit)
}

async fn settings_are_stored_replaced_and_removed_each_with_its_audit_event(store: Arc<dyn Store>) {
    // Arrange
    let t0 = now();
    let later = t0 + Duration::from_secs(60);
    assert!(store.list_settings().await.unwrap().is_empty());

    // Act: two keys, then one of them again by someone else.
    for (key, value, who, at) in [
        ("refresh.rotate", "false", "alice", t0),
        ("refresh.max_refreshes", "3", "alice", t0),
        ("refresh.max_refreshes", "5", "bob", later),
    ] {
        let (setting, audit) = setting_change(key, value, who, at);
        store.put_setting(&setting, &audit).await.unwrap();
    }

    // Assert: one row per key, by key, the last value in force.
    let listed = store.list_settings().await.unwrap();
    assert_eq!(
        listed,
        [
            setting_change("refresh.max_refreshes", "5", "bob", later).0,
            setting_change("refresh.rotate", "false", "alice", t0).0,
        ]
    );
    let events = |who: &'static str| {
        let store = store.clone();
        async move {
            store
                .audit_events(&AuditFilter {
                    username: Some(who.into()),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(events("alice").await.len(), 2);
    assert_eq!(
        events("bob").await,
        [setting_change("refresh.max_refreshes", "5", "bob", later).1]
    );

    // Act: remove one key, twice.
    let (_, removal) = setting_change("refresh.rotate", "", "carol", later);
    let removed = store
        .remove_setting("refresh.rotate", &removal)
        .await
        .unwrap();
    let again = store
        .remove_setting("refresh.rotate", &removal)
        .await
        .unwrap();

    // Assert: only the removal that removed something is audited.
    assert!(removed && !again);
    assert_eq!(store.list_settings().await.unwrap().len(), 1);
    assert_eq!(events("carol").await, [removal]);
}

fn proof(jti: &str, jkt: &str) -> ProofUse {
    ProofUse {
        jti_hash: TokenHash::of(jti),
        jkt: jkt.into(),
        htu: "https://rotor.test/oauth2/token".into(),
        expires_at: now() + Duration::from_secs(65),
    }
}

/// A login whose refresh tokens are bound to the DPoP key `jkt`.
async fn bound_login(store: &dyn Store, user: &UserRecord, jkt: &str) -> (Uuid, RefreshToken) {
    let token = RefreshToken::generate();
    let family_id = Uuid::new_v4();
    store
        .create_family(&NewFamily {
            family_id,
            client_id: "app".into(),
            user_id: Some(user.id),
            scope: "read".into(),
            created_at: now(),
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: Some(jkt.into()),
            refresh: Some(refresh(&token)),
            access: access(),
        })
        .await
        .unwrap();
    (family_id, token)
}

async fn unspent(store: &dyn Store, token: &RefreshToken) -> bool {
    store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap()
        .used_at
        .is_none()
}

async fn a_dpop_proof_is_recorded_once_per_key_and_url_and_purged_when_expired(
    store: Arc<dyn Store>,
) {
    let first = proof("j1", "k1");
    assert!(store.record_dpop_proof(&first).await.unwrap());
    assert!(!store.record_dpop_proof(&first).await.unwrap());
    let other_key = proof("j1", "k2");
    assert!(store.record_dpop_proof(&other_key).await.unwrap());
    let other_url = ProofUse {
        htu: "https://rotor.test/api/v1/me".into(),
        ..first.clone()
    };
    assert!(store.record_dpop_proof(&other_url).await.unwrap());
    // Nothing is purged before it expires, everything after.
    assert_eq!(store.purge_dpop_proofs(now(), 100).await.unwrap(), 0);
    let later = now() + Duration::from_secs(65);
    assert_eq!(store.purge_dpop_proofs(later, 2).await.unwrap(), 2);
    assert_eq!(store.purge_dpop_proofs(later, 2).await.unwrap(), 1);
    assert!(store.record_dpop_proof(&first).await.unwrap());
}

async fn concurrent_records_of_one_dpop_proof_succeed_exactly_once(store: Arc<dyn Store>) {
    let p = proof("raced", "k1");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        let p = p.clone();
        tasks.spawn(async move { store.record_dpop_proof(&p).await.unwrap() });
    }
    let recorded = tasks.join_all().await.into_iter().filter(|r| *r).count();
    assert_eq!(recorded, 1);
}

async fn a_bound_family_is_rotated_only_with_a_proof_of_its_key(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = bound_login(store.as_ref(), &user, "k1").await;
    let record = store
        .find_refresh_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.dpop_jkt.as_deref(), Some("k1"));
    let (without, _) = rotation(&token, family_id, 0);
    let with_other = Consume {
        proof: Some(proof("j1", "k2")),
        ..without.clone()
    };
    assert_eq!(
        store.consume_refresh_token(&without).await.unwrap(),
        ConsumeOutcome::WrongKey
    );
    assert_eq!(
        store.consume_refresh_token(&with_other).await.unwrap(),
        ConsumeOutcome::WrongKey
    );
    assert!(unspent(store.as_ref(), &token).await);
    let (mut own, next) = rotation(&token, family_id, 0);
    own.proof = Some(proof("j2", "k1"));
    assert_eq!(
        store.consume_refresh_token(&own).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 1 }
    );
    // The successor inherits the binding; a spent token of another key is
    // reported as the wrong key before it is reported as spent.
    let (mut successor, _) = rotation(&next, family_id, 0);
    successor.proof = Some(proof("j3", "k2"));
    assert_eq!(
        store.consume_refresh_token(&successor).await.unwrap(),
        ConsumeOutcome::WrongKey
    );
    assert_eq!(
        store.consume_refresh_token(&with_other).await.unwrap(),
        ConsumeOutcome::WrongKey
    );
}

async fn a_replayed_proof_in_a_rotation_spends_nothing(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let (mut first, next) = rotation(&token, family_id, 0);
    first.proof = Some(proof("j1", "k1"));
    assert!(matches!(
        store.consume_refresh_token(&first).await.unwrap(),
        ConsumeOutcome::Consumed { .. }
    ));
    // The proof was recorded by the rotation itself.
    assert!(!store.record_dpop_proof(&proof("j1", "k1")).await.unwrap());
    let (mut replay, after) = rotation(&next, family_id, 0);
    replay.proof = Some(proof("j1", "k1"));
    assert_eq!(
        store.consume_refresh_token(&replay).await.unwrap(),
        ConsumeOutcome::ProofReplayed
    );
    assert!(unspent(store.as_ref(), &next).await);
    assert!(
        store
            .find_refresh_token(&after.hash())
            .await
            .unwrap()
            .is_none()
    );
    replay.proof = Some(proof("j2", "k1"));
    assert_eq!(
        store.consume_refresh_token(&replay).await.unwrap(),
        ConsumeOutcome::Consumed { refresh_count: 2 }
    );
}

async fn a_public_clients_first_proof_binds_an_unbound_family(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let (family_id, token) = login(store.as_ref(), &user).await;
    let (mut bind, next) = rotation(&token, family_id, 0);
    bind.proof = Some(proof("j1", "k1"));
    bind.bind_family = true;
    assert!(matches!(
        store.consume_refresh_token(&bind).await.unwrap(),
        ConsumeOutcome::Consumed { .. }
    ));
    let successor = store
        .find_refresh_token(&next.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.dpop_jkt.as_deref(), Some("k1"));
    let (without, _) = rotation(&next, family_id, 0);
    assert_eq!(
        store.consume_refresh_token(&without).await.unwrap(),
        ConsumeOutcome::WrongKey
    );
}

async fn of_instances_starting_together_every_one_gets_the_same_server_secret(
    store: Arc<dyn Store>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u8..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .server_secret("dpop-nonce", &[i; 32], now())
                .await
                .unwrap()
        });
    }
    let got: Vec<Vec<u8>> = tasks.join_all().await;
    assert!(got.iter().all(|g| *g == got[0]), "{got:?}");
    assert_eq!(
        store
            .server_secret("dpop-nonce", &[99; 32], now())
            .await
            .unwrap(),
        got[0]
    );
    assert_ne!(
        store
            .server_secret("other", &[99; 32], now())
            .await
            .unwrap(),
        got[0]
    );
}

async fn a_client_is_edited_and_its_secret_replaced_keeping_the_rest(store: Arc<dyn Store>) {
    let (_, client) = seed(store.as_ref()).await;
    let mut edited = client.clone();
    edited.scopes = vec!["read".into()];
    edited.max_refreshes = None;
    edited.code_flow.redirect_uris = vec!["http://127.0.0.1/cb".into()];
    edited.secret_hash = Some(TokenHash::of("ignored by an edit"));
    store.update_client(&edited).await.unwrap();
    let found = store.find_client("app").await.unwrap().unwrap();
    assert_eq!(found.scopes, ["read"]);
    assert_eq!(found.max_refreshes, None);
    assert_eq!(found.code_flow.redirect_uris, ["http://127.0.0.1/cb"]);
    assert!(found.secret_hash.unwrap().ct_eq(&TokenHash::of("secret")));
    assert_eq!(found.created_at, client.created_at);
    store
        .set_client_secret("app", &TokenHash::of("new secret"))
        .await
        .unwrap();
    let found = store.find_client("app").await.unwrap().unwrap();
    assert!(
        found
            .secret_hash
            .unwrap()
            .ct_eq(&TokenHash::of("new secret"))
    );
    edited.id = "nobody".into();
    assert!(matches!(
        store.update_client(&edited).await,
        Err(StoreError::NotFound)
    ));
    let mut public = client.clone();
    public.id = "public".into();
    public.secret_hash = None;
    store.create_client(&public).await.unwrap();
    // A public client gets no secret.
    assert!(matches!(
        store.set_client_secret("public", &TokenHash::of("x")).await,
        Err(StoreError::NotFound)
    ));
}

async fn revoking_all_families_of_a_user_or_client_spares_the_others(store: Arc<dyn Store>) {
    let (alice, client) = seed(store.as_ref()).await;
    let bob = UserRecord {
        id: Uuid::new_v4(),
        username: "bob".into(),
        ..alice.clone()
    };
    store.create_user(&bob).await.unwrap();
    let (a1, _) = login(store.as_ref(), &alice).await;
    let (a2, _) = login(store.as_ref(), &alice).await;
    let (b1, _) = login(store.as_ref(), &bob).await;
    let n = store
        .revoke_families_of(&FamilyOwner::User(alice.id), now())
        .await
        .unwrap();
    assert_eq!(n, 2);
    for id in [a1, a2] {
        let f = store.find_family(id, now()).await.unwrap().unwrap();
        assert_eq!(f.state(), "revoked");
    }
    let b = store.find_family(b1, now()).await.unwrap().unwrap();
    assert_eq!(b.state(), "active");
    // Again: nothing live is left.
    assert_eq!(
        store
            .revoke_families_of(&FamilyOwner::User(alice.id), now())
            .await
            .unwrap(),
        0
    );
    let n = store
        .revoke_families_of(&FamilyOwner::Client(client.id.clone()), now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let b = store.find_family(b1, now()).await.unwrap().unwrap();
    assert_eq!(b.state(), "revoked");
}

async fn a_users_families_and_sessions_are_paged_newest_first_without_repeats(
    store: Arc<dyn Store>,
) {
    let (alice, _) = seed(store.as_ref()).await;
    // Five logins and sessions in one second (SQLite keeps seconds) and two an
    // hour before: the id orders those of one second.
    let mut families = Vec::new();
    let mut sessions = Vec::new();
    let second = now();
    for i in 0..7 {
        let at = if i < 2 {
            second - time::Duration::hours(1)
        } else {
            second
        };
        let family_id = Uuid::new_v4();
        store
            .create_family(&NewFamily {
                family_id,
                client_id: "app".into(),
                user_id: Some(alice.id),
                scope: "read".into(),
                created_at: at,
                session_id: None,
                offline: false,
                expires_at: None,
                dpop_jkt: None,
                refresh: Some(refresh(&RefreshToken::generate())),
                access: access(),
            })
            .await
            .unwrap();
        families.push((at, family_id));
        let session_id = Uuid::new_v4();
        store
            .create_session(&NewBrowserSession {
                id: session_id,
                hash: SessionToken::generate().hash(),
                user_id: alice.id,
                created_at: at,
                expires_at: at + Duration::from_secs(3600),
                ip: None,
            })
            .await
            .unwrap();
        sessions.push((at, session_id));
    }
    let newest_first = |mut rows: Vec<(OffsetDateTime, Uuid)>| {
        rows.sort_by(|a, b| b.cmp(a));
        rows.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    };
    let (families, sessions) = (newest_first(families), newest_first(sessions));

    let mut seen = Vec::new();
    let mut page = CreatedPage {
        before: None,
        limit: 3,
    };
    loop {
        let rows = store.list_families(alice.id, now(), &page).await.unwrap();
        assert!(rows.len() <= 3);
        let Some(last) = rows.last() else { break };
        page.before = Some(CreatedCursor {
            created_at: last.created_at,
            id: last.id,
        });
        seen.extend(rows.iter().map(|f| f.id));
    }
    assert_eq!(seen, families);

    let mut seen = Vec::new();
    let mut page = CreatedPage {
        before: None,
        limit: 2,
    };
    loop {
        let rows = store.list_sessions(alice.id, &page).await.unwrap();
        assert!(rows.len() <= 2);
        let Some(last) = rows.last() else { break };
        page.before = Some(CreatedCursor {
            created_at: last.created_at,
            id: last.id,
        });
        seen.extend(rows.iter().map(|s| s.id));
    }
    assert_eq!(seen, sessions);
}

async fn the_audit_trail_pages_by_position_without_repeats_and_counts_by_kind(
    store: Arc<dyn Store>,
) {
    // Five events in one second (SQLite keeps seconds), and one an hour before.
    let at = now();
    let event = |kind, at| AuditEvent {
        at,
        kind,
        username: Some("alice".into()),
        client_id: None,
        family_id: None,
        ip: None,
        outcome: Outcome::Success,
        target: None,
        actor: None,
    };
    store
        .record_audit(&event(AuditKind::Login, at - time::Duration::hours(1)))
        .await
        .unwrap();
    for _ in 0..5 {
        store
            .record_audit(&event(AuditKind::Refresh, at))
            .await
            .unwrap();
    }
    let mut filter = AuditFilter {
        kind: Some(AuditKind::Refresh),
        limit: 2,
        ..AuditFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.audit_page(&filter).await.unwrap();
        seen.extend(page.iter().map(|e| e.cursor));
        if page.len() < 2 {
            break;
        }
        filter.before = page.last().map(|e| e.cursor);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut ids: Vec<i64> = seen.iter().map(|c: &AuditCursor| c.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let counts = store
        .count_audit(at - time::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].kind, counts[0].count), (AuditKind::Refresh, 5));
    let day = store
        .count_audit(at - time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(day.iter().map(|c| c.count).sum::<u64>(), 6);
}

async fn locked_keys_and_retries_are_read_back(store: Arc<dyn Store>) {
    let (user, _) = seed(store.as_ref()).await;
    let window = Duration::from_secs(600);
    for _ in 0..2 {
        store
            .begin_login_attempt("user:alice", now(), window, 2)
            .await
            .unwrap();
        store
            .end_login_attempt("user:alice", true, now(), 2, window)
            .await
            .unwrap();
    }
    let keys = vec!["user:alice".to_owned(), "user:bob".to_owned()];
    let locked = store.locked_keys(&keys, now()).await.unwrap();
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0].0, "user:alice");
    assert!(locked[0].1 > now());
    store.clear_login_failures("user:alice").await.unwrap();
    assert!(store.locked_keys(&keys, now()).await.unwrap().is_empty());

    let (family_id, token) = login(store.as_ref(), &user).await;
    assert!(store.family_retries(family_id).await.unwrap().is_empty());
    store.note_retry(&token.hash(), now()).await.unwrap();
    let later = now() + time::Duration::seconds(3);
    store.note_retry(&token.hash(), later).await.unwrap();
    let retries = store.family_retries(family_id).await.unwrap();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].count, 2);
    assert_eq!(retries[0].last_at.unix_timestamp(), later.unix_timestamp());
}

async fn a_clients_dpop_settings_are_stored_and_edited(store: Arc<dyn Store>) {
    let (_, client) = seed(store.as_ref()).await;
    assert_eq!(client.dpop, Default::default());
    let mut edited = client.clone();
    edited.dpop.bound_access_tokens = true;
    edited.dpop.require_nonce = Some(false);
    store.update_client(&edited).await.unwrap();
    let found = store.find_client("app").await.unwrap().unwrap();
    assert!(found.dpop.bound_access_tokens);
    assert_eq!(found.dpop.require_nonce, Some(false));
    edited.dpop.require_nonce = None;
    store.update_client(&edited).await.unwrap();
    let found = store.find_client("app").await.unwrap().unwrap();
    assert_eq!(found.dpop.require_nonce, None);
}
