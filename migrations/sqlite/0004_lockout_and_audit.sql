-- Failed password logins, counted per username and per client address, so that a
-- lockout holds across every process sharing this database.
create table login_failures (
    key          text primary key,
    window_start integer not null,
    failures     integer not null,
    locked_until integer
);

-- Audit trail: issuance, refresh, reuse detection, revocation, lockout.
create table audit_events (
    id        integer primary key autoincrement,
    at        integer not null,
    kind      text not null,
    username  text,
    client_id text,
    family_id text,
    ip        text,
    outcome   text not null
);
create index audit_events_at on audit_events (at);
create index audit_events_username on audit_events (username, at);
create index audit_events_client_id on audit_events (client_id, at);
