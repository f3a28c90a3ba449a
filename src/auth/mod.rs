//! Who is calling: password hashing, access and refresh tokens, and the extractors that
//! turn a request into a `Caller`.

pub mod api_keys;
pub mod client;
pub mod identity;
pub mod password;
mod phpass;
pub mod stripe;
pub mod throttle;
pub mod tokens;

pub use api_keys::{ApiKeyDigests, Scope};
pub use identity::{AuthAccount, Authenticated, Caller, KeyScopes};
pub use password::PasswordHasher;
pub use throttle::Throttle;
pub use tokens::{Claims, TokenKeys};
