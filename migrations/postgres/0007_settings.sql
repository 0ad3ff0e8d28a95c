-- Settings changed at run time (`rotor settings set`, the admin API and console):
-- each row overrides the configuration file's value of one dotted key, e.g.
-- refresh.max_refreshes, on every instance sharing this database. Values are text
-- as an operator writes them in the file ("3", "true", "20m").
create table settings (
    key        text primary key,
    value      text not null,
    updated_at timestamptz not null,
    updated_by text not null
);
