//! Settings changed at run time: stored by `rotor settings` or the admin rules the
//! API and console call, they reach every running instance within
//! `settings.reload_interval`, without a restart, and each change is audited.

use std::{
    future::Future,
    process::{Command, Output},
    time::{Duration, Instant},
};

use rotor::{
    Application, Settings,
    admin::{
        Actor, AdminError,
        settings::{self as stored_settings},
    },
    http::cache,
    store::{AuditEvent, AuditFilter, AuditKind},
};
use time::OffsetDateTime;

use crate::helpers::{Db, TestApp, spawn_app_with, spawn_instance};
use crate::on_both_stores;

on_both_stores!(
    a_setting_stored_by_the_cli_reaches_every_running_instance,
    refresh_tokens_turned_off_at_run_time_are_neither_issued_nor_advertised,
    a_bad_value_or_key_is_refused_and_changes_nothing,
    unsetting_a_stored_value_brings_the_configured_one_back,
    a_change_through_an_instance_is_in_force_there_at_once,
    a_patch_through_the_admin_api_reaches_a_second_instance,
    changes_made_with_the_command_line_are_audited_with_cli_as_actor,
);

/// Reloads often, so that the tests wait little.
const RELOAD: Duration = Duration::from_millis(200);

/// How long a change may take to reach an instance: the reload interval, with
/// room for a slow machine.
const WITHIN: Duration = Duration::from_secs(5);

fn quick_reload(settings: &mut Settings) {
    settings.settings.reload_interval = RELOAD;
}

/// Polls `check` until it holds or `within` has passed; whether it held.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `rotor ARGS` on the test's database, as an operator would beside the
/// running servers.
async fn rotor(db: &Db, args: &[&str]) -> Output {
    let url = db.url();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rotor"))
            .args(&args)
            .env_remove("RUST_LOG")
            .env("ROTOR__DATABASE__URL", url)
            .env("ROTOR__LOG__FILTER", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether a new login on `app` may refresh once and no more: the first refresh
/// succeeds, and the second is refused as `refresh.max_refreshes = 1` refuses it.
async fn refreshes_once_only(app: &TestApp) -> bool {
    let login = app.login().await;
    login.assert_ok();
    let first = app.refresh(&login.refresh_token()).await;
    first.assert_ok();
    let second = app.refresh(&first.refresh_token()).await;
    match second.status {
        200 => false,
        _ => {
            second.assert_error(400, "invalid_grant");
            true
        }
    }
}

/// The admin changes recorded, newest first.
async fn admin_changes(app: &TestApp) -> Vec<AuditEvent> {
    app.store
        .audit_events(&AuditFilter {
            kind: Some(AuditKind::AdminChange),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::AdminChange)
        .collect()
}

async fn a_setting_stored_by_the_cli_reaches_every_running_instance(db: Db) {
    // Arrange: two instances on one database, refreshes unlimited.
    let app = spawn_app_with(db.clone(), quick_reload).await;
    let mut second = spawn_instance(db.clone(), app.settings.clone()).await;
    second.client = app.client.clone();
    assert!(!refreshes_once_only(&app).await);
    assert!(!refreshes_once_only(&second).await);

    // Act
    let set = rotor(&db, &["settings", "set", "refresh.max_refreshes", "1"]).await;

    // Assert: both instances apply it, without a restart.
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(
        stdout(&set).starts_with("refresh.max_refreshes = 1 stored;"),
        "{}",
        stdout(&set)
    );
    for (name, instance) in [("first", &app), ("second", &second)] {
        assert!(
            eventually(WITHIN, || refreshes_once_only(instance)).await,
            "the {name} instance still allows a second refresh"
        );
    }
    let shown = stdout(&rotor(&db, &["settings", "show"]).await);
    let line = shown
        .lines()
        .find(|l| l.starts_with("refresh.max_refreshes "))
        .unwrap_or_else(|| panic!("{shown}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[..3], ["refresh.max_refreshes", "1", "database"]);
    assert!(line.ends_with(" by cli"), "{line}");
    let changes = admin_changes(&app).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        changes[0].target.as_deref(),
        Some("setting refresh.max_refreshes")
    );
    // The command line acts with the database's credentials, as no user or client.
    assert_eq!(
        (&changes[0].username, &changes[0].client_id),
        (&None, &None)
    );
    assert_eq!(changes[0].actor.as_deref(), Some("cli"));
}

async fn a_patch_through_the_admin_api_reaches_a_second_instance(db: Db) {
    // Arrange: two instances on one database with the default reload interval
    // (2s), and a client allowed the admin scope for scripts.
    let app = spawn_app_with(db.clone(), |_| {}).await;
    let mut second = spawn_instance(db.clone(), app.settings.clone()).await;
    second.client = app.client.clone();
    let ops = crate::admin_api::ops_client(&app).await;
    let token = app
        .post_form_as(
            &ops,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "rotor:admin"),
            ],
        )
        .await;
    token.assert_ok();
    assert!(!refreshes_once_only(&second).await);

    // Act: PATCH on the first instance.
    let patched = app
        .http
        .patch(format!("{}/admin/api/v1/settings", app.address))
        .bearer_auth(token.str("access_token"))
        .json(&serde_json::json!({"refresh.max_refreshes": 1}))
        .send()
        .await
        .unwrap();

    // Assert: the second instance applies it by its next reload, polled within a
    // bound rather than slept for.
    assert_eq!(patched.status(), 200);
    let within = app.settings.settings.reload_interval * 5;
    assert!(
        eventually(within, || refreshes_once_only(&second)).await,
        "the second instance still allows a second refresh after {within:?}"
    );
    let shown = second
        .http
        .get(format!("{}/admin/api/v1/settings", second.address))
        .bearer_auth(token.str("access_token"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let max = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "refresh.max_refreshes")
        .unwrap()
        .clone();
    assert_eq!(max["value"], "1");
    assert_eq!(max["source"], "database");
    assert_eq!(max["updated_by"], "client ops");
    let changes = admin_changes(&app).await;
    assert_eq!(changes[0].actor.as_deref(), Some("client ops"));
}

async fn changes_made_with_the_command_line_are_audited_with_cli_as_actor(db: Db) {
    // Arrange
    let app = spawn_app_with(db.clone(), quick_reload).await;

    // Act
    let added = rotor(&db, &["user", "add", "bob"]).await;
    let disabled = rotor(&db, &["user", "disable", "bob"]).await;
    let client = rotor(&db, &["client", "add", "tool", "--scopes", "read"]).await;
    let removed = rotor(&db, &["client", "remove", "tool"]).await;

    // Assert
    for out in [&added, &disabled, &client, &removed] {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let changes = admin_changes(&app).await;
    let targets: Vec<(&str, &str)> = changes
        .iter()
        .map(|e| {
            (
                e.actor.as_deref().unwrap_or(""),
                e.target.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("cli", "client tool"),
            ("cli", "client tool"),
            ("cli", "user bob"),
            ("cli", "user bob"),
        ]
    );
}

async fn refresh_tokens_turned_off_at_run_time_are_neither_issued_nor_advertised(db: Db) {
    // Arrange: a refresh token from before the change, and the metadata cached.
    let app = spawn_app_with(db, quick_reload).await;
    let before = app.login().await;
    before.assert_ok();
    let metadata = "/.well-known/oauth-authorization-server";
    let advertised = app.get(metadata, None).await.body["grant_types_supported"].clone();
    assert!(
        advertised.to_string().contains("refresh_token"),
        "{advertised}"
    );

    // Act: as the admin API does for an admin user.
    let admin = Actor::User("root".into());
    let now = OffsetDateTime::now_utc();
    let view = stored_settings::set(
        app.store.as_ref(),
        &app.settings,
        "refresh.enabled",
        "false",
        &admin,
        now,
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(view.value, "false");
    let issues_none = || async { app.login().await.body.get("refresh_token").is_none() };
    assert!(eventually(WITHIN, issues_none).await);
    app.refresh(&before.refresh_token())
        .await
        .assert_error(400, "unsupported_grant_type");
    // The metadata document is cached for an interval of the server's clock.
    app.advance(cache::INTERVAL);
    let advertised = app.get(metadata, None).await.body["grant_types_supported"].clone();
    assert!(
        !advertised.to_string().contains("refresh_token"),
        "{advertised}"
    );
    let changes = admin_changes(&app).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].username.as_deref(), Some("root"));
    assert_eq!(
        changes[0].target.as_deref(),
        Some("setting refresh.enabled")
    );
}

async fn a_bad_value_or_key_is_refused_and_changes_nothing(db: Db) {
    // Arrange
    let app = spawn_app_with(db.clone(), quick_reload).await;
    let admin = Actor::Client("ops-ci".into());
    let now = OffsetDateTime::now_utc();

    // Act: a grace period over the file's cap, a key that cannot change at run
    // time, and a good value sent with a bad one.
    let too_long = rotor(&db, &["settings", "set", "refresh.grace_period", "10m"]).await;
    let not_changeable = rotor(&db, &["settings", "set", "server.bind", "0.0.0.0:80"]).await;
    let mixed = stored_settings::update(
        app.store.as_ref(),
        &app.settings,
        &[("refresh.max_refreshes", "1"), ("refresh.rotate", "maybe")],
        &admin,
        now,
    )
    .await;

    // Assert: each refusal names the key, and nothing is stored or audited.
    assert!(!too_long.status.success());
    assert!(
        stderr(&too_long).contains("refresh.grace_period: must be at most 120s"),
        "{}",
        stderr(&too_long)
    );
    assert!(!not_changeable.status.success());
    assert!(
        stderr(&not_changeable).contains(r#""server.bind" cannot be changed at run time"#),
        "{}",
        stderr(&not_changeable)
    );
    match mixed {
        Err(AdminError::InvalidSetting(why)) => assert_eq!(
            why,
            r#"refresh.rotate: expected true or false, got "maybe""#
        ),
        other => panic!("{other:?}"),
    }
    assert!(app.store.list_settings().await.unwrap().is_empty());
    assert!(admin_changes(&app).await.is_empty());
    assert!(!refreshes_once_only(&app).await);
}

async fn unsetting_a_stored_value_brings_the_configured_one_back(db: Db) {
    // Arrange: a stored limit in force.
    let app = spawn_app_with(db.clone(), quick_reload).await;
    let set = rotor(&db, &["settings", "set", "refresh.max_refreshes", "1"]).await;
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(eventually(WITHIN, || refreshes_once_only(&app)).await);

    // Act
    let unset = rotor(&db, &["settings", "unset", "refresh.max_refreshes"]).await;
    let again = rotor(&db, &["settings", "unset", "refresh.max_refreshes"]).await;

    // Assert
    assert!(unset.status.success(), "{}", stderr(&unset));
    assert!(
        stdout(&unset).starts_with("refresh.max_refreshes: stored value removed;"),
        "{}",
        stdout(&unset)
    );
    assert!(
        eventually(WITHIN, || async { !refreshes_once_only(&app).await }).await,
        "the stored limit still applies"
    );
    assert!(
        stdout(&again).starts_with("refresh.max_refreshes: no value was stored;"),
        "{}",
        stdout(&again)
    );
    let shown = stdout(&rotor(&db, &["settings", "show"]).await);
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["refresh.max_refreshes", "0", "default", "-"]),
        "{shown}"
    );
    // The set and the removal that removed something.
    assert_eq!(admin_changes(&app).await.len(), 2);
}

async fn a_change_through_an_instance_is_in_force_there_at_once(db: Db) {
    // Arrange: an instance that would not reload on its own during the test.
    let seeded = spawn_app_with(db.clone(), |_| {}).await;
    let mut settings = seeded.settings.clone();
    settings.settings.reload_interval = Duration::from_secs(3600);
    let store = db.open_store().await;
    let server = Application::with_store(settings.clone(), store.clone())
        .await
        .unwrap();
    let state = server.state().clone();
    let app = TestApp {
        address: format!("http://{}", server.local_addr().unwrap()),
        store,
        clock: state.clock.clone(),
        settings,
        ..seeded
    };
    tokio::spawn(server.run_until_stopped());
    stored_settings::set(
        app.store.as_ref(),
        state.settings.file(),
        "refresh.max_refreshes",
        "1",
        &Actor::User("root".into()),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(state.settings().refresh.max_refreshes, 0);

    // Act: what the admin API does after storing a change.
    state.reload_settings().await.unwrap();

    // Assert: in force for the next request, with no wait.
    assert_eq!(state.settings().refresh.max_refreshes, 1);
    assert!(refreshes_once_only(&app).await);
}
