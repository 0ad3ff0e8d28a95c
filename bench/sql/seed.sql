-- Rows for the pgbench rotation scripts: one client, one user and one login
-- (token family) with its first refresh token per pgbench client. Token n of
-- client c is SHA-256('rt-c-n'), as rotor stores SHA-256 of the token.
truncate access_tokens, refresh_tokens, token_families, users, clients cascade;
insert into clients (id, secret_hash, grant_types, scopes, refresh_tokens, created_at)
values ('bench', sha256('bench-secret'), 'password refresh_token', 'read', true, now());
insert into users (id, username, password_hash, disabled, created_at)
select md5('user-' || c)::uuid, 'user-' || c, '$argon2id$unused', false, now()
from generate_series(0, :families - 1) c;
insert into token_families (id, client_id, user_id, scope, refresh_count, created_at)
select md5('fam-' || c)::uuid, 'bench', md5('user-' || c)::uuid, 'read', 0, now()
from generate_series(0, :families - 1) c;
insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
select sha256(convert_to('rt-' || c || '-0', 'UTF8')), md5('fam-' || c)::uuid, now(), now() + interval '35 minutes'
from generate_series(0, :families - 1) c;
vacuum analyze;
