//! Shape checks that need no socket: requests sent through the router itself with
//! `oneshot`, on a migrated in-memory SQLite store.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use rotor::{Application, http::router, store::SqliteStore};
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::test_settings;

/// The application's router on a fresh in-memory store.
async fn app() -> axum::Router {
    let store = SqliteStore::connect("sqlite::memory:", 1).await.unwrap();
    rotor::store::DatabaseStore::migrate(&store).await.unwrap();
    let app = Application::with_store(test_settings(), std::sync::Arc::new(store))
        .await
        .unwrap();
    router(app.state().clone())
}

/// Sends `request` and returns the status, the headers and the JSON body.
async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app().await.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 64 * 1024).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn token_request(content_type: &str, body: &str) -> Request<Body> {
    Request::post("/oauth2/token")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn the_token_endpoint_refuses_get_with_405_naming_post() {
    let (status, headers, body) =
        send(Request::get("/oauth2/token").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "POST");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let (status, _, body) = send(Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_and_never_cached() {
    let (status, headers, body) = send(token_request(
        "application/x-www-form-urlencoded",
        "grant_type=urn%3Aexample%3Anone",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    // RFC 6749 §5.1: no-store on every answer of the token endpoint.
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::PRAGMA], "no-cache");
}

#[tokio::test]
async fn a_body_of_another_media_type_is_invalid_request() {
    let (status, _, body) = send(token_request("text/plain", "grant_type=password")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let (status, _, body) = send(token_request(
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials&grant_type=client_credentials",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn the_metadata_lists_client_credentials() {
    let (status, _, body) = send(
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let grants = body["grant_types_supported"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g == "client_credentials"),
        "{grants:?}"
    );
}
