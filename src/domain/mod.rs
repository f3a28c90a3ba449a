//! Parsed values: once a request field becomes one of these types it is known to be valid.

mod email;
mod enums;
mod password;
mod slug;

pub use email::Email;
pub use enums::{AccessLevel, AccountStatus, ArticleStatus, Role};
pub use password::Password;
pub use slug::Slug;
