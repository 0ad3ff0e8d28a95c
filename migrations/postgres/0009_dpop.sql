-- DPoP (RFC 9449): clients that must send proofs, the key a public client's
-- refresh tokens and an authorization code are bound to, the proofs seen (replay,
-- §11.1), and the key of the server's nonces (§8), shared by every instance.
alter table clients add column dpop_bound_access_tokens boolean not null default false;
-- null: the server's dpop.require_nonce applies.
alter table clients add column dpop_require_nonce boolean;
alter table token_families add column dpop_jkt text;
alter table authorization_codes add column dpop_jkt text;
create table dpop_proofs (
    jti_hash bytea not null,
    jkt text not null,
    htu text not null,
    expires_at timestamptz not null,
    primary key (jti_hash, jkt, htu)
);
create index dpop_proofs_expires_at on dpop_proofs (expires_at);
create table server_secrets (
    name text primary key,
    value bytea not null,
    created_at timestamptz not null
);
