//! The JSON shapes of the contract, built from store rows.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{SubscriptionSource, SubscriptionStatus};
use crate::paywall::{teaser, PaywallNotice, Visible};
use crate::store::billing::PlanRow;
use crate::store::{AccountRow, ArticleRow, ArticleSummaryRow};

pub use crate::domain::{parse_rfc3339, rfc3339};

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub plan: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Null for a subscription without end.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub active: bool,
    /// Where it comes from: granted by an admin, paid through Stripe, or imported.
    #[schema(value_type = crate::domain::SubscriptionSource)]
    pub source: &'static str,
    /// Stripe's billing status for a paid subscription; `active` or `canceled`
    /// (ended) for the others.
    #[schema(value_type = crate::domain::SubscriptionStatus)]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    #[schema(value_type = crate::domain::Role)]
    pub role: String,
    #[schema(value_type = crate::domain::AccountStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Null when the account never had one.
    pub subscription: Option<SubscriptionView>,
}

impl AccountView {
    pub fn new(row: &AccountRow, now: i64) -> Self {
        AccountView {
            id: row.id.clone(),
            email: row.email.clone(),
            display_name: row.display_name.clone(),
            role: row.role.as_str().to_string(),
            status: row.status.as_str().to_string(),
            created_at: rfc3339(row.created_at),
            subscription: row.subscription_plan.as_ref().map(|plan| SubscriptionView {
                plan: plan.clone(),
                started_at: row.subscription_started_at.map(rfc3339),
                expires_at: row.subscription_expires_at.map(rfc3339),
                active: row.subscription_expires_at.is_none_or(|at| at > now),
                source: row
                    .subscription_source()
                    .map_or("admin", SubscriptionSource::as_str),
                status: row
                    .subscription_status(now)
                    .map_or("active", SubscriptionStatus::as_str),
            }),
        }
    }
}

/// A plan as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// A slug, such as `digital` or `famille`; a subscription's `plan`.
    pub id: String,
    pub name: String,
    /// Devices that may read at once; 0 for unlimited.
    pub seats: i64,
    /// The Stripe prices that buy this plan (a price buys one plan).
    pub stripe_price_ids: Vec<String>,
    /// Where a reader pays: a Stripe Payment Link.
    pub checkout_url: Option<String>,
    /// On sale: listed at /v1/plans and open to checkout.
    pub active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl PlanView {
    pub fn new(row: &PlanRow) -> Self {
        PlanView {
            id: row.id.clone(),
            name: row.name.clone(),
            seats: row.seats,
            stripe_price_ids: row.price_ids.clone(),
            checkout_url: row.checkout_url.clone(),
            active: row.active,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// A plan on sale, as anyone sees it (without its prices).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPlanView {
    pub id: String,
    pub name: String,
    /// Devices that may read at once; 0 for unlimited.
    pub seats: i64,
    /// Where a reader pays; signed-in readers get it with their account filled in from
    /// `POST /v1/me/checkout`.
    pub checkout_url: Option<String>,
    /// Always true here.
    pub active: bool,
}

impl PublicPlanView {
    pub fn new(row: &PlanRow) -> Self {
        PublicPlanView {
            id: row.id.clone(),
            name: row.name.clone(),
            seats: row.seats,
            checkout_url: row.checkout_url.clone(),
            active: row.active,
        }
    }
}

/// A list that is never paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub account: AccountView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleSummary {
    pub slug: String,
    pub title: String,
    pub standfirst: Option<String>,
    pub section: String,
    pub author: Option<String>,
    #[schema(value_type = crate::domain::AccessLevel)]
    pub access: String,
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub word_count: i64,
    pub reading_time_minutes: usize,
}

fn reading_time(word_count: i64) -> usize {
    teaser::reading_time_minutes(usize::try_from(word_count).unwrap_or(0))
}

impl From<&ArticleSummaryRow> for ArticleSummary {
    fn from(row: &ArticleSummaryRow) -> Self {
        ArticleSummary {
            slug: row.slug.clone(),
            title: row.title.clone(),
            standfirst: row.standfirst.clone(),
            section: row.section.clone(),
            author: row.author.clone(),
            access: row.access.as_str().to_string(),
            published_at: row.published_at.map(rfc3339),
            updated_at: rfc3339(row.updated_at),
            word_count: row.word_count,
            reading_time_minutes: reading_time(row.word_count),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeterView {
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    /// The first instant of the next calendar month (UTC).
    #[schema(format = DateTime)]
    pub resets_at: String,
}

impl From<crate::app::reading::MeterShown> for MeterView {
    fn from(meter: crate::app::reading::MeterShown) -> Self {
        MeterView {
            limit: meter.limit,
            used: meter.used,
            remaining: meter.remaining(),
            resets_at: rfc3339(meter.resets_at),
        }
    }
}

/// Past this, a thread's answer buffer is given back after use rather than kept.
const KEPT_BUFFER: usize = 1 << 20;

thread_local! {
    /// Where `ArticleView::to_json` writes, kept from one answer to the next.
    static ANSWER_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleView<'a> {
    #[serde(flatten)]
    pub summary: ArticleSummary,
    /// The full text, or the teaser.
    pub body: &'a str,
    pub truncated: bool,
    /// The share of the text not shown, in percent with two decimals (0 when all is shown).
    pub percent_left: f64,
    /// Null when the reader may read everything.
    pub paywall: Option<PaywallNotice>,
    /// Present whenever a meter was consulted for this reader. Keep it last:
    /// `routes::articles` puts each reader's meter in place of a ready answer's final
    /// `null`.
    pub meter: Option<MeterView>,
}

impl<'a> ArticleView<'a> {
    pub fn new(row: &ArticleRow, visible: Visible<'a>, meter: Option<MeterView>) -> Self {
        ArticleView {
            summary: ArticleSummary::from(&row.meta),
            body: visible.body,
            truncated: visible.truncated,
            percent_left: visible.percent_left,
            paywall: visible.paywall,
            meter,
        }
    }

    /// The bytes `serde_json::to_vec` makes of this view, made faster: the body, nearly
    /// all of an answer, is escaped with SIMD (serde_json escapes byte by byte, which was
    /// the largest part of making a teaser for an article not in the cache), in a buffer
    /// each thread keeps, then copied once into an allocation of the answer's size.
    pub fn to_json(&self) -> serde_json::Result<bytes::Bytes> {
        ANSWER_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.clear();
            self.write_json(&mut buffer)?;
            let answer = bytes::Bytes::copy_from_slice(&buffer);
            if buffer.capacity() > KEPT_BUFFER {
                *buffer = Vec::new();
            }
            Ok(answer)
        })
    }

    /// Writes what the derived `Serialize` writes, member for member: the summary's
    /// members, the body, then the rest (unit tests hold the two byte for byte).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Rest<'v> {
            truncated: bool,
            percent_left: f64,
            paywall: &'v Option<PaywallNotice>,
            meter: &'v Option<MeterView>,
        }
        serde_json::to_writer(&mut *out, &self.summary)?;
        out.pop(); // the summary's closing brace: the members go on
        out.extend_from_slice(b",\"body\":");
        json_escape_simd::escape_into(self.body, out);
        let rest = out.len();
        serde_json::to_writer(
            &mut *out,
            &Rest {
                truncated: self.truncated,
                percent_left: self.percent_left,
                paywall: &self.paywall,
                meter: &self.meter,
            },
        )?;
        out[rest] = b','; // the rest's opening brace: its members follow the body
        Ok(())
    }
}

/// An article as editors see it: every field, the full normalized body, and the cut.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminArticle {
    pub id: String,
    #[serde(flatten)]
    pub summary: ArticleSummary,
    #[schema(value_type = crate::domain::ArticleStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The ratio the teaser was cut with (the article's own, else the default).
    pub teaser_ratio: f64,
    /// Whether `teaser_ratio` was chosen for this article rather than the default.
    pub teaser_ratio_is_default: bool,
    /// The full text readers with access receive (paywall marker removed).
    pub body: String,
    /// The body as written, normalized, paywall marker kept, for editing.
    pub body_source: String,
    pub teaser_chars: i64,
    pub total_chars: i64,
    pub percent_left: f64,
    /// The article's id where it was imported from (`paywall import-articles`); a
    /// repeated import updates the article with the same one.
    pub external_id: Option<String>,
    /// The article's address where it was first published, if imported.
    pub canonical_url: Option<String>,
}

impl From<&ArticleRow> for AdminArticle {
    fn from(row: &ArticleRow) -> Self {
        AdminArticle {
            id: row.meta.id.clone(),
            summary: ArticleSummary::from(&row.meta),
            status: row.meta.status.as_str().to_string(),
            created_at: rfc3339(row.meta.created_at),
            teaser_ratio: row.teaser_ratio.unwrap_or(row.teaser_ratio_used),
            teaser_ratio_is_default: row.teaser_ratio.is_none(),
            body: row.body.clone(),
            body_source: row.body_source.clone(),
            teaser_chars: row.teaser_chars,
            total_chars: row.total_chars,
            percent_left: teaser::percent_value(
                u32::try_from(row.percent_left_hundredths).unwrap_or(0),
            ),
            external_id: row.external_id.clone(),
            canonical_url: row.canonical_url.clone(),
        }
    }
}

/// A row of the editors' list: the summary plus status and id, never a body.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminArticleSummary {
    pub id: String,
    #[serde(flatten)]
    pub summary: ArticleSummary,
    #[schema(value_type = crate::domain::ArticleStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&ArticleSummaryRow> for AdminArticleSummary {
    fn from(row: &ArticleSummaryRow) -> Self {
        AdminArticleSummary {
            id: row.id.clone(),
            summary: ArticleSummary::from(row),
            status: row.status.as_str().to_string(),
            created_at: rfc3339(row.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `cursor` of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts the `limit + 1` rows a store list read into a page; the cursor of the next
    /// page is the sort key and id of this page's last row, when more rows follow.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u32,
        position: impl Fn(&R) -> (i64, &str),
        view: impl Fn(&R) -> T,
    ) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows.last().filter(|_| more).map(|last| {
            let (key, id) = position(last);
            crate::store::Cursor {
                key,
                id: id.to_string(),
            }
            .encode()
        });
        Page {
            items: rows.iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// An account as admins see it: the account plus sign-in activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAccountView {
    #[serde(flatten)]
    pub account: AccountView,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub last_login_at: Option<String>,
    pub active_sessions: i64,
}

/// A one-time link for a reader to choose a password.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetLinkView {
    pub token: String,
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A created account, with its first reset link when it was made without a password.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccountView {
    #[serde(flatten)]
    pub account: AccountView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_reset: Option<ResetLinkView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    pub user_agent: Option<String>,
    pub current: bool,
    /// The session holds one of the account's reading seats now (it has read gated
    /// text within the hold time and no other session took the seat since).
    pub reading: bool,
}

/// An account's reading seats as they stand, for its admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatsView {
    /// How many sessions may read gated text at once on the account's plan (0:
    /// unlimited); null without a running subscription.
    pub seats: Option<u32>,
    /// The seats held now, each by one session.
    pub items: Vec<HeldSeatView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldSeatView {
    /// The seat's number, from 0.
    pub slot: i64,
    pub session_id: String,
    pub user_agent: Option<String>,
    /// When this session took the seat.
    #[schema(format = DateTime)]
    pub held_since: String,
    /// When the seat frees itself unless the session reads again.
    #[schema(format = DateTime)]
    pub held_until: String,
}

impl From<crate::app::seats::SeatsNow> for SeatsView {
    fn from(now: crate::app::seats::SeatsNow) -> Self {
        SeatsView {
            seats: now.seats,
            items: now
                .held
                .into_iter()
                .map(|seat| HeldSeatView {
                    slot: seat.slot,
                    session_id: seat.session_id,
                    user_agent: seat.user_agent,
                    held_since: rfc3339(seat.held_since),
                    held_until: rfc3339(seat.held_until),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor_id: Option<String>,
    /// Who acted: `account` (a person signed in), `api_key` (`actor_id` is the key's
    /// id), `stripe` (a payment event), or `system` (none: the service itself).
    pub actor_type: &'static str,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<&crate::store::AuditRow> for AuditView {
    fn from(row: &crate::store::AuditRow) -> Self {
        AuditView {
            id: row.id.clone(),
            at: rfc3339(row.at),
            actor_id: row.actor_id.clone(),
            actor_type: match row.actor_id.as_deref() {
                None => "system",
                Some(crate::store::billing::STRIPE_ACTOR) => "stripe",
                Some(id) if id.starts_with("key_") => "api_key",
                Some(_) => "account",
            },
            action: row.action.clone(),
            target_type: row.target_type.clone(),
            target_id: row.target_id.clone(),
            details: serde_json::from_str(&row.details).unwrap_or_default(),
        }
    }
}

/// An API key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// `key_` and 32 hexadecimal digits; the `actor_id` of the key's audit entries.
    pub id: String,
    pub name: String,
    pub scopes: Vec<crate::auth::Scope>,
    /// The key's first 12 characters, to tell keys apart.
    pub prefix: String,
    /// The admin who made it.
    pub created_by: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Updated at most once a minute.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<&crate::store::ApiKeyRow> for ApiKeyView {
    fn from(row: &crate::store::ApiKeyRow) -> Self {
        ApiKeyView {
            id: row.id.clone(),
            name: row.name.clone(),
            scopes: crate::auth::Scope::split(&row.scopes),
            prefix: row.prefix.clone(),
            created_by: row.created_by.clone(),
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// A key just made: the only answer that carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyView {
    #[serde(flatten)]
    pub key_info: ApiKeyView,
    /// `pwk_` and 43 characters, shown this once: only a digest is kept. Send it as
    /// `Authorization: Bearer <key>`.
    pub key: String,
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `wh_` and 32 hexadecimal digits.
    pub id: String,
    pub url: String,
    /// The events sent to it.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Whether deliveries are made (an inactive endpoint's deliveries wait).
    pub active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&crate::store::WebhookRow> for WebhookView {
    fn from(row: &crate::store::WebhookRow) -> Self {
        WebhookView {
            id: row.id.clone(),
            url: row.url.clone(),
            events: row.events.split_whitespace().map(str::to_string).collect(),
            description: row.description.clone(),
            active: row.active != 0,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// An endpoint just made: the only answer that carries its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and base64: the Standard Webhooks signing secret, shown this once.
    pub secret: String,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The message id: the `webhook-id` header, the same on every attempt.
    pub message_id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` (to be sent or retried), `delivered` (a 2xx answer) or `failed`
    /// (given up after the retry window).
    pub status: String,
    pub attempts: i64,
    /// The HTTP status of the last answer; null when there was none (timeout,
    /// connection refused, address refused) or no attempt yet.
    pub last_response_code: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    /// When it is tried next, while pending.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was delivered or given up.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl From<&crate::store::DeliveryRow> for DeliveryView {
    fn from(row: &crate::store::DeliveryRow) -> Self {
        DeliveryView {
            id: row.id.clone(),
            message_id: row.message_id.clone(),
            kind: row.kind.clone(),
            status: row.status.clone(),
            attempts: row.attempts,
            last_response_code: row.last_status_code,
            last_error: row.last_error.clone(),
            last_attempt_at: row.last_attempt_at.map(rfc3339),
            next_attempt_at: (row.status == "pending").then(|| rfc3339(row.next_attempt_at)),
            created_at: rfc3339(row.created_at),
            finished_at: row.finished_at.map(rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paywall::Reason;
    use proptest::prelude::*;

    fn view<'a>(
        text: &str,
        body: &'a str,
        percent_left: f64,
        reason: Option<Reason>,
        meter: bool,
    ) -> ArticleView<'a> {
        ArticleView {
            summary: ArticleSummary {
                slug: "a-slug".into(),
                title: text.into(),
                standfirst: Some(text.chars().rev().collect()),
                section: "news".into(),
                author: (!text.is_empty()).then(|| text.into()),
                access: "subscribers".into(),
                published_at: Some("2026-02-07T10:00:00Z".into()),
                updated_at: "2026-02-07T10:00:00Z".into(),
                word_count: i64::try_from(body.len()).unwrap_or(0),
                reading_time_minutes: 3,
            },
            body,
            truncated: reason.is_some(),
            percent_left,
            paywall: reason.map(|reason| PaywallNotice {
                reason,
                message: format!("{text} {percent_left}"),
            }),
            meter: meter.then(|| MeterView {
                limit: 3,
                used: 1,
                remaining: 2,
                resets_at: "2026-03-01T00:00:00Z".into(),
            }),
        }
    }

    fn same_as_serde(view: &ArticleView<'_>) {
        let fast = view.to_json().unwrap();
        let serde = serde_json::to_vec(view).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&serde)
        );
    }

    #[test]
    fn the_fast_answer_is_serdes_byte_for_byte() {
        let every_escape: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\/ \u{7f} é — ’ 𝄞 null}".chars())
            .collect();
        for body in [
            "",
            "plain",
            every_escape.as_str(),
            &every_escape.repeat(200),
        ] {
            same_as_serde(&view(&every_escape, body, 60.64, None, false));
            same_as_serde(&view("", body, 0.0, Some(Reason::MeterExhausted), true));
            same_as_serde(&view("t", body, 100.0, Some(Reason::LoginRequired), false));
        }
    }

    #[test]
    fn a_large_answer_does_not_keep_its_buffer() {
        let kept = || ANSWER_BUFFER.with(|buffer| buffer.borrow().capacity());
        same_as_serde(&view("small", "a small one", 1.5, None, false));
        assert!(kept() > 0, "a small answer's buffer is kept");
        let body = "x".repeat(4 << 20);
        same_as_serde(&view("big", &body, 1.5, None, false));
        assert_eq!(kept(), 0, "a 4 MiB answer's buffer is given back");
        same_as_serde(&view("small", "after a big one", 1.5, None, false));
        assert!(kept() > 0 && kept() <= KEPT_BUFFER);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_view_serializes_as_serde_does(
            text in "\\PC{0,40}|[\\x00-\\x7f]{0,40}",
            body in any::<String>(),
            percent in 0.0f64..=100.0,
            reason in proptest::option::of(prop_oneof![
                Just(Reason::LoginRequired),
                Just(Reason::SubscriptionRequired),
                Just(Reason::SubscriptionExpired),
                Just(Reason::MeterExhausted),
            ]),
            meter in any::<bool>(),
        ) {
            let view = view(&text, &body, percent, reason, meter);
            prop_assert_eq!(view.to_json().unwrap().to_vec(), serde_json::to_vec(&view).unwrap());
        }
    }
}
