-- DPoP (RFC 9449): clients that must send proofs, the key a public client's
-- refresh tokens and an authorization code are bound to, the proofs seen (replay,
-- §11.1), and the key of the server's nonces (§8), shared by every instance.
-- Booleans are 0/1, times unix seconds.
alter table clients add column dpop_bound_access_tokens integer not null default 0;
-- null: the server's dpop.require_nonce applies.
alter table clients add column dpop_require_nonce integer;
alter table token_families add column dpop_jkt text;
alter table authorization_codes add column dpop_jkt text;
create table dpop_proofs (
    jti_hash blob not null,
    jkt text not null,
    htu text not null,
    expires_at integer not null,
    primary key (jti_hash, jkt, htu)
) without rowid;
create index dpop_proofs_expires_at on dpop_proofs (expires_at);
create table server_secrets (
    name text primary key,
    value blob not null,
    created_at integer not null
);
