//! rotor: a standalone OAuth 2.0 authorization server that issues access tokens with
//! the password grant and renews them with single-use, rotating, counted, expiring
//! and revocable refresh tokens.
//!
//! Layers: [`http`] (axum) calls [`oauth`] (protocol rules, no HTTP), which calls
//! [`store`] (all SQL, PostgreSQL and SQLite). [`crypto`] holds hashing and signing,
//! and does no I/O; [`keyring`] keeps the signing keys in the store. [`config`]
//! imports nothing of the crate; [`server`] accepts connections for [`app`].
//! [`admin`] holds the rules for managing clients, users and settings, which [`cli`]
//! prints; [`live_settings`] keeps the settings in force, stored values included.

pub mod admin;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod http;
pub mod jobs;
pub mod keyring;
pub mod lifecycle;
pub mod live_settings;
pub mod metrics;
pub mod oauth;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod wire;

pub use app::Application;
pub use config::Settings;
