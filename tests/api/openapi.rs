//! `openapi.json` and the router in step: every documented operation is served and
//! answers a documented status, every served route is documented, and a method the
//! document does not list answers 405.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Db, TestApp, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    openapi_document_is_served_verbatim,
    documented_operations_and_served_routes_are_the_same,
    every_documented_operation_is_served_with_a_documented_status,
    methods_the_document_does_not_list_answer_405,
);

/// Documented here, served by routes that come with another part of rotor: they may
/// be missing from this build, and then answer the 404 fallback.
const SERVED_ELSEWHERE: &[(&str, &str)] =
    &[("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")];

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

fn owned(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
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

async fn documented_operations_and_served_routes_are_the_same(db: Db) {
    // Arrange
    let _app = spawn_app(db).await;
    let served = owned(rotor::http::ROUTES);
    let elsewhere = owned(SERVED_ELSEWHERE);
    // Act
    let documented = documented();
    // Assert
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented
        .difference(&served)
        .filter(|op| !elsewhere.contains(*op))
        .collect();
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
}

async fn every_documented_operation_is_served_with_a_documented_status(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let elsewhere = owned(SERVED_ELSEWHERE);
    for (method, path) in documented() {
        // Act
        let answer = call(&app, &method, &path).await;
        // Assert
        if elsewhere.contains(&(method.clone(), path.clone())) && is_fallback(&answer) {
            continue;
        }
        assert!(!is_fallback(&answer), "{method} {path} is not served");
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
    let served = owned(rotor::http::ROUTES);
    let paths: BTreeSet<&String> = served.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            if documented.contains(&((*method).to_owned(), path.clone())) {
                continue;
            }
            // Act
            let answer = call(&app, method, path).await;
            // Assert
            answer.assert_error(405, "invalid_request");
        }
    }
    // An undocumented path is the fallback.
    assert!(is_fallback(&call(&app, "GET", "/oauth2/authorize").await));
}
