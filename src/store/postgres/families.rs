//! Token families and refresh tokens, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, unique};
use crate::{
    crypto::token::TokenHash,
    store::{
        Consume, ConsumeOutcome, CreatedPage, FamilyOwner, FamilyRecord, FamilyStore, NewFamily,
        RefreshTokenRecord, Retries, StoreError, StoreResult,
        codec::{
            ConsumeFacts, DbCount, FAMILY_COLUMNS, FamilyRow, RefreshRow, capped, consume_refusal,
        },
        retry_read, retry_rolled_back,
    },
};

type Row = RefreshRow<Uuid, OffsetDateTime, i32>;

/// Whether a family still holds a usable token, at `$1`.
const LIVE: &str = "(exists (select 1 from refresh_tokens rt where rt.family_id = f.id \
     and rt.used_at is null and rt.expires_at > $1) or exists (select 1 from access_tokens a \
     where a.family_id = f.id and a.expires_at > $1)) as live";

#[async_trait]
impl FamilyStore for PgStore {
    async fn create_family(&self, f: &NewFamily) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // One statement: the family and its first tokens commit together. The
            // tokens' foreign keys are checked at the end of the statement, when
            // the family row exists.
            // language=PostgreSQL
            sqlx::query(
                r#"with family as (
                       insert into token_families (id, client_id, user_id, scope, refresh_count,
                                                   created_at, session_id, offline, expires_at,
                                                   dpop_jkt)
                       values ($1, $2, $3, $4, 0, $5, $12, $13, $14, $15)
                       returning id
                   ), refresh as (
                       insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                       select $6, id, $7, $8 from family where $6::bytea is not null
                   )
                   insert into access_tokens (jti, family_id, issued_at, expires_at)
                   select $9, id, $10, $11 from family"#,
            )
            .bind(f.family_id)
            .bind(&f.client_id)
            .bind(f.user_id)
            .bind(&f.scope)
            .bind(f.created_at)
            .bind(f.refresh.as_ref().map(|r| r.hash.as_bytes().to_vec()))
            .bind(f.refresh.as_ref().map(|r| r.issued_at))
            .bind(f.refresh.as_ref().map(|r| r.expires_at))
            .bind(f.access.jti)
            .bind(f.access.issued_at)
            .bind(f.access.expires_at)
            .bind(f.session_id)
            .bind(f.offline)
            .bind(f.expires_at)
            .bind(f.dpop_jkt.as_deref())
            .execute(&self.pool)
            .await
            .map_err(unique("token_families_pkey"))?;
            Ok(())
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<Row> = sqlx::query_as(
                r#"select rt.token_hash, rt.family_id, f.client_id, f.user_id, u.username,
                          coalesce(u.disabled, false) as subject_disabled, f.scope, f.refresh_count,
                          f.revoked_at is not null as family_revoked,
                          f.session_id, f.offline, f.expires_at as family_expires_at, f.dpop_jkt,
                          rt.issued_at, rt.expires_at, rt.used_at,
                          s.used_at is not null as successor_used, rt.retry_answer, rt.retry_until
                   from refresh_tokens rt
                   join token_families f on f.id = rt.family_id
                   left join users u on u.id = f.user_id
                   left join refresh_tokens s on s.token_hash = rt.successor_hash
                   where rt.token_hash = $1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn consume_refresh_token(&self, c: &Consume) -> StoreResult<ConsumeOutcome> {
        retry_rolled_back(move || async move {
            // One statement. `for update` locks the token and its family: of
            // concurrent requests for one token the later ones wait, then see the
            // committed `used_at` and change nothing. The DPoP proof is inserted
            // under its unique key only when everything else allows the refresh,
            // and the refresh goes on only if that insert added the row: a
            // replayed proof (also one seen by another instance) changes nothing,
            // and the replay check costs no round trip of its own. The final select
            // reports the state the guard saw, so that a refusal says why.
            // language=PostgreSQL
            let row: (Option<i32>, bool, bool, bool, bool, bool, bool, bool, bool) =
                sqlx::query_as(
                    r#"with target as (
                       select rt.token_hash, rt.family_id, rt.used_at, rt.expires_at, f.client_id,
                              f.revoked_at, f.refresh_count, f.dpop_jkt,
                              coalesce(u.disabled, false) as disabled
                       from refresh_tokens rt
                       join token_families f on f.id = rt.family_id
                       left join users u on u.id = f.user_id
                       where rt.token_hash = $1
                       for update of rt, f
                   ), eligible as (
                       select token_hash, family_id from target
                       where used_at is null and expires_at > $2 and client_id = $3
                         and revoked_at is null and not disabled
                         and ($4 = 0 or refresh_count < $4)
                         and (dpop_jkt is null or dpop_jkt = $17)
                   ), proof as (
                       insert into dpop_proofs (jti_hash, jkt, htu, expires_at)
                       select $16, $17, $18, $19 from eligible where $16::bytea is not null
                       on conflict do nothing
                       returning 1
                   ), allowed as (
                       select token_hash, family_id from eligible
                       where $16::bytea is null or exists (select 1 from proof)
                   ), spent as (
                       update refresh_tokens rt
                       set used_at = $2, successor_hash = $5, retry_answer = $9, retry_until = $10
                       from allowed a
                       where rt.token_hash = a.token_hash and $5::bytea is not null
                   ), counted as (
                       update token_families f
                       set refresh_count = f.refresh_count + 1,
                           dpop_jkt = case when $20 then coalesce(f.dpop_jkt, $17) else f.dpop_jkt end
                       from allowed a
                       where f.id = a.family_id
                       returning f.refresh_count
                   ), successor as (
                       insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                       select $5, family_id, $2, $6 from allowed where $5::bytea is not null
                   ), access as (
                       insert into access_tokens (jti, family_id, issued_at, expires_at)
                       select $7, family_id, $15, $8 from allowed
                   ), audit as (
                       insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
                       select $2, $11, $12, $3, family_id, $13, $14 from allowed
                   )
                   select (select refresh_count from counted),
                          t.token_hash is not null,
                          coalesce(t.used_at is not null, false),
                          coalesce(t.revoked_at is not null, false),
                          coalesce(t.disabled, false),
                          coalesce(t.client_id <> $3, false),
                          coalesce(t.expires_at <= $2, false),
                          coalesce(t.dpop_jkt is not null and t.dpop_jkt is distinct from $17, false),
                          $16::bytea is not null and exists (select 1 from eligible)
                            and not exists (select 1 from proof)
                   from (select 1) as one left join target t on true"#,
                )
                .bind(c.token.as_bytes().as_slice())
                .bind(c.now)
                .bind(&c.client_id)
                .bind(i64::from(c.max_refreshes))
                .bind(c.successor.as_ref().map(|s| s.hash.as_bytes().to_vec()))
                .bind(c.successor.as_ref().map(|s| s.expires_at))
                .bind(c.access.jti)
                .bind(c.access.expires_at)
                .bind(c.retry.as_ref().map(|a| a.ciphertext.clone()))
                .bind(c.retry.as_ref().map(|a| a.until))
                .bind(c.audit.kind.as_str())
                .bind(c.audit.username.as_deref().map(capped))
                .bind(c.audit.ip.as_deref().map(capped))
                .bind(c.audit.outcome.as_str())
                .bind(c.access.issued_at)
                .bind(c.proof.as_ref().map(|p| p.jti_hash.as_bytes().to_vec()))
                .bind(c.proof.as_ref().map(|p| p.jkt.as_str()))
                .bind(c.proof.as_ref().map(|p| p.htu.as_str()))
                .bind(c.proof.as_ref().map(|p| p.expires_at))
                .bind(c.bind_family)
                .fetch_one(&self.pool)
                .await
                .map_err(unique("refresh_tokens_pkey"))?;
            let (counted, found, used, revoked, subject_disabled, wrong_client, expired, wrong_key, replayed) =
                row;
            if let Some(refresh_count) = counted {
                return Ok(ConsumeOutcome::Consumed {
                    refresh_count: refresh_count.into_count("refresh_count")?,
                });
            }
            Ok(consume_refusal(ConsumeFacts {
                found,
                used,
                revoked,
                subject_disabled,
                wrong_client,
                expired,
                wrong_key,
                replayed,
            }))
        })
        .await
    }

    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // One statement, so that the revocation and the erasure of the family's
            // sealed retry answers commit together: a revoked family is never
            // revived by a retry.
            // language=PostgreSQL
            let (revoked,): (bool,) = sqlx::query_as(
                r#"with revoked as (
                       update token_families set revoked_at = $2
                       where id = $1 and revoked_at is null
                       returning id
                   ), erased as (
                       update refresh_tokens set retry_answer = null, retry_until = null
                       where family_id = $1 and retry_answer is not null
                   )
                   select exists (select 1 from revoked)"#,
            )
            .bind(family_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(revoked)
        })
        .await
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        page: &CreatedPage,
    ) -> StoreResult<Vec<FamilyRecord>> {
        let sql = format!(
            "select {FAMILY_COLUMNS}, {LIVE} from token_families f \
             left join users u on u.id = f.user_id \
             where f.user_id = $2 \
               and ($4::timestamptz is null or (f.created_at, f.id) < ($4, $5::uuid)) \
             order by f.created_at desc, f.id desc limit $3"
        );
        let rows: Vec<FamilyRow<Uuid, OffsetDateTime, i32>> = sqlx::query_as(&sql)
            .bind(now)
            .bind(user_id)
            .bind(i64::from(page.limit))
            .bind(page.before.map(|c| c.created_at))
            .bind(page.before.map(|c| c.id))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn find_family(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FamilyRecord>> {
        let sql = format!(
            "select {FAMILY_COLUMNS}, {LIVE} from token_families f \
             left join users u on u.id = f.user_id where f.id = $2"
        );
        let row: Option<FamilyRow<Uuid, OffsetDateTime, i32>> = sqlx::query_as(&sql)
            .bind(now)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // language=PostgreSQL
        let (n,): (i64,) = sqlx::query_as(
            r#"select count(*) from token_families f
               where f.revoked_at is null
                 and (exists (select 1 from refresh_tokens rt
                              where rt.family_id = f.id and rt.used_at is null
                                and rt.expires_at > $1)
                      or exists (select 1 from access_tokens at
                                 where at.family_id = f.id and at.expires_at > $1))"#,
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn revoke_families_of(
        &self,
        owner: &FamilyOwner,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        retry_rolled_back(move || async move {
            // One statement, as in `revoke_family`: no retry answer outlives its
            // family's revocation.
            let (user_id, client_id) = match owner {
                FamilyOwner::User(user_id) => (Some(*user_id), None),
                FamilyOwner::Client(client_id) => (None, Some(client_id.as_str())),
            };
            // language=PostgreSQL
            let (n,): (i64,) = sqlx::query_as(
                r#"with revoked as (
                       update token_families set revoked_at = $3
                       where revoked_at is null
                         and (user_id = $1::uuid or client_id = $2::text)
                       returning id
                   ), erased as (
                       update refresh_tokens set retry_answer = null, retry_until = null
                       where retry_answer is not null
                         and family_id in (select id from revoked)
                   )
                   select count(*) from revoked"#,
            )
            .bind(user_id)
            .bind(client_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn note_retry(&self, hash: &TokenHash, now: OffsetDateTime) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=PostgreSQL
            sqlx::query(
                r#"update refresh_tokens set retry_count = retry_count + 1, last_retry_at = $2
                   where token_hash = $1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
        .await
    }

    async fn family_retries(&self, family_id: Uuid) -> StoreResult<Vec<Retries>> {
        // language=PostgreSQL
        let rows: Vec<(i32, OffsetDateTime)> = sqlx::query_as(
            r#"select retry_count, last_retry_at from refresh_tokens
               where family_id = $1 and retry_count > 0 and last_retry_at is not null
               order by last_retry_at"#,
        )
        .bind(family_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(count, last_at)| Retries {
                count: u32::try_from(count).unwrap_or(0),
                last_at,
            })
            .collect())
    }
}
