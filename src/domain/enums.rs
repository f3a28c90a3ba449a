//! The closed vocabularies of the contract, spelled as the API spells them.

use serde::{Deserialize, Serialize};

/// A word that is not in its vocabulary (a row written past the service).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} is not a {vocabulary}")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub word: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        /// Compared with its spelling, as the API and the database write it.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        /// A stored word, decoded once at the store's edge.
        impl TryFrom<String> for $name {
            type Error = UnknownWord;

            fn try_from(word: String) -> Result<Self, UnknownWord> {
                $name::parse(&word).ok_or(UnknownWord {
                    vocabulary: stringify!($name),
                    word,
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// What an account may do beyond reading.
    Role { Reader => "reader", Editor => "editor", Admin => "admin" }
);

vocabulary!(AccountStatus { Active => "active", Suspended => "suspended" });

vocabulary!(
    /// Who may read an article in full.
    AccessLevel {
        Free => "free",
        Registered => "registered",
        Metered => "metered",
        Subscribers => "subscribers",
    }
);

vocabulary!(ArticleStatus { Draft => "draft", Published => "published" });

vocabulary!(
    /// The languages readers are spoken to in: pages, mail and the API's messages.
    Language { En => "en", Fr => "fr" }
);

vocabulary!(
    /// Where an account's subscription comes from: granted by an admin, paid through
    /// Stripe, or brought in by `import-accounts`.
    SubscriptionSource { Admin => "admin", Stripe => "stripe", Import => "import" }
);

vocabulary!(
    /// A subscription's billing status as the account shows it.
    SubscriptionStatus {
        Active => "active",
        Trialing => "trialing",
        PastDue => "past_due",
        Canceled => "canceled",
    }
);

impl Role {
    /// Editors and admins read everything and manage articles.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Editor | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for level in AccessLevel::ALL {
            assert_eq!(AccessLevel::parse(level.as_str()), Some(*level));
            assert_eq!(serde_json::to_value(level).unwrap(), level.as_str());
        }
        assert_eq!(ArticleStatus::parse("draft"), Some(ArticleStatus::Draft));
        assert_eq!(
            AccountStatus::parse("suspended"),
            Some(AccountStatus::Suspended)
        );
        assert_eq!(Role::parse("Admin"), None);
    }
}
