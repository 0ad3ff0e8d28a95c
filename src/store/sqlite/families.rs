//! Token families and refresh tokens, on SQLite.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, id, ts, unique};
use crate::{
    crypto::token::TokenHash,
    store::{
        Consume, ConsumeOutcome, CreatedPage, FamilyOwner, FamilyRecord, FamilyStore,
        NewAccessToken, NewFamily, NewRefreshToken, RefreshTokenRecord, Retries, StoreError,
        StoreResult,
        codec::{
            ConsumeFacts, DbCount, DbTime, FAMILY_COLUMNS, FamilyRow, RefreshRow, capped,
            consume_refusal,
        },
        retry_read, retry_rolled_back,
    },
};

type Row = RefreshRow<String, i64, i64>;

/// Whether a family still holds a usable token, at `?1`.
const LIVE: &str = "(exists (select 1 from refresh_tokens rt where rt.family_id = f.id \
     and rt.used_at is null and rt.expires_at > ?1) or exists (select 1 from access_tokens a \
     where a.family_id = f.id and a.expires_at > ?1)) as live";

pub(super) type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

#[async_trait]
impl FamilyStore for SqliteStore {
    async fn create_family(&self, f: &NewFamily) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            let mut tx = self.begin_write().await?;
            insert_family(&mut tx, f).await?;
            tx.commit().await.map_err(StoreError::from_sqlx)
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<Row> = sqlx::query_as(
                r#"select rt.token_hash, rt.family_id, f.client_id, f.user_id, u.username,
                          coalesce(u.disabled, 0) as subject_disabled, f.scope, f.refresh_count,
                          f.revoked_at is not null as family_revoked,
                          f.session_id, f.offline, f.expires_at as family_expires_at, f.dpop_jkt,
                          rt.issued_at, rt.expires_at, rt.used_at,
                          s.used_at is not null as successor_used, rt.retry_answer, rt.retry_until
                   from refresh_tokens rt
                   join token_families f on f.id = rt.family_id
                   left join users u on u.id = f.user_id
                   left join refresh_tokens s on s.token_hash = rt.successor_hash
                   where rt.token_hash = ?1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn consume_refresh_token(&self, c: &Consume) -> StoreResult<ConsumeOutcome> {
        retry_rolled_back(move || async move {
            // One step in a savepoint of a `begin immediate` transaction, which holds the write lock
            // from the guarded update on, so of concurrent requests for one token
            // exactly one finds it unspent. Each write after the guarded update runs
            // only if the one before it changed its row (`changes() = 1`), so they
            // all happen or none does; the successor comes last, as with rotation
            // off there is none. The refusal's facts are read under the same lock.
            //
            // The DPoP proof (?19, RFC 9449 §11.1) goes in first, under its unique
            // key and the same guard as the update, which then runs only if the
            // proof was new: a replayed proof spends nothing. A family bound to a
            // key (?18) is refreshed only with a proof of it.
            // language=SQLite
            let query = sqlx::query_as(
                r#"savepoint one_step;
                   insert into dpop_proofs (jti_hash, jkt, htu, expires_at)
                   select ?19, ?18, ?20, ?21 from refresh_tokens rt
                   where ?19 is not null and rt.token_hash = ?1 and rt.used_at is null
                     and rt.expires_at > ?2
                     and exists (select 1 from token_families f
                                 left join users u on u.id = f.user_id
                                 where f.id = rt.family_id and f.client_id = ?3
                                   and f.revoked_at is null and not coalesce(u.disabled, 0)
                                   and (?4 = 0 or f.refresh_count < ?4)
                                   and (f.dpop_jkt is null or f.dpop_jkt = ?18))
                   on conflict do nothing;
                   update refresh_tokens
                   set used_at = case when ?5 then ?2 else used_at end,
                       successor_hash = case when ?5 then ?6 else successor_hash end,
                       retry_answer = case when ?5 then ?7 else retry_answer end,
                       retry_until = case when ?5 then ?8 else retry_until end
                   where (?19 is null or changes() = 1)
                     and token_hash = ?1 and used_at is null and expires_at > ?2
                     and exists (select 1 from token_families f
                                 left join users u on u.id = f.user_id
                                 where f.id = refresh_tokens.family_id and f.client_id = ?3
                                   and f.revoked_at is null and not coalesce(u.disabled, 0)
                                   and (?4 = 0 or f.refresh_count < ?4)
                                   and (f.dpop_jkt is null or f.dpop_jkt = ?18));
                   update token_families
                   set refresh_count = refresh_count + 1,
                       dpop_jkt = case when ?22 then coalesce(dpop_jkt, ?18) else dpop_jkt end
                   where changes() = 1
                     and id = (select family_id from refresh_tokens where token_hash = ?1)
                   returning 1 as consumed, refresh_count, 1 as found, 0 as used,
                             0 as revoked, 0 as subject_disabled, 0 as wrong_client,
                             0 as expired, 0 as wrong_key, 0 as replayed;
                   insert into access_tokens (jti, family_id, issued_at, expires_at)
                   select ?11, family_id, ?12, ?13 from refresh_tokens
                   where changes() = 1 and token_hash = ?1;
                   insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
                   select ?2, ?14, ?15, ?3, family_id, ?16, ?17 from refresh_tokens
                   where changes() = 1 and token_hash = ?1;
                   insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                   select ?6, family_id, ?9, ?10 from refresh_tokens
                   where ?5 and changes() = 1 and token_hash = ?1;
                   select 0 as consumed, 0 as refresh_count, 1 as found,
                          rt.used_at is not null as used, f.revoked_at is not null as revoked,
                          coalesce(u.disabled, 0) as subject_disabled,
                          f.client_id <> ?3 as wrong_client, rt.expires_at <= ?2 as expired,
                          (f.dpop_jkt is not null and (?18 is null or f.dpop_jkt <> ?18))
                            as wrong_key,
                          -- Nothing changed, yet the guard held: the proof was seen before.
                          (?19 is not null and rt.used_at is null and rt.expires_at > ?2
                           and f.client_id = ?3 and f.revoked_at is null
                           and not coalesce(u.disabled, 0)
                           and (?4 = 0 or f.refresh_count < ?4)
                           and (f.dpop_jkt is null or f.dpop_jkt = ?18)) as replayed
                   from refresh_tokens rt
                   join token_families f on f.id = rt.family_id
                   left join users u on u.id = f.user_id
                   where rt.token_hash = ?1;
                   release one_step;"#,
            )
            .bind(c.token.as_bytes().to_vec())
            .bind(ts(c.now))
            .bind(c.client_id.clone())
            .bind(i64::from(c.max_refreshes))
            .bind(c.successor.is_some())
            .bind(c.successor.as_ref().map(|s| s.hash.as_bytes().to_vec()))
            .bind(c.retry.as_ref().map(|a| a.ciphertext.clone()))
            .bind(c.retry.as_ref().map(|a| ts(a.until)))
            .bind(c.successor.as_ref().map(|s| ts(s.issued_at)))
            .bind(c.successor.as_ref().map(|s| ts(s.expires_at)))
            .bind(id(c.access.jti))
            .bind(ts(c.access.issued_at))
            .bind(ts(c.access.expires_at))
            .bind(c.audit.kind.as_str().to_owned())
            .bind(c.audit.username.as_deref().map(|v| capped(v).to_owned()))
            .bind(c.audit.ip.as_deref().map(|v| capped(v).to_owned()))
            .bind(c.audit.outcome.as_str().to_owned())
            .bind(c.proof.as_ref().map(|p| p.jkt.clone()))
            .bind(c.proof.as_ref().map(|p| p.jti_hash.as_bytes().to_vec()))
            .bind(c.proof.as_ref().map(|p| p.htu.clone()))
            .bind(c.proof.as_ref().map(|p| ts(p.expires_at)))
            .bind(c.bind_family);
            let rows: Vec<ConsumeStep> = self
                .write_in_one_step(query, unique("refresh_tokens_pkey"))
                .await?;
            match rows.iter().find(|row| row.consumed).or(rows.first()) {
                Some(ConsumeStep {
                    consumed: true,
                    refresh_count,
                    ..
                }) => Ok(ConsumeOutcome::Consumed {
                    refresh_count: refresh_count.into_count("refresh_count")?,
                }),
                Some(refused) => Ok(consume_refusal(refused.facts)),
                None => Ok(ConsumeOutcome::Unknown),
            }
        })
        .await
    }

    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // One transaction, so that the revocation and the erasure of the family's
            // sealed retry answers commit together: a revoked family is never
            // revived by a retry.
            let mut tx = self.begin_write().await?;
            // language=SQLite
            let done = sqlx::query(
                r#"update token_families set revoked_at = ?2 where id = ?1 and revoked_at is null"#,
            )
            .bind(id(family_id))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=SQLite
            sqlx::query(
                r#"update refresh_tokens set retry_answer = null, retry_until = null
                   where family_id = ?1 and retry_answer is not null"#,
            )
            .bind(id(family_id))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
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
             where f.user_id = ?2 \
               and (?4 is null or f.created_at < ?4 or (f.created_at = ?4 and f.id < ?5)) \
             order by f.created_at desc, f.id desc limit ?3"
        );
        let rows: Vec<FamilyRow<String, i64, i64>> = sqlx::query_as(&sql)
            .bind(ts(now))
            .bind(id(user_id))
            .bind(i64::from(page.limit))
            .bind(page.before.map(|c| ts(c.created_at)))
            .bind(page.before.map(|c| id(c.id)))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn find_family(
        &self,
        family: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FamilyRecord>> {
        let sql = format!(
            "select {FAMILY_COLUMNS}, {LIVE} from token_families f \
             left join users u on u.id = f.user_id where f.id = ?2"
        );
        let row: Option<FamilyRow<String, i64, i64>> = sqlx::query_as(&sql)
            .bind(ts(now))
            .bind(id(family))
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // language=SQLite
        let (n,): (i64,) = sqlx::query_as(
            r#"select count(*) from token_families f
               where f.revoked_at is null
                 and (exists (select 1 from refresh_tokens rt
                              where rt.family_id = f.id and rt.used_at is null
                                and rt.expires_at > ?1)
                      or exists (select 1 from access_tokens at
                                 where at.family_id = f.id and at.expires_at > ?1))"#,
        )
        .bind(ts(now))
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn revoke_families_of(
        &self,
        owner: &FamilyOwner,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let (column, value) = match owner {
            FamilyOwner::User(user_id) => ("user_id", id(*user_id)),
            FamilyOwner::Client(client_id) => ("client_id", client_id.clone()),
        };
        let (column, value) = (&column, &value);
        retry_rolled_back(move || async move {
            // One transaction, as in `revoke_family`: no retry answer outlives its
            // family's revocation.
            let mut tx = self.begin_write().await?;
            // language=SQLite
            sqlx::query(&format!(
                r#"update refresh_tokens set retry_answer = null, retry_until = null
                   where retry_answer is not null
                     and family_id in (select id from token_families
                                       where {column} = ?1 and revoked_at is null)"#
            ))
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=SQLite
            let done = sqlx::query(&format!(
                r#"update token_families set revoked_at = ?2
                   where {column} = ?1 and revoked_at is null"#
            ))
            .bind(value)
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn note_retry(&self, hash: &TokenHash, now: OffsetDateTime) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=SQLite
            sqlx::query(
                r#"update refresh_tokens set retry_count = retry_count + 1, last_retry_at = ?2
                   where token_hash = ?1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .bind(ts(now))
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
        .await
    }

    async fn family_retries(&self, family_id: Uuid) -> StoreResult<Vec<Retries>> {
        // language=SQLite
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            r#"select retry_count, last_retry_at from refresh_tokens
               where family_id = ?1 and retry_count > 0 and last_retry_at is not null
               order by last_retry_at"#,
        )
        .bind(id(family_id))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter()
            .map(|(count, at)| {
                Ok(Retries {
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    last_at: at.into_time()?,
                })
            })
            .collect()
    }
}

/// Inserts a family with its first tokens inside the caller's transaction.
pub(super) async fn insert_family(tx: &mut Tx, f: &NewFamily) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into token_families (id, client_id, user_id, scope, refresh_count,
                                       created_at, session_id, offline, expires_at, dpop_jkt)
           values (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9)"#,
    )
    .bind(id(f.family_id))
    .bind(&f.client_id)
    .bind(f.user_id.map(id))
    .bind(&f.scope)
    .bind(ts(f.created_at))
    .bind(f.session_id.map(id))
    .bind(f.offline)
    .bind(f.expires_at.map(ts))
    .bind(f.dpop_jkt.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(unique("token_families_pkey"))?;
    if let Some(rt) = &f.refresh {
        insert_refresh_token(tx, f.family_id, rt).await?;
    }
    insert_access_token(tx, f.family_id, &f.access).await
}

/// A row of the one-step consume: the family's new counter when the token was
/// consumed, else the token's state under the same write lock.
#[derive(sqlx::FromRow)]
struct ConsumeStep {
    consumed: bool,
    refresh_count: i64,
    #[sqlx(flatten)]
    facts: ConsumeFacts,
}

async fn insert_refresh_token(
    tx: &mut Tx,
    family_id: Uuid,
    rt: &NewRefreshToken,
) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
           values (?1, ?2, ?3, ?4)"#,
    )
    .bind(rt.hash.as_bytes().as_slice())
    .bind(id(family_id))
    .bind(ts(rt.issued_at))
    .bind(ts(rt.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(unique("refresh_tokens_pkey"))?;
    Ok(())
}

async fn insert_access_token(tx: &mut Tx, family_id: Uuid, at: &NewAccessToken) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into access_tokens (jti, family_id, issued_at, expires_at)
           values (?1, ?2, ?3, ?4)"#,
    )
    .bind(id(at.jti))
    .bind(id(family_id))
    .bind(ts(at.issued_at))
    .bind(ts(at.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(unique("access_tokens_pkey"))?;
    Ok(())
}
