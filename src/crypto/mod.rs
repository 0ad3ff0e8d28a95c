//! Cryptography: random tokens and their SHA-256 hashes, argon2id passwords on a
//! bounded blocking pool, JWT access tokens, their signing keys and the seal that
//! keeps those keys at rest. No HTTP, no SQL.

pub mod csrf;
pub mod jwt;
pub mod nonce;
pub mod password;
pub mod retry;
pub mod seal;
pub mod signing_key;
pub mod token;
