//! Process metrics for Prometheus (`/metrics`, see `http`). One registry for the process: counting
//! is a cross-cutting concern that should not thread through every signature, and nothing but
//! the metrics endpoint reads it.
//!
//! Labels carry only bounded values chosen by idgate: GraphQL root field names that passed
//! validation (never client-chosen operation names), error codes, channels. No user data.

use std::sync::LazyLock;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The root field the request ran (`login`, `me`...), or `invalid` when it never ran.
    pub operation: String,
    /// `ok`, or the first error's `extensions.code`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `login`, `verifyOtp`, `socialAuth` or `requestPhoneLogin`.
    pub method: String,
    /// `success`, or the error code in lower case (`invalid_credentials`, `account_locked`...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// `email` or `sms`.
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `hit` or `miss`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// `database` or `kv`.
    pub store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric idgate keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histograms<OperationLabels>,
    pub logins: Family<LoginLabels, Counter>,
    pub codes_sent: Family<ChannelLabels, Counter>,
    pub hash_queue: Gauge,
    pub hash_wait_seconds: Histogram,
    pub token_cache: Family<ResultLabels, Counter>,
    pub store_errors: Family<StoreLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("idgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("graphql_requests", "GraphQL requests by root field and outcome", requests.clone());
        let request_seconds: Histograms<OperationLabels> = Family::new_with_constructor(seconds);
        registry.register("graphql_request_duration_seconds", "GraphQL request latency", request_seconds.clone());
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("logins", "Sign-in attempts by method and outcome", logins.clone());
        let codes_sent = Family::<ChannelLabels, Counter>::default();
        registry.register("codes_sent", "One-time codes sent, by channel", codes_sent.clone());
        let hash_queue = Gauge::default();
        registry.register("hash_pool_queue_depth", "Password hashes waiting for a thread", hash_queue.clone());
        let hash_wait_seconds = seconds();
        registry.register(
            "hash_pool_wait_seconds",
            "Time a password hash waited for a thread",
            hash_wait_seconds.clone(),
        );
        let token_cache = Family::<ResultLabels, Counter>::default();
        registry.register("token_cache_lookups", "Access-token verifications by cache result", token_cache.clone());
        let store_errors = Family::<StoreLabels, Counter>::default();
        registry.register("store_errors", "Failed database and KV operations seen by requests", store_errors.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        registry.register("build_info", "The running idgate version", build);
        Self {
            registry,
            requests,
            request_seconds,
            logins,
            codes_sent,
            hash_queue,
            hash_wait_seconds,
            token_cache,
            store_errors,
        }
    }

    /// Counts a one-time code sent over `channel`.
    pub fn code_sent(&self, channel: &str) {
        self.codes_sent.get_or_create(&ChannelLabels { channel: channel.to_owned() }).inc();
    }

    /// Counts a token verification answered from the cache or not.
    pub fn token_cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.token_cache.get_or_create(&ResultLabels { result: result.to_owned() }).inc();
    }

    /// Counts a failure of the database or the KV that reached a request.
    pub fn store_error(&self, store: &str) {
        self.store_errors.get_or_create(&StoreLabels { store: store.to_owned() }).inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::warn!("could not encode the metrics");
        }
        text
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}
