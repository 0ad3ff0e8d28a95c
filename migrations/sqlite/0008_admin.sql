-- The admin role of the console and the admin API, and what an audit event is
-- about (the client, user, family or setting an admin changed). Booleans are 0/1.
alter table users add column admin integer not null default 0;
alter table audit_events add column target text;
create index audit_events_family_id on audit_events (family_id) where family_id is not null;
