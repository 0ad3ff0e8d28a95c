-- The admin role of the console and the admin API, and what an audit event is
-- about (the client, user, family or setting an admin changed).
alter table users add column admin boolean not null default false;
alter table audit_events add column target text;
create index audit_events_family_id on audit_events (family_id) where family_id is not null;
