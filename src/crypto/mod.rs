//! Cryptography: random tokens and their SHA-256 hashes, argon2id passwords on a
//! bounded blocking pool, and JWT signing keys. No HTTP, no SQL.

pub mod keys;
pub mod password;
pub mod retry;
pub mod token;
