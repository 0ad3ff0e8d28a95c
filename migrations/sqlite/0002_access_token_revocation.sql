-- RFC 7009: an access token can be revoked on its own, by its jti.
alter table access_tokens add column revoked_at integer;
