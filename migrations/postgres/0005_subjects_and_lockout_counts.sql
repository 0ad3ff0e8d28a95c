-- A family's subject is a user (the password grant) or, when user_id is null, the
-- client itself (client_credentials, RFC 6749 §4.4): no placeholder users.
alter table token_families alter column user_id drop not null;

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
