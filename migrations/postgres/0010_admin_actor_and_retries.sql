-- Who made an admin change ("cli", "user NAME" or "client ID"), so that changes
-- made with the command line are named as such; and the retries a spent refresh
-- token answered inside its retry window, counted on the token's row (one row a
-- token, however many retries: the trail cannot be flooded).
alter table audit_events add column actor text;
alter table refresh_tokens add column retry_count integer not null default 0;
alter table refresh_tokens add column last_retry_at timestamptz;
create index audit_events_kind on audit_events (kind, at);
