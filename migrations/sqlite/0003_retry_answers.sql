-- Retry-safe rotation: a spent refresh token remembers its successor and, during the
-- grace period, the answer it got, sealed under a key only the token's holder can
-- derive (see src/crypto/retry.rs).
alter table refresh_tokens add column successor_hash blob;
alter table refresh_tokens add column retry_answer blob;
alter table refresh_tokens add column retry_until integer;
create index refresh_tokens_retry_until on refresh_tokens (retry_until) where retry_answer is not null;

-- Per-client grace period, instead of the server's.
alter table clients add column grace_period_secs integer;
