//! The audit trail, on SQLite.

use async_trait::async_trait;

use time::OffsetDateTime;

use super::{SqliteStore, id, ts};
use crate::store::{
    AuditCount, AuditEntry, AuditEvent, AuditFilter, AuditKind, AuditStore, Outcome, StoreError,
    StoreResult,
    codec::{AUDIT_COLUMNS, AuditCountRow, AuditRow, capped},
    retry_rolled_back,
};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=SQLite
            sqlx::query(
                r#"insert into audit_events (at, kind, username, client_id, family_id, ip, outcome, target, actor)
                   values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#,
            )
            .bind(ts(e.at))
            .bind(e.kind.as_str())
            .bind(e.username.as_deref().map(capped))
            .bind(e.client_id.as_deref().map(capped))
            .bind(e.family_id.map(id))
            .bind(e.ip.as_deref().map(capped))
            .bind(e.outcome.as_str())
            .bind(e.target.as_deref().map(capped))
            .bind(e.actor.as_deref().map(capped))
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
        .await
    }

    async fn audit_page(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        // language=SQLite
        let sql = format!(
            r#"select {AUDIT_COLUMNS} from audit_events
               where (?1 is null or username = ?1)
                 and (?2 is null or client_id = ?2)
                 and (?3 is null or at >= ?3)
                 and (?5 is null or family_id = ?5)
                 and (?6 is null or kind = ?6)
                 and (?7 is null or outcome = ?7)
                 and (?8 is null or at < ?8 or (at = ?8 and id < ?9))
               order by at desc, id desc limit ?4"#
        );
        let rows: Vec<AuditRow<String, i64>> = sqlx::query_as(&sql)
            .bind(&f.username)
            .bind(&f.client_id)
            .bind(f.since.map(ts))
            .bind(i64::from(f.limit))
            .bind(f.family_id.map(id))
            .bind(f.kind.map(AuditKind::as_str))
            .bind(f.outcome.map(Outcome::as_str))
            .bind(f.before.map(|c| ts(c.at)))
            .bind(f.before.map(|c| c.id))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn count_audit(&self, since: OffsetDateTime) -> StoreResult<Vec<AuditCount>> {
        // language=SQLite
        let rows: Vec<AuditCountRow> = sqlx::query_as(
            r#"select kind, outcome, count(*) as count from audit_events
               where at >= ?1 group by kind, outcome"#,
        )
        .bind(ts(since))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

/// Appends `e` inside a transaction of another change, so that the change and its
/// audit event are kept or lost together. The columns are those of
/// [`AuditStore::record_audit`].
pub(super) async fn insert_audit(
    conn: &mut sqlx::SqliteConnection,
    e: &AuditEvent,
) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into audit_events (at, kind, username, client_id, family_id, ip, outcome, target, actor)
           values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#,
    )
    .bind(ts(e.at))
    .bind(e.kind.as_str())
    .bind(e.username.as_deref().map(capped))
    .bind(e.client_id.as_deref().map(capped))
    .bind(e.family_id.map(id))
    .bind(e.ip.as_deref().map(capped))
    .bind(e.outcome.as_str())
    .bind(e.target.as_deref().map(capped))
            .bind(e.actor.as_deref().map(capped))
    .execute(conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}
