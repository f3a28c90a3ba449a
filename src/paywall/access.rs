//! Who may read what: the contract's access table as one pure function.

use crate::domain::Language;
use crate::domain::{AccessLevel, Role};
use serde::Serialize;

/// A reader's subscription as it stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    Never,
    Active,
    Expired,
}

/// Who is reading, as far as access is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderKind {
    Anonymous,
    Account {
        role: Role,
        subscription: SubscriptionState,
    },
}

impl ReaderKind {
    /// Subscribers, editors and admins read everything without a meter.
    pub fn reads_everything(self) -> bool {
        match self {
            ReaderKind::Anonymous => false,
            ReaderKind::Account { role, subscription } => {
                role.is_staff() || subscription == SubscriptionState::Active
            }
        }
    }
}

/// Why a reader gets the teaser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    LoginRequired,
    SubscriptionRequired,
    SubscriptionExpired,
    MeterExhausted,
    /// A subscriber whose plan's seats are all held by other sessions.
    ReadingElsewhere,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::LoginRequired => "login_required",
            Reason::SubscriptionRequired => "subscription_required",
            Reason::SubscriptionExpired => "subscription_expired",
            Reason::MeterExhausted => "meter_exhausted",
            Reason::ReadingElsewhere => "reading_elsewhere",
        }
    }

    pub const ALL: [Reason; 5] = [
        Reason::LoginRequired,
        Reason::SubscriptionRequired,
        Reason::SubscriptionExpired,
        Reason::MeterExhausted,
        Reason::ReadingElsewhere,
    ];

    /// The sentence shown above the gated part, with the percent to two decimals, as
    /// each language writes it (French: a decimal comma and a no-break space before %).
    pub fn message(self, percent_left_hundredths: u32, language: Language) -> String {
        let percent = super::teaser::format_percent(percent_left_hundredths);
        match language {
            Language::En => {
                let rest = match self {
                    Reason::LoginRequired => "The following is for registered readers only.",
                    Reason::ReadingElsewhere => {
                        "Your subscription is being read on another device."
                    }
                    _ => "The following is for subscribers only.",
                };
                format!("You have {percent}% of this article left to read. {rest}")
            }
            Language::Fr => {
                let rest = match self {
                    Reason::LoginRequired => "La suite est réservée aux lecteurs inscrits.",
                    Reason::ReadingElsewhere => {
                        "Votre abonnement est en cours de lecture sur un autre appareil."
                    }
                    _ => "La suite est réservée aux abonnés.",
                };
                format!(
                    "Il vous reste {}\u{a0}% de cet article à lire. {rest}",
                    percent.replace('.', ",")
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Full,
    Teaser(Reason),
}

/// What the meter said for a read that needed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterVerdict {
    /// The read is counted (or was already counted this period).
    Credit,
    Exhausted,
}

/// What the account's reading seats said for a read that needed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatVerdict {
    /// This session holds a seat (it had one, or took a free one).
    Held,
    /// Every seat is held by other sessions.
    Elsewhere,
}

/// Whether this read has to hold a reading seat before `decide` can answer: a
/// subscriber (not staff) reading gated text (metered or for subscribers) without a
/// gift, on a plan of limited seats (`seats` 0 is unlimited).
pub fn needs_seat(reader: ReaderKind, access: AccessLevel, gift_valid: bool, seats: u32) -> bool {
    reads_under_seats(reader, seats)
        && !gift_valid
        && matches!(access, AccessLevel::Metered | AccessLevel::Subscribers)
}

/// Whether a reader's gated reads are held to seats at all: a subscriber who is not
/// staff, on a plan of limited seats.
pub fn reads_under_seats(reader: ReaderKind, seats: u32) -> bool {
    let subscriber = matches!(
        reader,
        ReaderKind::Account { role, subscription: SubscriptionState::Active } if !role.is_staff()
    );
    subscriber && seats > 0
}

/// Whether this read has to consult the meter before `decide` can answer.
pub fn needs_meter(reader: ReaderKind, access: AccessLevel, gift_valid: bool) -> bool {
    access == AccessLevel::Metered && !gift_valid && !reader.reads_everything()
}

/// The access table. `meter` is what the meter said when `needs_meter` was true; a
/// metered read that could not consult a meter gets the teaser, never the full text.
/// `seat` is what the reading seats said when `needs_seat` was true.
pub fn decide(
    reader: ReaderKind,
    access: AccessLevel,
    gift_valid: bool,
    meter: Option<MeterVerdict>,
    seat: Option<SeatVerdict>,
) -> Decision {
    if gift_valid {
        return Decision::Full;
    }
    if reader.reads_everything() {
        return match seat {
            Some(SeatVerdict::Elsewhere)
                if matches!(access, AccessLevel::Metered | AccessLevel::Subscribers) =>
            {
                Decision::Teaser(Reason::ReadingElsewhere)
            }
            _ => Decision::Full,
        };
    }
    match (access, reader) {
        (AccessLevel::Free, _) => Decision::Full,
        (AccessLevel::Registered, ReaderKind::Anonymous) => Decision::Teaser(Reason::LoginRequired),
        (AccessLevel::Registered, ReaderKind::Account { .. }) => Decision::Full,
        (AccessLevel::Metered, _) => match meter {
            Some(MeterVerdict::Credit) => Decision::Full,
            Some(MeterVerdict::Exhausted) | None => Decision::Teaser(Reason::MeterExhausted),
        },
        (
            AccessLevel::Subscribers,
            ReaderKind::Account {
                subscription: SubscriptionState::Expired,
                ..
            },
        ) => Decision::Teaser(Reason::SubscriptionExpired),
        (AccessLevel::Subscribers, _) => Decision::Teaser(Reason::SubscriptionRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessLevel::*;

    const ANON: ReaderKind = ReaderKind::Anonymous;
    const READER: ReaderKind = ReaderKind::Account {
        role: Role::Reader,
        subscription: SubscriptionState::Never,
    };
    const EXPIRED: ReaderKind = ReaderKind::Account {
        role: Role::Reader,
        subscription: SubscriptionState::Expired,
    };
    const SUBSCRIBER: ReaderKind = ReaderKind::Account {
        role: Role::Reader,
        subscription: SubscriptionState::Active,
    };
    const EDITOR: ReaderKind = ReaderKind::Account {
        role: Role::Editor,
        subscription: SubscriptionState::Never,
    };
    const ADMIN: ReaderKind = ReaderKind::Account {
        role: Role::Admin,
        subscription: SubscriptionState::Expired,
    };

    fn teaser(reason: Reason) -> Decision {
        Decision::Teaser(reason)
    }

    #[test]
    fn the_contract_table() {
        use Decision::Full;
        let credit = Some(MeterVerdict::Credit);
        let out = Some(MeterVerdict::Exhausted);
        let cases = [
            (ANON, Free, None, Full),
            (ANON, Registered, None, teaser(Reason::LoginRequired)),
            (ANON, Metered, credit, Full),
            (ANON, Metered, out, teaser(Reason::MeterExhausted)),
            (
                ANON,
                Subscribers,
                None,
                teaser(Reason::SubscriptionRequired),
            ),
            (READER, Free, None, Full),
            (READER, Registered, None, Full),
            (READER, Metered, credit, Full),
            (READER, Metered, out, teaser(Reason::MeterExhausted)),
            (
                READER,
                Subscribers,
                None,
                teaser(Reason::SubscriptionRequired),
            ),
            (EXPIRED, Registered, None, Full),
            (EXPIRED, Metered, out, teaser(Reason::MeterExhausted)),
            (
                EXPIRED,
                Subscribers,
                None,
                teaser(Reason::SubscriptionExpired),
            ),
        ];
        for (reader, access, meter, expected) in cases {
            assert_eq!(
                decide(reader, access, false, meter, None),
                expected,
                "{reader:?} {access:?} {meter:?}"
            );
        }
        for reader in [SUBSCRIBER, EDITOR, ADMIN] {
            for access in AccessLevel::ALL {
                assert_eq!(decide(reader, *access, false, None, None), Full);
                assert!(!needs_meter(reader, *access, false));
            }
        }
    }

    #[test]
    fn a_valid_gift_opens_everything_without_the_meter() {
        for reader in [ANON, READER, EXPIRED] {
            for access in AccessLevel::ALL {
                assert_eq!(decide(reader, *access, true, None, None), Decision::Full);
                assert!(!needs_meter(reader, *access, true));
            }
        }
    }

    #[test]
    fn metered_reads_without_a_meter_answer_are_gated() {
        assert!(needs_meter(ANON, Metered, false));
        assert!(needs_meter(EXPIRED, Metered, false));
        assert_eq!(
            decide(ANON, Metered, false, None, None),
            teaser(Reason::MeterExhausted)
        );
    }

    #[test]
    fn reasons_are_spelled_as_in_the_contract() {
        for reason in Reason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    #[test]
    fn a_subscriber_needs_a_seat_for_gated_text_only() {
        use AccessLevel::*;
        for access in AccessLevel::ALL {
            let gated = matches!(access, Metered | Subscribers);
            assert_eq!(needs_seat(SUBSCRIBER, *access, false, 1), gated);
            assert!(
                !needs_seat(SUBSCRIBER, *access, true, 1),
                "a gift needs none"
            );
            assert!(
                !needs_seat(SUBSCRIBER, *access, false, 0),
                "unlimited seats"
            );
            for exempt in [ANON, READER, EXPIRED, EDITOR, ADMIN] {
                assert!(!needs_seat(exempt, *access, false, 1), "{exempt:?}");
            }
            let elsewhere = decide(
                SUBSCRIBER,
                *access,
                false,
                None,
                Some(SeatVerdict::Elsewhere),
            );
            let expected = if gated {
                teaser(Reason::ReadingElsewhere)
            } else {
                Decision::Full
            };
            assert_eq!(elsewhere, expected);
            assert_eq!(
                decide(SUBSCRIBER, *access, false, None, Some(SeatVerdict::Held)),
                Decision::Full
            );
        }
    }

    #[test]
    fn the_message_of_reading_elsewhere_in_both_languages() {
        assert_eq!(
            Reason::ReadingElsewhere.message(6064, Language::En),
            "You have 60.64% of this article left to read. Your subscription is being read on another device."
        );
        assert_eq!(
            Reason::ReadingElsewhere.message(6064, Language::Fr),
            "Il vous reste 60,64\u{a0}% de cet article à lire. Votre abonnement est en cours de lecture sur un autre appareil."
        );
        assert_eq!(
            Reason::SubscriptionRequired.message(6064, Language::En),
            "You have 60.64% of this article left to read. The following is for subscribers only."
        );
    }
}
