//! Who is calling: password hashing, access and refresh tokens, and the extractors that
//! turn a request into a `Caller`.

pub mod identity;
pub mod password;
pub mod tokens;

pub use identity::{AuthAccount, Authenticated, Caller};
pub use password::PasswordHasher;
pub use tokens::{Claims, TokenKeys};
