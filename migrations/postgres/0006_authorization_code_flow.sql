-- The authorization code flow (RFC 6749 §4.1 with PKCE): per-client settings,
-- browser sessions of the login page, authorization codes and consents.

-- Redirect URIs are space-separated (a URI holds no space); the rest mirrors
-- `CodeFlowSettings`.
alter table clients add column redirect_uris text not null default '';
alter table clients add column third_party boolean not null default false;
alter table clients add column pkce_optional boolean not null default false;
alter table clients add column offline_access boolean not null default false;
alter table clients add column offline_ttl_secs bigint;
alter table clients add column refresh_requires_offline boolean not null default false;

-- A browser session, known only by SHA-256 of its cookie. It ends at logout, at
-- `expires_at` (`session.max_lifetime`), or after `session.idle_timeout` without
-- activity.
create table browser_sessions (
    id           uuid primary key,
    token_hash   bytea not null unique,
    user_id      uuid not null references users (id) on delete cascade,
    created_at   timestamptz not null,
    last_seen_at timestamptz not null,
    expires_at   timestamptz not null,
    ended_at     timestamptz
);
create index browser_sessions_user_id on browser_sessions (user_id);
create index browser_sessions_expires_at on browser_sessions (expires_at);

-- A family born from a browser session dies with it unless it is offline; no
-- refresh token of it lives past `expires_at`. The session may be purged before
-- the family, so there is no foreign key.
alter table token_families add column session_id uuid;
alter table token_families add column offline boolean not null default false;
alter table token_families add column expires_at timestamptz;
create index token_families_session_id on token_families (session_id)
    where session_id is not null;

-- Authorization codes, known only by SHA-256 of the code. A spent code keeps the
-- family it was exchanged for, so that a replay can revoke it (OAuth 2.1 §4.1.3).
create table authorization_codes (
    code_hash         bytea primary key,
    client_id         text not null references clients (id) on delete cascade,
    user_id           uuid not null references users (id) on delete cascade,
    session_id        uuid not null,
    redirect_uri      text not null,
    redirect_uri_sent boolean not null,
    code_challenge    text,
    scope             text not null,
    offline           boolean not null,
    created_at        timestamptz not null,
    expires_at        timestamptz not null,
    used_at           timestamptz,
    family_id         uuid
);
create index authorization_codes_expires_at on authorization_codes (expires_at);

-- What a person allowed a third-party client, until withdrawn.
create table consents (
    user_id    uuid not null references users (id) on delete cascade,
    client_id  text not null references clients (id) on delete cascade,
    scope      text not null,
    granted_at timestamptz not null,
    primary key (user_id, client_id)
);
create index consents_client_id on consents (client_id);
