//! Reading seats, the rules without I/O: a plan's `seats` say how many sessions of one
//! account may read gated text at once. A session holds a seat while it reads, until
//! the hold time after its last recorded full-text read; with every seat held by other
//! sessions its reads are the teaser (`reading_elsewhere`), and "continue reading here"
//! takes the seat held longest by another session.
//!
//! The store keeps one row per seat (account, slot) naming the session that holds it
//! and until when; `claim` decides, from those rows as one transaction reads them, what
//! to write. A seat frees itself: a row past its `held_until`, or of a session that has
//! ended, holds nothing, so correctness never waits for a sweep.

/// A seat's row as the claiming transaction reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub slot: u32,
    pub session_id: String,
    pub held_since: i64,
    pub held_until: i64,
    /// The session is neither revoked nor expired.
    pub session_live: bool,
}

impl SeatRow {
    /// Whether this row holds its seat at `now` on a plan of `seats`.
    pub fn holds(&self, seats: u32, now: i64) -> bool {
        self.slot < seats && self.held_until > now && self.session_live
    }
}

/// What a claim comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The session already holds `slot`: its lease is extended (`held_since` kept).
    Refresh { slot: u32, held_since: i64 },
    /// The session takes `slot`, free, or (for a take-over) held by `displaced`.
    Take {
        slot: u32,
        displaced: Option<String>,
    },
    /// Every seat is held by other sessions; the first of them frees itself at
    /// `until` unless its holder reads again.
    Refused { until: i64 },
}

/// Decides a claim by session `me` on a plan of `seats` (at least one) at `now`: a read
/// (`take_over` false) takes a free seat or is refused; "continue reading here"
/// (`take_over` true) takes, when none is free, the seat held longest by another
/// session (the earliest `held_since`, then the lowest slot).
pub fn claim(rows: &[SeatRow], me: &str, seats: u32, now: i64, take_over: bool) -> Claim {
    let seats = seats.max(1);
    if let Some(mine) = rows
        .iter()
        .find(|row| row.session_id == me && row.holds(seats, now))
    {
        return Claim::Refresh {
            slot: mine.slot,
            held_since: mine.held_since,
        };
    }
    let held_by_others: Vec<&SeatRow> = rows
        .iter()
        .filter(|row| row.session_id != me && row.holds(seats, now))
        .collect();
    if let Some(slot) = (0..seats).find(|slot| held_by_others.iter().all(|row| row.slot != *slot)) {
        return Claim::Take {
            slot,
            displaced: None,
        };
    }
    if take_over {
        let longest = held_by_others
            .iter()
            .min_by_key(|row| (row.held_since, row.slot))
            .expect("every seat is held, and there is at least one");
        return Claim::Take {
            slot: longest.slot,
            displaced: Some(longest.session_id.clone()),
        };
    }
    Claim::Refused {
        until: held_by_others
            .iter()
            .map(|row| row.held_until)
            .min()
            .unwrap_or(now),
    }
}

/// How often a held seat's lease is written again while its session keeps reading, in
/// seconds: a tenth of the hold time, between one and five seconds. Reads in between
/// write nothing.
pub fn refresh_every(hold_secs: i64) -> i64 {
    (hold_secs / 10).clamp(1, 5)
}

/// The `held_until` a lease written at `now` gets: the hold time plus one refresh
/// interval, so that a seat is held at least the hold time after the session's last
/// read (a read up to one interval after the last write writes nothing), and frees at
/// most one interval later than that.
pub fn lease_until(now: i64, hold_secs: i64) -> i64 {
    now.saturating_add(hold_secs)
        .saturating_add(refresh_every(hold_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(slot: u32, session: &str, since: i64, until: i64) -> SeatRow {
        SeatRow {
            slot,
            session_id: session.into(),
            held_since: since,
            held_until: until,
            session_live: true,
        }
    }

    #[test]
    fn a_free_seat_is_taken_and_a_held_one_refreshed() {
        assert_eq!(
            claim(&[], "a", 1, 100, false),
            Claim::Take {
                slot: 0,
                displaced: None
            }
        );
        let held = [row(0, "a", 50, 200)];
        assert_eq!(
            claim(&held, "a", 1, 100, false),
            Claim::Refresh {
                slot: 0,
                held_since: 50
            }
        );
        assert_eq!(
            claim(&held, "b", 1, 100, false),
            Claim::Refused { until: 200 }
        );
        // Two seats: the second reader takes the other one.
        assert_eq!(
            claim(&held, "b", 2, 100, false),
            Claim::Take {
                slot: 1,
                displaced: None
            }
        );
    }

    #[test]
    fn a_seat_frees_itself_when_its_lease_ends_or_its_session_does() {
        let held = [row(0, "a", 50, 200)];
        assert_eq!(
            claim(&held, "b", 1, 200, false),
            Claim::Take {
                slot: 0,
                displaced: None
            },
            "held until 200, free from then"
        );
        let mut ended = held.clone();
        ended[0].session_live = false;
        assert!(matches!(
            claim(&ended, "b", 1, 100, false),
            Claim::Take { slot: 0, .. }
        ));
        // A slot past a plan made smaller holds nothing.
        let beyond = [row(0, "a", 50, 200), row(1, "b", 60, 200)];
        assert_eq!(
            claim(&beyond, "b", 1, 100, false),
            Claim::Refused { until: 200 }
        );
        // A session's own lapsed row is no hold: it claims like anyone.
        assert!(matches!(
            claim(&[row(0, "a", 10, 20)], "a", 1, 100, false),
            Claim::Take { slot: 0, .. }
        ));
    }

    #[test]
    fn continuing_here_takes_the_seat_held_longest() {
        let held = [
            row(0, "a", 70, 300),
            row(1, "b", 40, 200),
            row(2, "c", 40, 250),
        ];
        assert_eq!(
            claim(&held, "d", 3, 100, true),
            Claim::Take {
                slot: 1,
                displaced: Some("b".into())
            }
        );
        assert_eq!(
            claim(&held, "d", 3, 100, false),
            Claim::Refused { until: 200 }
        );
        // The holder continuing where it reads keeps its seat.
        assert!(matches!(
            claim(&held, "a", 3, 100, true),
            Claim::Refresh { slot: 0, .. }
        ));
    }

    #[test]
    fn leases_outlast_the_hold_by_one_refresh_interval() {
        assert_eq!(refresh_every(900), 5);
        assert_eq!(refresh_every(20), 2);
        assert_eq!(refresh_every(2), 1);
        assert_eq!(lease_until(1_000, 900), 1_905);
        assert_eq!(lease_until(1_000, 2), 1_003);
        assert_eq!(lease_until(i64::MAX - 1, 900), i64::MAX);
    }

    /// Applies a claim to the rows as the store writes it.
    fn apply(rows: &mut Vec<SeatRow>, me: &str, seats: u32, now: i64, hold: i64, claim: &Claim) {
        let (slot, since) = match claim {
            Claim::Refused { .. } => return,
            Claim::Refresh { slot, held_since } => (*slot, *held_since),
            Claim::Take { slot, .. } => (*slot, now),
        };
        rows.retain(|r| r.slot != slot && r.session_id != me && r.slot < seats);
        rows.push(SeatRow {
            slot,
            session_id: me.into(),
            held_since: since,
            held_until: lease_until(now, hold),
            session_live: true,
        });
    }

    proptest! {
        // Any sequence of reads and take-overs by any sessions: never more sessions hold
        // a seat than the plan has, a session holds at most one, a read that holds or
        // takes one is the only kind that reads, and a take-over always ends holding.
        #[test]
        fn never_more_readers_than_seats(
            seats in 1u32..4,
            steps in proptest::collection::vec((0usize..5, 0i64..4, any::<bool>()), 1..80),
        ) {
            let hold = 5;
            let sessions = ["s0", "s1", "s2", "s3", "s4"];
            let mut rows: Vec<SeatRow> = Vec::new();
            let mut now = 1_000;
            for (who, advance, take_over) in steps {
                now += advance;
                let me = sessions[who];
                let decided = claim(&rows, me, seats, now, take_over);
                let refused = matches!(decided, Claim::Refused { .. });
                if take_over {
                    prop_assert!(!refused, "a take-over always ends holding");
                }
                if let Claim::Refused { until } = decided {
                    prop_assert!(until > now);
                    let holders = rows.iter().filter(|r| r.holds(seats, now)).count();
                    prop_assert_eq!(holders, seats as usize);
                }
                apply(&mut rows, me, seats, now, hold, &decided);
                let holders: Vec<&str> = rows
                    .iter()
                    .filter(|r| r.holds(seats, now))
                    .map(|r| r.session_id.as_str())
                    .collect();
                prop_assert!(holders.len() <= seats as usize);
                let mut distinct = holders.clone();
                distinct.sort_unstable();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), holders.len());
                if !refused {
                    prop_assert!(holders.contains(&me));
                }
            }
        }
    }
}
