//! Outbound webhooks: managing endpoints, and delivering the outbox to them.
//!
//! Deliveries follow the Standard Webhooks specification: `webhook-id` (the message id,
//! the same on every retry, so receivers can drop duplicates), `webhook-timestamp` (the
//! attempt's time, Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` under the endpoint's `whsec_` secret. The body is
//! `{"type", "timestamp", "data"}`, the same bytes on every attempt.
//!
//! Each instance runs one dispatcher on the main runtime, apart from the HTTP workers, so
//! a slow or dead receiver costs article reads nothing. It sends the head of each
//! (endpoint, subject) chain only: a later event about the same account or article waits
//! until the earlier one is delivered or given up, on every instance (a delivery is
//! claimed in the database before it is sent). A failed attempt is retried with
//! exponential backoff and jitter until the retry window (24 hours) has passed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::Mac;
use rand::{Rng, RngCore};

use crate::config::Settings;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::{
    now_ts, Attempt, AuditEntry, DueDelivery, Store, WebhookChanges, WebhookRow, EVENT_TYPES,
};

const MAX_URL: usize = 2_048;
const MAX_DESCRIPTION: usize = 500;

/// A new endpoint secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks
/// libraries take it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The `webhook-signature` value of one attempt: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the secret's bytes. None for a secret not in `whsec_` form.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The longest wait between two attempts.
const MAX_DELAY_SECS: f64 = 3_600.0;

/// Seconds to wait after the `attempts`-th failed attempt: 1, 2, 4 ... doubling up to an
/// hour, each scaled by a jitter in [0.75, 1.25) (`jitter` in [0, 1)) so that endpoints
/// coming back are not met by every instance's retries at once.
pub fn retry_delay(attempts: i64, jitter: f64) -> i64 {
    let exponent = attempts.clamp(1, 32) - 1;
    let base = 2f64.powi(exponent as i32).min(MAX_DELAY_SECS);
    ((base * (0.75 + 0.5 * jitter.clamp(0.0, 1.0))).round() as i64).max(1)
}

/// When to try again after the `attempts`-th failure at `now`, for an event of
/// `created_at`: None once that would pass the retry window.
pub fn next_attempt(
    now: i64,
    created_at: i64,
    attempts: i64,
    retry_secs: i64,
    jitter: f64,
) -> Option<i64> {
    let at = now + retry_delay(attempts, jitter);
    (at <= created_at + retry_secs).then_some(at)
}

/// Addresses a webhook must not reach unless PAYWALL_WEBHOOK_ALLOW_PRIVATE is true: the
/// host itself, private and shared networks, link-local (cloud metadata services
/// answer at 169.254.169.254), multicast and unspecified ones, and IPv6 forms that
/// embed such an IPv4 address.
pub fn private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking networks
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_address(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return private_address(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || segments[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        }
    }
}

/// An endpoint's URL, checked for its form: absolute http or https, with a host, no
/// credentials in it, no fragment, at most 2,048 characters.
pub fn parse_url(text: &str) -> Result<url::Url, &'static str> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL {
        return Err("must be an http or https URL of at most 2048 characters");
    }
    let url = url::Url::parse(text).map_err(|_| "must be an absolute http or https URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry a user name or password; the signature authenticates deliveries",
        );
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment (#...)");
    }
    Ok(url)
}

/// Why an endpoint may not be reached, if it may not: its host resolves to a private
/// or loopback address (and PAYWALL_WEBHOOK_ALLOW_PRIVATE is not true), or does not
/// resolve at all.
pub async fn refused_destination(url: &url::Url, allow_private: bool) -> Option<String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => match tokio::net::lookup_host((name, port)).await {
            Ok(found) => found.collect(),
            Err(_) => return Some(format!("its host {name} does not resolve")),
        },
        None => return Some("must name a host".into()),
    };
    if addresses.is_empty() {
        return Some("its host does not resolve".into());
    }
    if allow_private {
        return None;
    }
    addresses
        .iter()
        .find(|address| private_address(address.ip()))
        .map(|address| {
            format!(
                "resolves to a private or loopback address ({}); set PAYWALL_WEBHOOK_ALLOW_PRIVATE=true \
                 to deliver to receivers on this host or network",
                address.ip()
            )
        })
}

/// Events as stored: known names, space-separated, in the contract's order, each once.
pub fn parse_events(given: &[String]) -> Result<String, String> {
    if given.is_empty() {
        return Err(format!(
            "must name at least one event: {}",
            EVENT_TYPES.join(", ")
        ));
    }
    if let Some(unknown) = given
        .iter()
        .find(|event| !EVENT_TYPES.contains(&event.as_str()))
    {
        return Err(format!(
            "{unknown:?} is not an event; events are {}",
            EVENT_TYPES.join(", ")
        ));
    }
    Ok(EVENT_TYPES
        .iter()
        .filter(|known| given.iter().any(|g| g == *known))
        .copied()
        .collect::<Vec<_>>()
        .join(" "))
}

/// An endpoint to create or change, as the admin gave it.
pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Checks an endpoint's fields, every problem at once, the URL's destination included.
async fn check(
    input: EndpointInput,
    allow_private: bool,
    creating: bool,
) -> ApiResult<WebhookChanges> {
    let mut errors = Vec::new();
    let mut changes = WebhookChanges::default();
    match input.url {
        Some(text) => match parse_url(&text) {
            Ok(url) => match refused_destination(&url, allow_private).await {
                None => changes.url = Some(url.to_string()),
                Some(why) => errors.push(FieldError::new("url", why)),
            },
            Err(why) => errors.push(FieldError::new("url", why)),
        },
        None if creating => errors.push(FieldError::new("url", "is required")),
        None => {}
    }
    match input.events {
        Some(events) => match parse_events(&events) {
            Ok(events) => changes.events = Some(events),
            Err(why) => errors.push(FieldError::new("events", why)),
        },
        None if creating => errors.push(FieldError::new("events", "is required")),
        None => {}
    }
    if let Some(description) = input.description {
        let description = description
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
        {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters, without control characters"),
            ));
        }
        changes.description = Some(description);
    }
    changes.active = input.active;
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Creates an endpoint with a new secret (shown to the admin once, in the answer).
pub async fn create(
    store: &Store,
    settings: &Settings,
    actor: &str,
    input: EndpointInput,
    now: i64,
) -> ApiResult<WebhookRow> {
    let changes = check(input, settings.webhook_allow_private, true).await?;
    let row = WebhookRow {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        url: changes.url.unwrap_or_default(),
        events: changes.events.unwrap_or_default(),
        description: changes.description.flatten(),
        secret: new_secret(),
        active: i64::from(changes.active.unwrap_or(true)),
        created_at: now,
        updated_at: now,
    };
    let audit = AuditEntry::new(Some(actor), "webhook.create", "webhook", None);
    Ok(store.create_webhook(&row, &audit).await?)
}

pub async fn update(
    store: &Store,
    settings: &Settings,
    actor: &str,
    id: &str,
    input: EndpointInput,
    now: i64,
) -> ApiResult<WebhookRow> {
    if store.webhook(id).await?.is_none() {
        return Err(ApiError::NotFound("no webhook endpoint has this id"));
    }
    let changes = check(input, settings.webhook_allow_private, false).await?;
    let audit = AuditEntry::new(Some(actor), "webhook.update", "webhook", None);
    store
        .update_webhook(id, &changes, &audit, now)
        .await
        .map_err(not_found)
}

pub async fn delete(store: &Store, actor: &str, id: &str, now: i64) -> ApiResult<()> {
    let audit = AuditEntry::new(Some(actor), "webhook.delete", "webhook", None);
    store
        .delete_webhook(id, &audit, now)
        .await
        .map_err(not_found)
}

fn not_found(error: crate::store::StoreError) -> ApiError {
    match error {
        crate::store::StoreError::NotFound => ApiError::NotFound("no webhook endpoint has this id"),
        other => other.into(),
    }
}

/// A resolver for deliveries that leaves out private and loopback addresses (unless
/// they are allowed), checked at each connection, so a name that resolved to a public
/// address when the endpoint was made cannot later point inside (DNS rebinding).
struct PublicOnly {
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the endpoint's host resolves only to private or loopback addresses")]
struct PrivateDestination;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || !private_address(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(PrivateDestination) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Deliveries sent at once by one instance.
const IN_FLIGHT: usize = 8;
/// Due deliveries read per look at the outbox.
const BATCH: u32 = 32;
/// How often the outbox is looked at when nothing wakes the dispatcher sooner.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often the pending count of the metrics is refreshed.
const COUNT_EVERY: Duration = Duration::from_secs(15);
/// The most of an answer's body read (and dropped) before the connection is let go.
const ANSWER_READ_LIMIT: usize = 64 * 1024;

struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    allow_private: bool,
    timeout_secs: i64,
    retry_secs: i64,
    slots: Arc<tokio::sync::Semaphore>,
    wake: tokio::sync::Notify,
}

/// Starts this instance's dispatcher on the current (main) runtime.
pub fn start(store: Store, settings: &Settings) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("Paywall-Webhooks/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(settings.webhook_timeout_secs))
        .connect_timeout(Duration::from_secs(settings.webhook_timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: settings.webhook_allow_private,
        }))
        .build()
        .map_err(|e| format!("webhook client: {e}"))?;
    let dispatcher = Arc::new(Dispatcher {
        store,
        client,
        allow_private: settings.webhook_allow_private,
        timeout_secs: i64::try_from(settings.webhook_timeout_secs).unwrap_or(120),
        retry_secs: settings.webhook_retry_secs,
        slots: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        wake: tokio::sync::Notify::new(),
    });
    tokio::spawn(dispatcher.run());
    Ok(())
}

impl Dispatcher {
    async fn run(self: Arc<Self>) {
        let mut counted = Instant::now() - COUNT_EVERY;
        loop {
            if counted.elapsed() >= COUNT_EVERY {
                if let Ok(pending) = self.store.pending_deliveries().await {
                    crate::metrics::webhooks_pending(pending);
                }
                counted = Instant::now();
            }
            if let Err(error) = self.clone().send_due().await {
                tracing::warn!(%error, "reading the webhook outbox failed; trying again");
            }
            let _ = tokio::time::timeout(POLL_EVERY, self.wake.notified()).await;
        }
    }

    /// Claims and sends what is due, as many at once as there are free slots.
    async fn send_due(self: Arc<Self>) -> Result<(), crate::store::StoreError> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(());
        }
        let now = now_ts();
        let due = self
            .store
            .due_deliveries(now, BATCH.min(u32::try_from(free).unwrap_or(BATCH)))
            .await?;
        for delivery in due {
            // A claim outlives the attempt's timeout: an instance killed mid-send leaves
            // it to another (or to itself, restarted) once the claim lapses.
            let until = now + self.timeout_secs + 5;
            if !self.store.claim_delivery(delivery.seq, now, until).await? {
                continue;
            }
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let dispatcher = self.clone();
            tokio::spawn(async move {
                dispatcher.attempt(delivery).await;
                drop(slot);
                // The next event of the same chain may go now.
                dispatcher.wake.notify_one();
            });
        }
        Ok(())
    }

    async fn attempt(&self, delivery: DueDelivery) {
        let started = Instant::now();
        let sent = self.send(&delivery).await;
        let now = now_ts();
        let attempts = delivery.attempts + 1;
        let (outcome, status, error) = match sent {
            Ok(status) if (200..300).contains(&status) => ("delivered", Some(status), None),
            Ok(status) => (
                "failed",
                Some(status),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(Failure::Refused(why)) => ("refused", None, Some(why)),
            Err(Failure::Other(why)) => ("failed", None, Some(why)),
        };
        let record = match error {
            None => Attempt::Delivered {
                status: status.unwrap_or(200),
            },
            Some(error) => {
                let jitter = rand::thread_rng().gen::<f64>();
                match next_attempt(now, delivery.created_at, attempts, self.retry_secs, jitter) {
                    Some(at) => Attempt::Retry { status, error, at },
                    None => Attempt::GaveUp { status, error },
                }
            }
        };
        let outcome = match (&record, outcome) {
            (Attempt::GaveUp { .. }, _) => "gave_up",
            (_, outcome) => outcome,
        };
        crate::metrics::webhook_attempt(outcome, started.elapsed().as_secs_f64());
        if let Attempt::GaveUp { error, .. } = &record {
            tracing::warn!(message_id = %delivery.message_id, event = %delivery.kind, %error, "webhook delivery given up after its retry window");
        }
        // A lost write here leaves the claim to lapse: the delivery is sent again
        // (at least once), never dropped.
        if let Err(error) = self.store.finish_attempt(delivery.seq, &record, now).await {
            tracing::warn!(%error, message_id = %delivery.message_id, "recording a webhook attempt failed; it will be sent again");
        }
    }

    async fn send(&self, delivery: &DueDelivery) -> Result<i64, Failure> {
        let url = parse_url(&delivery.url).map_err(|why| Failure::Refused(format!("url {why}")))?;
        // Names are checked by the resolver at connection; addresses written in the URL
        // never reach it.
        if !self.allow_private {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(private_address) {
                return Err(Failure::Refused(
                    "the endpoint is a private or loopback address".into(),
                ));
            }
        }
        let timestamp = now_ts();
        let signature = sign(
            &delivery.secret,
            &delivery.message_id,
            timestamp,
            &delivery.payload,
        )
        .ok_or_else(|| Failure::Other("the endpoint's secret is not in whsec_ form".into()))?;
        let answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|error| self.describe(&error))?;
        let status = i64::from(answer.status().as_u16());
        // Read a little of the answer so a well-behaved connection can be reused; what
        // it says does not matter.
        let mut answer = answer;
        let mut read = 0;
        while let Ok(Some(chunk)) = answer.chunk().await {
            read += chunk.len();
            if read >= ANSWER_READ_LIMIT {
                break;
            }
        }
        Ok(status)
    }

    fn describe(&self, error: &reqwest::Error) -> Failure {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if cause.downcast_ref::<PrivateDestination>().is_some() {
                return Failure::Refused(PrivateDestination.to_string());
            }
            source = cause.source();
        }
        Failure::Other(if error.is_timeout() {
            format!("no answer within {} s", self.timeout_secs)
        } else if error.is_connect() {
            "could not connect to the endpoint".into()
        } else {
            "the request to the endpoint failed".into()
        })
    }
}

enum Failure {
    /// The destination is not allowed (private or loopback).
    Refused(String),
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let reference = standardwebhooks::Webhook::new(secret).unwrap();
        assert_eq!(
            reference
                .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body.as_bytes())
                .unwrap(),
            signature
        );
        assert!(sign("not-a-secret", "msg", 1, "{}").is_none());
        assert!(new_secret().starts_with("whsec_") && sign(&new_secret(), "m", 1, "b").is_some());
    }

    #[test]
    fn private_and_loopback_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(private_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "172.32.0.1",
        ] {
            assert!(!private_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_their_form() {
        assert!(parse_url("https://hooks.example.com/paywall").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/x").is_ok());
        for bad in [
            "",
            "hooks.example.com",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "file:///etc/passwd",
            "javascript:alert(1)",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://example.com/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn events_are_known_sorted_and_unique() {
        let given = ["article.published", "account.created", "account.created"].map(String::from);
        assert_eq!(
            parse_events(&given).unwrap(),
            "account.created article.published"
        );
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["account.*".to_string()]).is_err());
    }

    #[test]
    fn retries_back_off_up_to_an_hour_and_stop_after_the_window() {
        assert_eq!(retry_delay(1, 0.5), 1);
        assert_eq!(retry_delay(2, 0.5), 2);
        assert_eq!(retry_delay(5, 0.5), 16);
        assert_eq!(retry_delay(40, 0.5), 3_600);
        // Over a day of failures: about 12 doubling attempts, then one an hour.
        let (mut now, created, mut attempts) = (1_000, 1_000, 0);
        while let Some(at) = next_attempt(now, created, attempts + 1, 86_400, 0.5) {
            attempts += 1;
            now = at;
        }
        assert!((30..40).contains(&attempts), "{attempts}");
        assert!(now <= created + 86_400);
    }

    proptest! {
        #[test]
        fn delays_stay_within_their_jitter(attempts in 1i64..100, jitter in 0.0f64..1.0) {
            let base = 2f64.powi((attempts.min(33) - 1) as i32).min(3_600.0);
            let delay = retry_delay(attempts, jitter) as f64;
            prop_assert!(delay >= (base * 0.75).floor().max(1.0) && delay <= (base * 1.25).ceil());
        }

        #[test]
        fn no_retry_is_scheduled_past_the_window(now in 0i64..200_000, attempts in 1i64..50, window in 1i64..100_000, jitter in 0.0f64..1.0) {
            if let Some(at) = next_attempt(now, 0, attempts, window, jitter) {
                prop_assert!(at > now && at <= window);
            }
        }
    }
}
