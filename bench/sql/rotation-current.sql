-- The general refresh path (narrowed scope, retry window, SQLite's shape): the
-- client lookup, the token lookup, then a transaction of two updates and two
-- inserts (8 round trips). For comparison only. :n counts this pgbench client's rotations (-D n=0).
select id, secret_hash, grant_types, scopes, refresh_tokens, refresh_ttl_secs, max_refreshes, created_at
from clients where id = 'bench';
select rt.token_hash, rt.family_id, f.client_id, f.user_id, u.username,
       u.disabled as user_disabled, f.scope, f.refresh_count,
       f.revoked_at is not null as family_revoked,
       rt.issued_at, rt.expires_at, rt.used_at
from refresh_tokens rt
join token_families f on f.id = rt.family_id
join users u on u.id = f.user_id
where rt.token_hash = sha256(convert_to('rt-' || :client_id || '-' || :n, 'UTF8'));
begin;
update refresh_tokens set used_at = now()
where token_hash = sha256(convert_to('rt-' || :client_id || '-' || :n, 'UTF8')) and used_at is null;
update token_families f set refresh_count = refresh_count + 1
where id = md5('fam-' || :client_id)::uuid and revoked_at is null
  and (0 = 0 or refresh_count < 0)
  and exists (select 1 from users u where u.id = f.user_id and not u.disabled)
returning refresh_count;
insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
values (sha256(convert_to('rt-' || :client_id || '-' || (:n + 1), 'UTF8')),
        md5('fam-' || :client_id)::uuid, now(), now() + interval '35 minutes');
insert into access_tokens (jti, family_id, issued_at, expires_at)
values (gen_random_uuid(), md5('fam-' || :client_id)::uuid, now(), now() + interval '20 minutes');
commit;
\set n :n + 1
