-- The rotor processes serving this database. Each upserts its own row every few
-- seconds (jobs/heartbeat.rs) and deletes it when it shuts down; the console's
-- overview lists the rows seen lately, with the key each instance signs with. A
-- row nobody refreshes any more (a killed process) is deleted a day later. Only
-- running servers write here, never a request. Times are unix seconds.
create table instances (
    id          text primary key,
    name        text not null,
    version     text not null,
    started_at  integer not null,
    seen_at     integer not null,
    signing_kid text
);
