//! What operators can watch at GET /metrics (Prometheus text format): requests by route
//! pattern and status, their latency, sign-ins by outcome, paywall decisions by reason,
//! meter charges, gift reads, article cache hits and misses, Stripe events, database
//! connections and the waits for them.
//! Route patterns only: never a slug, an id or a token in a label.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::paywall::{Decision, Reason};

/// One connection pool's use, for /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub name: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds. Reads are served in 50 to 500 microseconds
/// (measured inside the server), sign-ins in tens of milliseconds (Argon2), so the
/// buckets are fine below a millisecond and coarser above.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every family's name and help text, given to the recorder once so each scrape
/// carries `# HELP` (and `promtool check metrics` passes).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "paywall_http_requests_total",
        "HTTP requests answered, by method (unknown methods are `other`), route pattern and status"
    );
    describe_histogram!(
        "paywall_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its answer, by method and route pattern"
    );
    describe_counter!(
        "paywall_decisions_total",
        "Article reads by paywall decision: full text, or the teaser's reason"
    );
    describe_counter!(
        "paywall_article_cache_total",
        "Article lookups served from this instance's cache (hit) or read from the database (miss)"
    );
    describe_counter!(
        "paywall_meter_charges_total",
        "Metered reads that counted a new article against a meter"
    );
    describe_histogram!(
        "paywall_meter_batch_duration_seconds",
        Unit::Seconds,
        "Time one batch of meter charges took to be decided and committed (every charged \
         read in it waits for its end); the count is the number of batches"
    );
    describe_counter!(
        "paywall_gift_reads_total",
        "Reads opened in full by a gift link for a reader who could not read them otherwise"
    );
    describe_counter!("paywall_logins_total", "Sign-in attempts by outcome");
    describe_counter!(
        "paywall_seat_events_total",
        "Reading seats: free seats claimed by a read, leases refreshed (written again), \
         reads refused because every seat is held elsewhere, and seats taken over by \
         \"continue reading here\""
    );
    describe_counter!(
        "paywall_stripe_events_total",
        "Stripe webhook deliveries by event type (types Paywall does not act on are `other`) \
         and outcome: applied, pending (kept for a customer not linked yet), stale, \
         duplicate, ignored, or invalid_signature"
    );
    describe_counter!(
        "paywall_webhook_deliveries_total",
        "Outbound webhook delivery attempts by outcome: delivered (a 2xx answer), failed \
         (retried later), gave_up (failed for the whole retry window), or refused (the \
         endpoint's address is private or loopback)"
    );
    describe_histogram!(
        "paywall_webhook_attempt_duration_seconds",
        Unit::Seconds,
        "Time an outbound webhook attempt took, answered or not"
    );
    describe_gauge!(
        "paywall_webhook_pending",
        "Outbound webhook deliveries waiting to be sent (or retried), all instances together"
    );
    describe_gauge!(
        "paywall_db_connections",
        "Database connections of each pool: in use, idle, and the most allowed"
    );
    describe_histogram!(
        "paywall_db_pool_wait_seconds",
        Unit::Seconds,
        "Time a request waited for a database connection of each pool (for a write \
         transaction, its connection and BEGIN together)"
    );
    describe_gauge!(
        "paywall_password_hash_memory_bytes",
        Unit::Bytes,
        "Argon2 memory the hashing threads hold now, lent by the caches"
    );
    describe_gauge!(
        "paywall_cache_budget_bytes",
        Unit::Bytes,
        "What the article, page and list caches may hold now: PAYWALL_CACHE_MIB less \
         what password hashing holds"
    );
    describe_gauge!(
        "paywall_build_info",
        "Always 1: the running build's version"
    );
}

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
            describe();
            process_collector().describe();
            metrics::gauge!("paywall_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
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

/// An outbound webhook attempt: `delivered`, `failed`, `gave_up` or `refused`.
pub fn webhook_attempt(outcome: &'static str, seconds: f64) {
    metrics::counter!("paywall_webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("paywall_webhook_attempt_duration_seconds").record(seconds);
}

/// Deliveries waiting, as last counted.
pub fn webhooks_pending(count: i64) {
    metrics::gauge!("paywall_webhook_pending").set(count as f64);
}

/// One batch of meter charges written (or failed) in `took`.
pub fn meter_batch(took: std::time::Duration) {
    metrics::histogram!("paywall_meter_batch_duration_seconds").record(took.as_secs_f64());
}

/// A wait for a connection of `pool` (`read`, `write`, or `shared`).
pub fn pool_wait(pool: &'static str, waited: std::time::Duration) {
    metrics::histogram!("paywall_db_pool_wait_seconds", "pool" => pool)
        .record(waited.as_secs_f64());
}

/// A Stripe webhook delivery: its event type if Paywall acts on it (else `other`; one
/// refused before its type was read is `unknown`), and what became of it.
pub fn stripe_event(kind: Option<&str>, outcome: &'static str) {
    let kind = match kind {
        None => "unknown",
        Some(kind) => crate::paywall::billing::HANDLED
            .iter()
            .find(|handled| **handled == kind)
            .copied()
            .unwrap_or("other"),
    };
    metrics::counter!("paywall_stripe_events_total", "type" => kind, "outcome" => outcome)
        .increment(1);
}

/// A request's method as a label, from a closed set: any other method a client makes up
/// is `other`, so no request can add a series that is never freed.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// (method label, route pattern or `unmatched`, status): each from a closed set.
type RequestKey = (&'static str, String, u16);

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
            .entry((method_label(method), route, status))
            .or_insert_with_key(|(method, route, status)| {
                let labels = [
                    ("method", (*method).to_string()),
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

/// The counters of fixed names and labels that requests add to.
#[derive(Clone, Copy)]
enum Counted {
    Decision(Decision),
    ArticleCacheHit,
    ArticleCacheMiss,
    MeterCharge,
    GiftRead,
    Login(Login),
    Seat(Seat),
}

/// What happened to a reading seat (see `app::seats`).
#[derive(Clone, Copy)]
pub enum Seat {
    /// A read took a free seat.
    Claimed,
    /// A reading session's lease was written again.
    Refreshed,
    /// A read was refused: every seat held by other sessions (`reading_elsewhere`).
    Refused,
    /// "Continue reading here" took a seat from another session.
    TakenOver,
}

/// How a sign-in ended.
#[derive(Clone, Copy)]
pub enum Login {
    Success,
    InvalidCredentials,
    Suspended,
    Throttled,
}

const COUNTED: usize = 18;

impl Counted {
    /// The counter's place among `COUNTED`, its name, and its one label, if any.
    fn key(self) -> (usize, &'static str, Option<(&'static str, &'static str)>) {
        const DECISIONS: &str = "paywall_decisions_total";
        const CACHE: &str = "paywall_article_cache_total";
        const LOGINS: &str = "paywall_logins_total";
        match self {
            Counted::Decision(Decision::Full) => (0, DECISIONS, Some(("reason", "full"))),
            Counted::Decision(Decision::Teaser(reason)) => {
                let (i, value) = match reason {
                    Reason::LoginRequired => (1, "login_required"),
                    Reason::SubscriptionRequired => (2, "subscription_required"),
                    Reason::SubscriptionExpired => (3, "subscription_expired"),
                    Reason::MeterExhausted => (4, "meter_exhausted"),
                    Reason::ReadingElsewhere => (13, "reading_elsewhere"),
                };
                (i, DECISIONS, Some(("reason", value)))
            }
            Counted::ArticleCacheHit => (5, CACHE, Some(("result", "hit"))),
            Counted::ArticleCacheMiss => (6, CACHE, Some(("result", "miss"))),
            Counted::MeterCharge => (7, "paywall_meter_charges_total", None),
            Counted::GiftRead => (8, "paywall_gift_reads_total", None),
            Counted::Login(outcome) => {
                let (i, value) = match outcome {
                    Login::Success => (9, "success"),
                    Login::InvalidCredentials => (10, "invalid_credentials"),
                    Login::Suspended => (11, "suspended"),
                    Login::Throttled => (12, "throttled"),
                };
                (i, LOGINS, Some(("outcome", value)))
            }
            Counted::Seat(event) => {
                let (i, value) = match event {
                    Seat::Claimed => (14, "claimed"),
                    Seat::Refreshed => (15, "refreshed"),
                    Seat::Refused => (16, "refused"),
                    Seat::TakenOver => (17, "taken_over"),
                };
                (i, "paywall_seat_events_total", Some(("event", value)))
            }
        }
    }
}

thread_local! {
    /// The handles of `Counted`, registered once per thread: `counter!` builds, hashes
    /// and looks up its key (allocating its labels) on every call, about a thousand
    /// instructions, and an article read adds to two counters.
    static COUNTERS: [std::cell::OnceCell<metrics::Counter>; COUNTED] = Default::default();
}

fn count(counted: Counted) {
    let (index, name, label) = counted.key();
    COUNTERS.with(|counters| {
        counters[index]
            .get_or_init(|| match label {
                Some((label, value)) => metrics::counter!(name, label => value),
                None => metrics::counter!(name),
            })
            .increment(1);
    });
}

pub fn decision(decision: Decision) {
    count(Counted::Decision(decision));
}

/// An article served from the per-instance cache (`hit`), or read from the database.
pub fn article_cache(hit: bool) {
    count(if hit {
        Counted::ArticleCacheHit
    } else {
        Counted::ArticleCacheMiss
    });
}

pub fn meter_charge() {
    count(Counted::MeterCharge);
}

pub fn gift_read() {
    count(Counted::GiftRead);
}

pub fn login(outcome: Login) {
    count(Counted::Login(outcome));
}

pub fn seat(event: Seat) {
    count(Counted::Seat(event));
}

/// The process's own figures (CPU seconds, resident memory, open files, threads, start
/// time), in Prometheus's standard `process_*` names.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Brings the gauges read at scrape time up to date: the pools and the process.
pub fn before_scrape(pools: &[PoolUse]) {
    for pool in pools {
        for (state, value) in [
            ("in_use", pool.in_use),
            ("idle", pool.idle),
            ("max", pool.max),
        ] {
            metrics::gauge!("paywall_db_connections", "pool" => pool.name, "state" => state)
                .set(f64::from(value));
        }
    }
    process_collector().collect();
}

/// The memory gauges read at scrape time: what hashing holds, and what the caches may.
pub fn memory(hashing: usize, caches: usize) {
    metrics::gauge!("paywall_password_hash_memory_bytes").set(hashing as f64);
    metrics::gauge!("paywall_cache_budget_bytes").set(caches as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counted_counter_has_a_place_of_its_own() {
        let mut all = vec![
            Counted::Decision(Decision::Full),
            Counted::ArticleCacheHit,
            Counted::ArticleCacheMiss,
            Counted::MeterCharge,
            Counted::GiftRead,
        ];
        all.extend(Reason::ALL.map(|r| Counted::Decision(Decision::Teaser(r))));
        all.extend(
            [
                Seat::Claimed,
                Seat::Refreshed,
                Seat::Refused,
                Seat::TakenOver,
            ]
            .map(Counted::Seat),
        );
        all.extend(
            [
                Login::Success,
                Login::InvalidCredentials,
                Login::Suspended,
                Login::Throttled,
            ]
            .map(Counted::Login),
        );
        let keys: Vec<_> = all.iter().map(|c| c.key()).collect();
        let places: std::collections::HashSet<usize> = keys.iter().map(|k| k.0).collect();
        let names: std::collections::HashSet<_> = keys.iter().map(|k| (k.1, k.2)).collect();
        assert_eq!(places.len(), COUNTED);
        assert!(places.iter().all(|&p| p < COUNTED));
        assert_eq!(names.len(), COUNTED);
    }

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
