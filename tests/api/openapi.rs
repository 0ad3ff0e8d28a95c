//! `openapi.json` and the router in step: the document lists exactly the operations
//! the router is built from, every documented operation is served by the running
//! server with a documented status, and a method the document does not list answers
//! 405.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Db, TestApp, spawn_app, test_settings};
use crate::on_both_stores;

on_both_stores!(
    openapi_document_is_served_verbatim,
    every_documented_operation_is_served_with_a_documented_status,
    methods_the_document_does_not_list_answer_405,
);

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

fn document() -> Value {
    serde_json::from_str(rotor::http::openapi::DOCUMENT).unwrap()
}

/// (METHOD, path) of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    ops
}

/// The statuses the document allows for one operation.
fn documented_statuses(method: &str, path: &str) -> BTreeSet<u16> {
    let doc = document();
    doc["paths"][path][method.to_ascii_lowercase()]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.parse().unwrap())
        .collect()
}

async fn call(app: &TestApp, method: &str, path: &str) -> crate::helpers::Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(method, format!("{}{path}", app.address));
    if path.starts_with("/oauth2/") {
        req = req
            .header("Authorization", app.client_basic())
            .form(&[("token", "unknown"), ("grant_type", "password")]);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// The router's 404 fallback, as opposed to a served route.
fn is_fallback(answer: &crate::helpers::Answer) -> bool {
    answer.status == 404 && answer.body["error_description"] == "no such endpoint"
}

async fn openapi_document_is_served_verbatim(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    // Act
    let response = app
        .http
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, document());
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
}

/// (METHOD, path) of every operation the router is built from, with `/metrics` on.
fn served() -> BTreeSet<(String, String)> {
    let mut settings = test_settings();
    settings.metrics.enabled = true;
    rotor::http::operations(&settings)
        .into_iter()
        .map(|op| (op.method.as_str().to_owned(), op.path.to_owned()))
        .collect()
}

#[test]
fn the_document_lists_exactly_the_operations_the_router_serves() {
    // Arrange
    let served = served();
    // Act
    let documented = documented();
    // Assert
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
}

#[test]
fn metrics_are_not_served_when_turned_off() {
    let mut settings = test_settings();
    settings.metrics.enabled = false;
    let paths: Vec<_> = rotor::http::operations(&settings)
        .into_iter()
        .map(|op| op.path)
        .collect();
    assert!(!paths.contains(&"/metrics"), "{paths:?}");
    assert!(paths.contains(&"/healthz"), "{paths:?}");
}

async fn every_documented_operation_is_served_with_a_documented_status(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    for (method, path) in documented() {
        // Act
        let answer = call(&app, &method, &path).await;
        // Assert
        assert!(!is_fallback(&answer), "{method} {path} is not served");
        assert_ne!(
            answer.status, 405,
            "{method} {path}: the router serves another method on this path"
        );
        assert!(
            documented_statuses(&method, &path).contains(&answer.status),
            "{method} {path} answered {}, which the document does not list",
            answer.status
        );
    }
}

async fn methods_the_document_does_not_list_answer_405(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let documented = documented();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let allowed: Vec<&str> = documented
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.as_str())
            .collect();
        for method in METHODS {
            if allowed.contains(method) {
                continue;
            }
            // Act
            let answer = call(&app, method, path).await;
            // Assert
            answer.assert_error(405, "invalid_request");
            assert_eq!(
                answer.header("allow"),
                Some(allowed.join(", ").as_str()),
                "{method} {path}"
            );
        }
    }
    // An undocumented path is the fallback.
    assert!(is_fallback(
        &call(&app, "GET", "/oauth2/device_authorization").await
    ));
}
