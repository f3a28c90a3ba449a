//! The use cases, with no HTTP types: what a reader, an editor, an admin or a command
//! asks of Paywall, each decided once here. Every face (the JSON routes, the command
//! line, the pages, and the imports) calls these, so that two
//! faces cannot decide the same thing differently.
//!
//! - `reading`: an article for a reader: the paywall decision, the meter, gift links.
//! - `accounts`: creating an account, for registration, admins, `create-admin` and
//!   `PAYWALL_ADMIN_EMAIL` alike.
//! - `sessions`: signing in, refreshing a token pair, signing out, checking a current
//!   password.
//! - `gifts`: gift links a subscriber makes.
//! - `resets`: password-reset links asked for by mail, and spent.
//! - `billing`: plans, checkout and portal links, and Stripe's events.
//! - `seats`: reading seats: the check on a subscriber's read, "continue reading
//!   here", and who reads now.
//! - `webhooks`: the publisher's webhook endpoints, and the dispatcher that delivers
//!   the outbox to them.
//! - `api_keys`: API keys for the publisher's systems.
//! - `articles`: writing an article (the editor's routes and `import-articles`).
//! - `import`: `import-articles`: JSON Lines, WordPress and Ghost exports.

pub mod accounts;
pub mod api_keys;
pub mod articles;
pub mod billing;
pub mod gifts;
pub mod import;
pub mod reading;
pub mod resets;
pub mod seats;
pub mod sessions;
pub mod webhooks;
