//! Prometheus metrics of one instance, in the OpenMetrics text format. Counters are
//! per instance (Prometheus sums them); the active-family gauge is read from the
//! shared store at scrape time, so every instance reports the same value.
//! No axum and no SQL here.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant_type: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

type LatencyFamily = Family<GrantLabels, Histogram, fn() -> Histogram>;

/// Every metric rotor exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    token_requests: Family<TokenLabels, Counter>,
    token_latency: LatencyFamily,
    revocations: Family<ReasonLabels, Counter>,
    active_families: Gauge,
    password_queue: Gauge,
    password_skipped: Counter,
    cleaned: Family<KindLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 2.5 ms to about 10 s: refreshes take milliseconds, password grants (argon2) tens
    // to hundreds of milliseconds, and a saturated hashing pool longer.
    Histogram::new(exponential_buckets(0.0025, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `rotor_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rotor");
        let token_requests = Family::<TokenLabels, Counter>::default();
        registry.register(
            "token_requests",
            "Token endpoint requests by grant type and outcome (success or the RFC 6749 error code; reuse_detected for a spent refresh token)",
            token_requests.clone(),
        );
        let token_latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "token_request_duration_seconds",
            "Token endpoint latency by grant type",
            token_latency.clone(),
        );
        let revocations = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "revocations",
            "Token families revoked by this instance, by reason",
            revocations.clone(),
        );
        let active_families = Gauge::default();
        registry.register(
            "active_families",
            "Token families (logins) that are neither revoked nor expired, in the shared store",
            active_families.clone(),
        );
        let password_queue = Gauge::default();
        registry.register(
            "password_hash_queue_depth",
            "Password verifications waiting for a hashing slot",
            password_queue.clone(),
        );
        let password_skipped = Counter::default();
        registry.register(
            "password_verifications_skipped",
            "Password verifications dropped unhashed because the client had gone while they waited",
            password_skipped.clone(),
        );
        let cleaned = Family::<KindLabels, Counter>::default();
        registry.register(
            "cleanup_deleted",
            "Rows deleted by the periodic clean-up, by kind",
            cleaned.clone(),
        );
        Metrics {
            registry,
            token_requests,
            token_latency,
            revocations,
            active_families,
            password_queue,
            password_skipped,
            cleaned,
        }
    }

    /// Counts one token request and its latency.
    pub fn token_request(&self, grant_type: &'static str, outcome: &'static str, took: Duration) {
        self.token_requests
            .get_or_create(&TokenLabels {
                grant_type,
                outcome,
            })
            .inc();
        self.token_latency
            .get_or_create(&GrantLabels { grant_type })
            .observe(took.as_secs_f64());
    }

    /// Counts a family revoked by this instance.
    pub fn revocation(&self, reason: &'static str) {
        self.revocations
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts rows removed by the clean-up.
    pub fn cleaned(&self, access_tokens: u64, families: u64) {
        self.cleaned
            .get_or_create(&KindLabels {
                kind: "access_token",
            })
            .inc_by(access_tokens);
        self.cleaned
            .get_or_create(&KindLabels { kind: "family" })
            .inc_by(families);
    }

    /// Sets the gauges that are read at scrape time.
    pub fn set_gauges(&self, active_families: Option<u64>, password_queue: usize) {
        if let Some(n) = active_families {
            self.active_families
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.password_queue
            .set(i64::try_from(password_queue).unwrap_or(i64::MAX));
    }

    /// Sets the count of skipped password verifications, which the hasher keeps,
    /// at scrape time. Never lowers it.
    pub fn set_skipped_verifications(&self, total: u64) {
        self.password_skipped
            .inner()
            .fetch_max(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_requests_are_counted_by_grant_type_and_outcome() {
        let m = Metrics::new();
        m.token_request("refresh_token", "reuse_detected", Duration::from_millis(3));
        m.token_request("refresh_token", "reuse_detected", Duration::from_millis(3));
        m.token_request("password", "success", Duration::from_millis(40));
        let text = m.encode();
        assert!(
            text.contains(
                r#"rotor_token_requests_total{grant_type="refresh_token",outcome="reuse_detected"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"rotor_token_request_duration_seconds_count{grant_type="password"} 1"#)
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn gauges_keep_their_last_value_when_the_store_is_unreadable() {
        let m = Metrics::new();
        m.set_gauges(Some(7), 2);
        m.set_gauges(None, 0);
        let text = m.encode();
        assert!(text.contains("rotor_active_families 7"), "{text}");
        assert!(text.contains("rotor_password_hash_queue_depth 0"), "{text}");
    }

    #[test]
    fn skipped_verifications_follow_the_hashers_count_and_never_fall() {
        let m = Metrics::new();
        m.set_skipped_verifications(3);
        m.set_skipped_verifications(1);
        let text = m.encode();
        assert!(
            text.contains("rotor_password_verifications_skipped_total 3"),
            "{text}"
        );
    }
}
