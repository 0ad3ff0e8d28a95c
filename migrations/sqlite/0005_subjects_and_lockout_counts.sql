-- A family's subject is a user (the password grant) or, when user_id is null, the
-- client itself (client_credentials, RFC 6749 §4.4): no placeholder users.
--
-- SQLite cannot drop NOT NULL from a column, so token_families is rebuilt
-- (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
-- Changes"). Migrations run in a transaction, where foreign keys cannot be turned
-- off; dropping the old table would then cascade to every token. So the two token
-- tables are rebuilt as well, pointing at the new family table, and the old tables
-- go children first. Renaming the new family table renames the references to it.
create table token_families_next (
    id            text primary key,
    client_id     text not null references clients (id) on delete cascade,
    user_id       text references users (id) on delete cascade,
    scope         text not null,
    refresh_count integer not null default 0,
    created_at    integer not null,
    revoked_at    integer
);
insert into token_families_next (id, client_id, user_id, scope, refresh_count, created_at, revoked_at)
    select id, client_id, user_id, scope, refresh_count, created_at, revoked_at from token_families;

create table refresh_tokens_next (
    token_hash     blob primary key,
    family_id      text not null references token_families_next (id) on delete cascade,
    issued_at      integer not null,
    expires_at     integer not null,
    used_at        integer,
    successor_hash blob,
    retry_answer   blob,
    retry_until    integer
);
insert into refresh_tokens_next
    (token_hash, family_id, issued_at, expires_at, used_at, successor_hash, retry_answer, retry_until)
    select token_hash, family_id, issued_at, expires_at, used_at, successor_hash, retry_answer, retry_until
    from refresh_tokens;

create table access_tokens_next (
    jti        text primary key,
    family_id  text not null references token_families_next (id) on delete cascade,
    issued_at  integer not null,
    expires_at integer not null,
    revoked_at integer
);
insert into access_tokens_next (jti, family_id, issued_at, expires_at, revoked_at)
    select jti, family_id, issued_at, expires_at, revoked_at from access_tokens;

drop table refresh_tokens;
drop table access_tokens;
drop table token_families;
alter table token_families_next rename to token_families;
alter table refresh_tokens_next rename to refresh_tokens;
alter table access_tokens_next rename to access_tokens;

create index token_families_client_id on token_families (client_id);
create index token_families_user_id on token_families (user_id);
create index refresh_tokens_family_id on refresh_tokens (family_id);
create index refresh_tokens_retry_until on refresh_tokens (retry_until) where retry_answer is not null;
create index access_tokens_family_id on access_tokens (family_id);

-- A sign-in is counted before its password is hashed: `pending` holds the
-- attempts being checked, and failures + pending never exceed the limit, so that
-- concurrent guesses cannot get past it. Attempts refused while a key is locked
-- (or at the limit) are counted in `refused` instead of being written as one audit
-- row each (an attacker chooses how many there are).
alter table login_failures add column pending integer not null default 0;
alter table login_failures add column refused integer not null default 0;
-- What the latest attempt was told (0 allowed, 1 at the limit, 2 locked), set by
-- the same upsert that counts it, so that the answer is read atomically.
alter table login_failures add column last_attempt integer not null default 0;

-- The clean-up forgets counters whose window and lock have both ended.
create index login_failures_window_start on login_failures (window_start);
