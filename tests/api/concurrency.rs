use tokio::task::JoinSet;

use crate::helpers::{Db, TestApp, spawn_app, spawn_instance};
use crate::on_both_stores;

on_both_stores!(
    fifty_parallel_uses_of_one_refresh_token_yield_exactly_one_success,
    parallel_uses_across_three_instances_yield_exactly_one_success,
    a_chain_of_refreshes_moves_between_instances,
);

/// Fires `n` refreshes of `token` at once, spread over `urls`; returns the statuses.
async fn race(urls: &[String], auth: &str, token: &str, n: usize) -> Vec<u16> {
    let http = reqwest::Client::new();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let request = http
            .post(&urls[i % urls.len()])
            .header("Authorization", auth)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    tasks.join_all().await
}

async fn fifty_parallel_uses_of_one_refresh_token_yield_exactly_one_success(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let rt = app.login().await.refresh_token();
    // Act
    let statuses = race(&[app.token_url()], &app.client_basic(), &rt, 50).await;
    // Assert
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

async fn parallel_uses_across_three_instances_yield_exactly_one_success(db: Db) {
    let first = spawn_app(db.clone()).await;
    let second = spawn_instance(db.clone(), first.settings.clone()).await;
    let third = spawn_instance(db, first.settings.clone()).await;
    let urls = [first.token_url(), second.token_url(), third.token_url()];
    for _ in 0..3 {
        let rt = first.login().await.refresh_token();
        let statuses = race(&urls, &first.client_basic(), &rt, 30).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
    }
}

async fn a_chain_of_refreshes_moves_between_instances(db: Db) {
    let first = spawn_app(db.clone()).await;
    let mut second = spawn_instance(db, first.settings.clone()).await;
    second.client = first.client.clone();
    let instances: [&TestApp; 2] = [&first, &second];
    let mut rt = first.login().await.refresh_token();
    for i in 0..20 {
        let answer = instances[i % 2].refresh(&rt).await;
        answer.assert_ok();
        // Every instance signs with the same key set from the store.
        instances[(i + 1) % 2]
            .verify_access_token(answer.str("access_token"))
            .await;
        rt = answer.refresh_token();
    }
}
