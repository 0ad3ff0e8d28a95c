-- Users who log in with the password grant. Passwords are argon2id PHC strings.
create table users (
    id            uuid primary key,
    username      text not null unique,
    password_hash text not null,
    disabled      boolean not null default false,
    created_at    timestamptz not null
);

-- OAuth clients. A null secret_hash marks a public client. The secret is kept as
-- SHA-256 of a 256-bit random value (or an operator's secret of 32+ characters).
create table clients (
    id               text primary key,
    secret_hash      bytea,
    grant_types      text not null,
    scopes           text not null,
    refresh_tokens   boolean not null default true,
    refresh_ttl_secs bigint,
    max_refreshes    integer,
    created_at       timestamptz not null
);

-- One family per login: every refresh token and access token descends from it.
-- Revoking a family is one row update; tokens check their family's state.
create table token_families (
    id            uuid primary key,
    client_id     text not null references clients (id) on delete cascade,
    user_id       uuid not null references users (id) on delete cascade,
    scope         text not null,
    refresh_count integer not null default 0,
    created_at    timestamptz not null,
    revoked_at    timestamptz
);
create index token_families_client_id on token_families (client_id);
create index token_families_user_id on token_families (user_id);

-- Refresh tokens, known only by SHA-256 of the token.
create table refresh_tokens (
    token_hash bytea primary key,
    family_id  uuid not null references token_families (id) on delete cascade,
    issued_at  timestamptz not null,
    expires_at timestamptz not null,
    used_at    timestamptz
);
create index refresh_tokens_family_id on refresh_tokens (family_id);

-- Ids of issued access tokens, so that revocation and introspection can see them.
create table access_tokens (
    jti        uuid primary key,
    family_id  uuid not null references token_families (id) on delete cascade,
    issued_at  timestamptz not null,
    expires_at timestamptz not null
);
create index access_tokens_family_id on access_tokens (family_id);

-- JWT signing keys, shared by every instance using this database.
create table signing_keys (
    kid         text primary key,
    alg         text not null,
    private_key bytea not null,
    created_at  timestamptz not null
);
