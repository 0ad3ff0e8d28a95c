//! API tests: a real server on a random port, against a fresh PostgreSQL database
//! and a fresh SQLite file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod helpers;
#[path = "../support/postgres.rs"]
mod postgres;

mod admin;
mod admin_api;
mod admin_api_more;
mod admin_lists;
mod authorization_code;
mod bearer;
mod bodies;
mod browser;
mod cli;
mod client_auth;
mod client_credentials;
mod client_ids;
mod concurrency;
mod console;
mod dpop;
mod fuzz_regressions;
mod hostile_input;
mod introspection;
mod keys_at_rest;
mod limits;
mod lockout;
mod logs;
mod metadata;
mod openapi;
mod operations;
mod password_grant;
mod properties;
mod races;
mod refresh_grant;
mod retry_window;
mod revocation;
mod secrecy;
mod settings;
mod shapes;
mod shutdown;
mod tls;
