//! The OAuth endpoints, one file each: authorization and logout (RFC 6749 §3.1),
//! token (RFC 6749 §3.2), revocation
//! (RFC 7009), introspection (RFC 7662), server metadata (RFC 8414) and the JWK set.

use super::Routes;

pub mod authorize;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;

/// Every OAuth endpoint's routes.
pub fn router() -> Routes {
    Routes::new()
        .merge(authorize::router())
        .merge(token::router())
        .merge(revoke::router())
        .merge(introspect::router())
        .merge(metadata::router())
        .merge(jwks::router())
}
