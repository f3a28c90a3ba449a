//! What operators can watch at GET /metrics (Prometheus text format): requests by route
//! pattern and status, their latency, sign-ins by outcome, paywall decisions by reason,
//! meter charges, gift reads and database connections. Route patterns only: never a
//! slug, an id or a token in a label.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::paywall::{Decision, Reason};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds: the reads live around a millisecond.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the process's recorder once; later calls share it. The recorder queues every
/// histogram sample until an upkeep folds the queue into the buckets, and nothing runs
/// one but a scrape: without this thread, memory grew by about 1 MiB a second under
/// load until /metrics was read (bench/RESULTS.md).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(error) = started {
                tracing::warn!(%error, "the metrics upkeep thread could not start; histograms are folded only when /metrics is read");
            }
            Some(handle)
        })
        .as_ref()
}

type RequestKey = (actix_web::http::Method, String, u16);

thread_local! {
    /// Registered handles per worker thread: the registry's label hashing and lookup
    /// happen once per (method, route, status), not on every request.
    static REQUEST_HANDLES: std::cell::RefCell<
        std::collections::HashMap<RequestKey, (metrics::Counter, metrics::Histogram)>,
    > = Default::default();
}

pub fn request(method: &actix_web::http::Method, route: String, status: u16, seconds: f64) {
    REQUEST_HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let (counter, histogram) = handles
            .entry((method.clone(), route, status))
            .or_insert_with_key(|(method, route, status)| {
                let labels = [
                    ("method", method.as_str().to_string()),
                    ("route", route.clone()),
                    ("status", status.to_string()),
                ];
                (
                    metrics::counter!("paywall_http_requests_total", &labels),
                    metrics::histogram!("paywall_http_request_duration_seconds", &labels[..2]),
                )
            });
        counter.increment(1);
        histogram.record(seconds);
    });
}

pub fn decision(decision: Decision) {
    let reason = match decision {
        Decision::Full => "full",
        Decision::Teaser(Reason::LoginRequired) => "login_required",
        Decision::Teaser(Reason::SubscriptionRequired) => "subscription_required",
        Decision::Teaser(Reason::SubscriptionExpired) => "subscription_expired",
        Decision::Teaser(Reason::MeterExhausted) => "meter_exhausted",
    };
    metrics::counter!("paywall_decisions_total", "reason" => reason).increment(1);
}

pub fn meter_charge() {
    metrics::counter!("paywall_meter_charges_total").increment(1);
}

pub fn gift_read() {
    metrics::counter!("paywall_gift_reads_total").increment(1);
}

/// `success`, `invalid_credentials`, `suspended` or `throttled`.
pub fn login(outcome: &'static str) {
    metrics::counter!("paywall_logins_total", "outcome" => outcome).increment(1);
}

pub fn connections(pool: &'static str, open: u32, idle: usize) {
    metrics::gauge!("paywall_db_connections", "pool" => pool, "state" => "open")
        .set(f64::from(open));
    metrics::gauge!("paywall_db_connections", "pool" => pool, "state" => "idle").set(idle as f64);
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_recorder_comes_with_a_thread_that_folds_histogram_samples() {
        assert!(super::handle().is_some());
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_string())
                .collect()
        };
        // A new thread names itself once it runs: give it a moment.
        let started = std::time::Instant::now();
        while !names().iter().any(|n| n == "metrics-upkeep") {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{:?}",
                names()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
