//! rotor: a standalone OAuth 2.0 authorization server that issues access tokens with
//! the password grant and renews them with single-use, rotating, counted, expiring
//! and revocable refresh tokens.
//!
//! Layers: [`http`] (axum) calls [`oauth`] (protocol rules, no HTTP), which calls
//! [`store`] (all SQL, PostgreSQL and SQLite). [`crypto`] holds hashing and signing.
//! [`admin`] holds the rules for managing clients and users, which [`cli`] prints.

pub mod admin;
pub mod app;
pub mod cleanup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod oauth;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use app::Application;
pub use config::Settings;
