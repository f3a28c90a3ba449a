//! Parsed values: once a request field becomes one of these types it is known to be valid.

mod display_name;
mod email;
mod enums;
mod password;
mod slug;
mod time;

pub use display_name::{parse_display_name, MAX_DISPLAY_NAME};
pub use email::Email;
pub use enums::{
    AccessLevel, AccountStatus, ArticleStatus, Language, Role, SubscriptionSource,
    SubscriptionStatus, UnknownWord,
};
pub use password::Password;
pub use slug::Slug;
pub use time::{parse_rfc3339, rfc3339};

/// The origin (`scheme://host[:port]`, lowercase) of an absolute URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty()
        || !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
    {
        return None;
    }
    Some(format!("{}://{}", scheme, host).to_ascii_lowercase())
}

/// Deserializes a field that may be absent (outer None), null (Some(None)) or a value.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
