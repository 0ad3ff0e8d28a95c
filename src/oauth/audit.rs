//! Audit events of the protocol: built with [`Audit`], recorded in the store and
//! logged once. Kinds and outcomes are closed sets ([`AuditKind`], [`Outcome`]).

use time::OffsetDateTime;
use uuid::Uuid;

use super::GrantContext;
use crate::store::{AuditEvent, AuditKind, Outcome, Subject};

/// Builds one audit event for the request in `ctx`.
#[derive(Debug, Clone)]
pub(crate) struct Audit(AuditEvent);

impl Audit {
    /// An event of `kind` that ended with `outcome`, at `now`, from the request's
    /// address.
    pub fn new(
        ctx: &GrantContext<'_>,
        kind: AuditKind,
        outcome: Outcome,
        now: OffsetDateTime,
    ) -> Audit {
        Audit(AuditEvent {
            at: now,
            kind,
            username: None,
            client_id: None,
            family_id: None,
            ip: ctx.client_ip.map(|ip| ip.to_string()),
            outcome,
            target: None,
            actor: None,
        })
    }

    /// The user named in the request (it may not exist).
    pub fn username(mut self, username: &str) -> Audit {
        self.0.username = Some(username.to_owned());
        self
    }

    /// The subject of the tokens: its username when it is a user.
    pub fn subject(mut self, subject: &Subject) -> Audit {
        self.0.username = subject.username().map(str::to_owned);
        self
    }

    /// The client.
    pub fn client(mut self, client_id: &str) -> Audit {
        self.0.client_id = Some(client_id.to_owned());
        self
    }

    /// The token family.
    pub fn family(mut self, family_id: Uuid) -> Audit {
        self.0.family_id = Some(family_id);
        self
    }

    /// The event, to be written with another change in one step.
    pub fn build(self) -> AuditEvent {
        self.0
    }

    /// Logs the event and records it in the store. A failure to record is logged
    /// and does not fail the request: the answer is decided already.
    pub async fn record(self, ctx: &GrantContext<'_>) {
        let e = self.0;
        let (kind, outcome) = (e.kind.as_str(), e.outcome.as_str());
        match e.kind {
            AuditKind::ReuseDetected | AuditKind::Lockout => {
                tracing::warn!(kind, outcome, username = e.username, client_id = e.client_id, family_id = ?e.family_id, ip = ?e.ip, "audit")
            }
            _ => {
                tracing::info!(kind, outcome, username = e.username, client_id = e.client_id, family_id = ?e.family_id, ip = ?e.ip, "audit")
            }
        }
        if let Err(error) = ctx.store.record_audit(&e).await {
            tracing::error!(error = %error, kind, "recording an audit event failed");
        }
    }
}
