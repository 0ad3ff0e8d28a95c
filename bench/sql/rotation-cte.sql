-- One refresh rotation exactly as rotor runs it on PostgreSQL: the client lookup,
-- then one statement that spends, counts, inserts the successor, the access-token
-- id and the audit event (src/store/postgres.rs, rotate_in_one_step): 2 round trips.
select id, secret_hash, grant_types, scopes, refresh_tokens, refresh_ttl_secs, max_refreshes, created_at
from clients where id = 'bench';
with candidate as (
    select rt.token_hash, f.id as family_id, u.username
    from refresh_tokens rt
    join token_families f on f.id = rt.family_id
    join users u on u.id = f.user_id
    where rt.token_hash = sha256(convert_to('rt-' || :client_id || '-' || :n, 'UTF8'))
      and rt.used_at is null and rt.expires_at > now()
      and f.client_id = 'bench' and f.revoked_at is null and not u.disabled
      and (0 = 0 or f.refresh_count < 0)
    for update of rt, f
), spent as (
    update refresh_tokens rt set used_at = now(),
        successor_hash = sha256(convert_to('rt-' || :client_id || '-' || (:n + 1), 'UTF8'))
    from candidate c
    where rt.token_hash = c.token_hash and rt.used_at is null
    returning rt.family_id
), counted as (
    update token_families f set refresh_count = f.refresh_count + 1
    from spent s
    where f.id = s.family_id
    returning f.id, f.user_id, f.scope, f.refresh_count
), successor as (
    insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
    select sha256(convert_to('rt-' || :client_id || '-' || (:n + 1), 'UTF8')), id, now(),
           now() + interval '35 minutes'
    from counted
), access as (
    insert into access_tokens (jti, family_id, issued_at, expires_at)
    select gen_random_uuid(), id, now(), now() + interval '20 minutes' from counted
), audit as (
    insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
    select now(), 'refresh', c.username, 'bench', k.id, '127.0.0.1', 'success'
    from counted k join candidate c on c.family_id = k.id
)
select id as family_id, user_id, scope, refresh_count from counted;
\set n :n + 1
