//! Payments as facts, with no I/O: what a Stripe event says about a subscription, which
//! of two events about one subscription is the newer, and what a subscription's state
//! gives its reader.
//!
//! Stripe sends events at least once and in no guaranteed order. Each event's effect is
//! a function of the event alone (never of what came before), the newest event of a
//! subscription wins, and `deleted` is final: so any order of the same events, with any
//! repeats, leaves the same state (the property test below delivers them shuffled).

use serde_json::Value;

use crate::domain::SubscriptionStatus;

/// What one event says, for the store to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// `checkout.session.completed`: the account (its `client_reference_id`) is the
    /// customer's.
    Link {
        account_id: String,
        customer_id: String,
    },
    /// A subscription's state as of this event.
    State(StateFact),
    /// Nothing to apply, and why (the event is acknowledged all the same).
    Ignored(&'static str),
}

/// A subscription as one event describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateFact {
    pub subscription_id: String,
    pub customer_id: String,
    /// Every price the subscription (or invoice) names, in its order.
    pub price_ids: Vec<String>,
    pub state: Tracked,
}

/// A subscription as the newest applied event left it (a row of `stripe_subscriptions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// Stripe's status (`active`, `trialing`, `past_due`, `canceled`, `unpaid`,
    /// `incomplete`, `incomplete_expired`, `paused`), or `deleted`.
    pub status: String,
    pub period_end: Option<i64>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub key: EventKey,
}

/// Orders the events of one subscription: by Stripe's `created` (seconds), then, within
/// a second, subscription events over invoice events (the subscription object is the
/// authority on its own status), then by event id so that the order is total.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub created: i64,
    pub rank: i64,
    pub id: String,
}

/// Invoice events rank below subscription events created in the same second.
const RANK_INVOICE: i64 = 0;
const RANK_SUBSCRIPTION: i64 = 1;

pub const DELETED: &str = "deleted";

/// The event types that change something; every other type is acknowledged and ignored.
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// Whether an incoming state replaces the stored one: a deleted subscription stays
/// deleted; a deletion replaces anything; otherwise the newer event wins.
pub fn supersedes(stored: Option<&Tracked>, incoming: &Tracked) -> bool {
    match stored {
        None => true,
        Some(stored) if stored.status == DELETED => false,
        Some(_) if incoming.status == DELETED => true,
        Some(stored) => incoming.key > stored.key,
    }
}

/// The state to keep after `incoming` arrives, and whether it superseded `stored`
/// (None: nothing changes). The earliest start any event has named is kept even from an
/// event that is otherwise too old (invoices name none): a fact that does not depend on
/// the order events arrive in.
pub fn next(stored: Option<&Tracked>, incoming: &Tracked) -> (bool, Option<Tracked>) {
    let earliest = match (stored.and_then(|s| s.started_at), incoming.started_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if supersedes(stored, incoming) {
        let mut next = incoming.clone();
        next.started_at = earliest;
        return (true, Some(next));
    }
    match stored {
        Some(stored) if stored.started_at != earliest => {
            let mut next = stored.clone();
            next.started_at = earliest;
            (false, Some(next))
        }
        _ => (false, None),
    }
}

/// What a subscription gives its reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub status: SubscriptionStatus,
    pub started_at: Option<i64>,
    /// When access ends (in the past for an ended subscription).
    pub expires_at: i64,
}

/// `active` and `trialing` read until the period's end; `past_due` for `grace_secs`
/// more; `canceled`, `unpaid`, `incomplete_expired`, `paused` and `deleted` end access
/// at once (when Stripe ended it, never later than the event). `incomplete` (the first
/// payment not made yet) gives nothing, and says nothing of an earlier subscription.
pub fn entitlement(state: &Tracked, grace_secs: i64) -> Option<Entitlement> {
    let (status, expires_at) = match state.status.as_str() {
        "active" => (SubscriptionStatus::Active, state.period_end?),
        "trialing" => (SubscriptionStatus::Trialing, state.period_end?),
        "past_due" => (
            SubscriptionStatus::PastDue,
            state.period_end?.saturating_add(grace_secs),
        ),
        "canceled" | "unpaid" | "incomplete_expired" | "paused" | DELETED => (
            SubscriptionStatus::Canceled,
            state
                .ended_at
                .unwrap_or(state.key.created)
                .min(state.key.created),
        ),
        _ => return None,
    };
    Some(Entitlement {
        status,
        started_at: state.started_at,
        expires_at,
    })
}

/// The event's envelope, as every Stripe event has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub object: Value,
}

/// Reads an event's envelope; `Err` names what is missing.
pub fn envelope(event: &Value) -> Result<Envelope, &'static str> {
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or("the event has no id")?;
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| !kind.is_empty() && kind.len() <= 100)
        .ok_or("the event has no type")?;
    let created = event
        .get("created")
        .and_then(Value::as_i64)
        .ok_or("the event has no created time")?;
    let object = event
        .get("data")
        .and_then(|data| data.get("object"))
        .filter(|object| object.is_object())
        .ok_or("the event has no data.object")?;
    Ok(Envelope {
        id: id.to_string(),
        kind: kind.to_string(),
        created,
        object: object.clone(),
    })
}

/// What an event says. Shapes of the API versions before and after 2025-03-31 are
/// both read (the period end moved from the subscription to its items, and an
/// invoice's subscription and prices moved under `parent` and `pricing`).
pub fn facts(event: &Envelope) -> Fact {
    let object = &event.object;
    match event.kind.as_str() {
        "checkout.session.completed" => {
            let (Some(account_id), Some(customer_id)) = (
                text(object.get("client_reference_id")),
                id_of(object.get("customer")),
            ) else {
                return Fact::Ignored("the checkout names no account or no customer");
            };
            Fact::Link {
                account_id,
                customer_id,
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let (Some(subscription_id), Some(customer_id)) =
                (text(object.get("id")), id_of(object.get("customer")))
            else {
                return Fact::Ignored("the subscription has no id or no customer");
            };
            let items = list(object.get("items"));
            let price_ids = items
                .iter()
                .filter_map(|item| id_of(item.get("price")).or_else(|| id_of(item.get("plan"))))
                .collect();
            let period_end = object
                .get("current_period_end")
                .and_then(Value::as_i64)
                .or_else(|| {
                    items
                        .iter()
                        .filter_map(|item| item.get("current_period_end").and_then(Value::as_i64))
                        .max()
                });
            let status = if event.kind == "customer.subscription.deleted" {
                DELETED.to_string()
            } else {
                match text(object.get("status")) {
                    Some(status) => status,
                    None => return Fact::Ignored("the subscription has no status"),
                }
            };
            Fact::State(StateFact {
                subscription_id,
                customer_id,
                price_ids,
                state: Tracked {
                    status,
                    period_end,
                    started_at: object
                        .get("start_date")
                        .and_then(Value::as_i64)
                        .or_else(|| object.get("created").and_then(Value::as_i64)),
                    ended_at: object.get("ended_at").and_then(Value::as_i64),
                    key: key(event, RANK_SUBSCRIPTION),
                },
            })
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let lines = list(object.get("lines"));
            let subscription_id = id_of(object.get("subscription"))
                .or_else(|| {
                    id_of(
                        object
                            .pointer("/parent/subscription_details/subscription")
                            .or_else(|| object.pointer("/subscription_details/subscription")),
                    )
                })
                .or_else(|| {
                    lines.iter().find_map(|line| {
                        id_of(line.get("subscription")).or_else(|| {
                            id_of(line.pointer("/parent/subscription_item_details/subscription"))
                        })
                    })
                });
            let (Some(subscription_id), Some(customer_id)) =
                (subscription_id, id_of(object.get("customer")))
            else {
                return Fact::Ignored("the invoice is not a subscription's");
            };
            let price_ids = lines
                .iter()
                .filter_map(|line| {
                    id_of(line.get("price"))
                        .or_else(|| id_of(line.pointer("/pricing/price_details/price")))
                        .or_else(|| id_of(line.get("plan")))
                })
                .collect();
            let period_end = lines
                .iter()
                .filter_map(|line| line.pointer("/period/end").and_then(Value::as_i64))
                .max();
            let status = if event.kind == "invoice.paid" {
                "active"
            } else if object.get("billing_reason").and_then(Value::as_str)
                == Some("subscription_create")
            {
                // The first payment failed: nothing was ever paid for.
                "incomplete"
            } else {
                "past_due"
            };
            Fact::State(StateFact {
                subscription_id,
                customer_id,
                price_ids,
                state: Tracked {
                    status: status.to_string(),
                    period_end,
                    started_at: None,
                    ended_at: None,
                    key: key(event, RANK_INVOICE),
                },
            })
        }
        _ => Fact::Ignored("Paywall does not act on this event type"),
    }
}

fn key(event: &Envelope, rank: i64) -> EventKey {
    EventKey {
        created: event.created,
        rank,
        id: event.id.clone(),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .map(str::to_string)
}

/// An id given as a string, or as an expanded object with an `id`.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Object(object)) => text(object.get("id")),
        other => text(other),
    }
}

/// The `data` of a Stripe list (`{"object": "list", "data": [...]}`), or a bare array.
fn list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.clone(),
        Some(object) => object
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(id: &str, kind: &str, created: i64, object: Value) -> Envelope {
        envelope(&json!({"id": id, "type": kind, "created": created, "data": {"object": object}}))
            .unwrap()
    }

    fn subscription(id: &str, kind: &str, created: i64, status: &str, period_end: i64) -> Envelope {
        event(
            id,
            kind,
            created,
            json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
                   "start_date": 1_000, "current_period_end": period_end,
                   "items": {"object": "list", "data": [{"price": {"id": "price_digital"}}]}}),
        )
    }

    fn invoice(id: &str, kind: &str, created: i64, reason: &str, period_end: i64) -> Envelope {
        event(
            id,
            kind,
            created,
            json!({"id": "in_1", "object": "invoice", "customer": "cus_1", "subscription": "sub_1",
                   "billing_reason": reason,
                   "lines": {"data": [{"price": {"id": "price_digital"}, "period": {"start": 0, "end": period_end}}]}}),
        )
    }

    fn state(fact: Fact) -> Tracked {
        match fact {
            Fact::State(fact) => fact.state,
            other => panic!("not a state: {other:?}"),
        }
    }

    #[test]
    fn reads_both_api_versions_of_a_subscription() {
        let old = facts(&subscription(
            "evt_1",
            "customer.subscription.updated",
            10,
            "active",
            500,
        ));
        let Fact::State(old) = old else { panic!() };
        assert_eq!(old.price_ids, vec!["price_digital"]);
        assert_eq!(old.state.period_end, Some(500));
        assert_eq!(old.state.started_at, Some(1_000));
        let new = facts(&event(
            "evt_2",
            "customer.subscription.updated",
            10,
            json!({"id": "sub_1", "customer": {"id": "cus_1"}, "status": "trialing",
                   "items": {"data": [{"price": "price_a", "current_period_end": 700},
                                      {"price": {"id": "price_b"}, "current_period_end": 900}]}}),
        ));
        let Fact::State(new) = new else { panic!() };
        assert_eq!(new.customer_id, "cus_1");
        assert_eq!(new.price_ids, vec!["price_a", "price_b"]);
        assert_eq!(new.state.period_end, Some(900));
    }

    #[test]
    fn reads_both_api_versions_of_an_invoice() {
        let Fact::State(old) = facts(&invoice(
            "evt_1",
            "invoice.paid",
            5,
            "subscription_cycle",
            800,
        )) else {
            panic!()
        };
        assert_eq!(old.subscription_id, "sub_1");
        assert_eq!(old.state.status, "active");
        assert_eq!(old.state.period_end, Some(800));
        let Fact::State(new) = facts(&event(
            "evt_2",
            "invoice.payment_failed",
            5,
            json!({"customer": "cus_1", "billing_reason": "subscription_cycle",
                   "parent": {"subscription_details": {"subscription": "sub_9"}},
                   "lines": {"data": [{"pricing": {"price_details": {"price": "price_x"}},
                                       "period": {"end": 999}}]}}),
        )) else {
            panic!()
        };
        assert_eq!(new.subscription_id, "sub_9");
        assert_eq!(new.price_ids, vec!["price_x"]);
        assert_eq!(new.state.status, "past_due");
        let first = state(facts(&invoice(
            "evt_3",
            "invoice.payment_failed",
            5,
            "subscription_create",
            800,
        )));
        assert_eq!(first.status, "incomplete");
        assert_eq!(entitlement(&first, 100), None);
    }

    #[test]
    fn what_is_not_acted_on_says_why() {
        let one_off = event(
            "evt_1",
            "invoice.paid",
            1,
            json!({"customer": "cus_1", "lines": {"data": []}}),
        );
        assert!(matches!(facts(&one_off), Fact::Ignored(_)));
        let other = event("evt_2", "charge.refunded", 1, json!({"id": "ch_1"}));
        assert!(matches!(facts(&other), Fact::Ignored(_)));
        let anonymous = event(
            "evt_3",
            "checkout.session.completed",
            1,
            json!({"customer": "cus_1"}),
        );
        assert!(matches!(facts(&anonymous), Fact::Ignored(_)));
        let linked = event(
            "evt_4",
            "checkout.session.completed",
            1,
            json!({"customer": "cus_1", "client_reference_id": "acct", "subscription": "sub_1"}),
        );
        assert_eq!(
            facts(&linked),
            Fact::Link {
                account_id: "acct".into(),
                customer_id: "cus_1".into()
            }
        );
        assert!(envelope(&json!({"type": "x", "created": 1, "data": {"object": {}}})).is_err());
        assert!(
            envelope(&json!({"id": "e", "type": "x", "created": "1", "data": {"object": {}}}))
                .is_err()
        );
        assert!(envelope(&json!({"id": "e", "type": "x", "created": 1, "data": {}})).is_err());
    }

    #[test]
    fn statuses_become_entitlements() {
        let at = |status: &str| Tracked {
            status: status.into(),
            period_end: Some(1_000),
            started_at: Some(10),
            ended_at: Some(400),
            key: EventKey {
                created: 500,
                rank: 1,
                id: "e".into(),
            },
        };
        let of = |status: &str| entitlement(&at(status), 50).map(|e| (e.status, e.expires_at));
        assert_eq!(of("active"), Some((SubscriptionStatus::Active, 1_000)));
        assert_eq!(of("trialing"), Some((SubscriptionStatus::Trialing, 1_000)));
        assert_eq!(of("past_due"), Some((SubscriptionStatus::PastDue, 1_050)));
        for ended in [
            "canceled",
            "unpaid",
            "incomplete_expired",
            "paused",
            DELETED,
        ] {
            assert_eq!(
                of(ended),
                Some((SubscriptionStatus::Canceled, 400)),
                "{ended}"
            );
        }
        assert_eq!(of("incomplete"), None);
        assert_eq!(of("something_new"), None);
        // An end named after the event is not believed beyond the event.
        let mut late = at("canceled");
        late.ended_at = Some(9_999);
        assert_eq!(entitlement(&late, 0).unwrap().expires_at, 500);
        late.ended_at = None;
        assert_eq!(entitlement(&late, 0).unwrap().expires_at, 500);
    }

    #[test]
    fn deleted_is_final_and_newer_wins() {
        let active = state(facts(&subscription(
            "evt_a",
            "customer.subscription.updated",
            10,
            "active",
            100,
        )));
        let older = state(facts(&subscription(
            "evt_b",
            "customer.subscription.updated",
            5,
            "past_due",
            100,
        )));
        let deleted = state(facts(&subscription(
            "evt_c",
            "customer.subscription.deleted",
            1,
            "canceled",
            100,
        )));
        assert!(supersedes(None, &older));
        assert!(!supersedes(Some(&active), &older));
        assert!(supersedes(Some(&older), &active));
        assert!(supersedes(Some(&active), &deleted));
        assert!(!supersedes(Some(&deleted), &active));
        // Within a second, the subscription's own word beats an invoice's.
        let paid = state(facts(&invoice(
            "evt_0",
            "invoice.paid",
            10,
            "subscription_cycle",
            100,
        )));
        assert!(!supersedes(Some(&active), &paid));
        assert!(supersedes(Some(&paid), &active));
    }

    /// A subscription's whole life as Stripe reports it.
    fn life() -> Vec<Envelope> {
        vec![
            event(
                "evt_01",
                "checkout.session.completed",
                100,
                json!({"customer": "cus_1", "client_reference_id": "acct", "subscription": "sub_1"}),
            ),
            subscription(
                "evt_02",
                "customer.subscription.created",
                100,
                "incomplete",
                2_000,
            ),
            invoice("evt_03", "invoice.paid", 101, "subscription_create", 2_000),
            subscription(
                "evt_04",
                "customer.subscription.updated",
                101,
                "active",
                2_000,
            ),
            invoice(
                "evt_05",
                "invoice.payment_failed",
                2_000,
                "subscription_cycle",
                4_000,
            ),
            subscription(
                "evt_06",
                "customer.subscription.updated",
                2_000,
                "past_due",
                4_000,
            ),
            invoice("evt_07", "invoice.paid", 2_500, "subscription_cycle", 4_000),
            subscription(
                "evt_08",
                "customer.subscription.updated",
                2_500,
                "active",
                4_000,
            ),
            subscription(
                "evt_09",
                "customer.subscription.deleted",
                3_000,
                "canceled",
                4_000,
            ),
        ]
    }

    /// Folds events in the order given, as the store applies them (each id once).
    fn apply(events: &[Envelope]) -> Option<Tracked> {
        let mut seen = std::collections::HashSet::new();
        let mut stored: Option<Tracked> = None;
        for event in events {
            if !seen.insert(event.id.clone()) {
                continue;
            }
            if let Fact::State(fact) = facts(event) {
                if let (_, Some(kept)) = next(stored.as_ref(), &fact.state) {
                    stored = Some(kept);
                }
            }
        }
        stored
    }

    proptest! {
        #[test]
        fn any_order_with_any_repeats_ends_the_same(
            order in Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
            repeats in proptest::collection::vec(0usize..9, 0..6),
            cut in 1usize..=9,
        ) {
            let events = life();
            let in_order = apply(&events);
            let mut delivered: Vec<Envelope> = order.iter().map(|&i| events[i].clone()).collect();
            for (n, &r) in repeats.iter().enumerate() {
                let at = (n * 7) % (delivered.len() + 1);
                delivered.insert(at, events[r].clone());
            }
            let shuffled = apply(&delivered);
            prop_assert_eq!(
                in_order.as_ref().and_then(|s| entitlement(s, 60)),
                shuffled.as_ref().and_then(|s| entitlement(s, 60))
            );
            prop_assert_eq!(in_order, shuffled);
            // Without the deletion, the newest of what arrived decides, whatever the order.
            let some: Vec<Envelope> = order.iter().take(cut).filter(|&&i| i != 8)
                .map(|&i| events[i].clone()).collect();
            let mut sorted = some.clone();
            sorted.sort_by_key(|e| e.created);
            prop_assert_eq!(
                apply(&some).and_then(|s| entitlement(&s, 60)),
                apply(&sorted).and_then(|s| entitlement(&s, 60))
            );
        }
    }
}
