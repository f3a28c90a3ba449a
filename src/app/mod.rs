//! The use cases, with no HTTP types: what a reader, an editor, an admin or a command
//! asks of Paywall, each decided once here. Every face (the JSON routes, the command
//! line, and the pages, billing, seats and webhooks to come) calls these, so that two
//! faces cannot decide the same thing differently.
//!
//! - `reading`: an article for a reader: the paywall decision, the meter, gift links.
//! - `accounts`: creating an account, for registration, admins, `create-admin` and the
//!   importer alike.

pub mod accounts;
pub mod reading;
