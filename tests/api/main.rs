//! Black-box tests: the real binary, a fresh SQLite database per test, HTTP only. The
//! `api_postgres` target runs the same tests against PostgreSQL.

/// The database every test here runs on.
pub const BACKEND: paywall::store::Backend = paywall::store::Backend::Sqlite;

mod access;
mod accounts;
mod admin_accounts;
mod admin_articles;
mod api_keys;
mod article_import;
mod attacks;
mod billing;
mod browsers;
mod chromium;
mod cli;
mod deploy;
mod errors;
mod hardening;
mod helpers;
mod import;
mod layers;
mod lists;
mod logs;
mod me;
mod meter;
mod openapi;
mod operations;
mod resets;
mod seats;
mod site;
mod smtp;
mod sqlite_only;
mod tokens;
mod webhooks;
