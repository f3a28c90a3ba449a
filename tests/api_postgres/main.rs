//! The black-box tests of `tests/api`, each against a fresh PostgreSQL database of its
//! own on the server named by `PAYWALL_TEST_POSTGRES_URL` (a user that may create
//! databases), plus the tests of several instances sharing one database. Without that
//! variable at build time, one test reports that the PostgreSQL cases were skipped.

/// The database every test here runs on.
#[cfg(postgres_tests)]
pub const BACKEND: paywall::store::Backend = paywall::store::Backend::Postgres;

#[cfg(postgres_tests)]
#[path = "../api/access.rs"]
mod access;
#[cfg(postgres_tests)]
#[path = "../api/accounts.rs"]
mod accounts;
#[cfg(postgres_tests)]
#[path = "../api/admin_accounts.rs"]
mod admin_accounts;
#[cfg(postgres_tests)]
#[path = "../api/admin_articles.rs"]
mod admin_articles;
#[cfg(postgres_tests)]
#[path = "../api/api_keys.rs"]
mod api_keys;
#[cfg(postgres_tests)]
#[path = "../api/article_import.rs"]
mod article_import;
#[cfg(postgres_tests)]
#[path = "../api/attacks.rs"]
mod attacks;
#[cfg(postgres_tests)]
#[path = "../api/billing.rs"]
mod billing;
#[cfg(postgres_tests)]
mod billing_instances;
#[cfg(postgres_tests)]
#[path = "../api/browsers.rs"]
mod browsers;
#[cfg(postgres_tests)]
#[path = "../api/cli.rs"]
mod cli;
#[cfg(postgres_tests)]
#[path = "../api/errors.rs"]
mod errors;
#[cfg(postgres_tests)]
#[path = "../api/hardening.rs"]
mod hardening;
#[cfg(postgres_tests)]
#[path = "../api/helpers.rs"]
mod helpers;
#[cfg(postgres_tests)]
#[path = "../api/import.rs"]
mod import;
#[cfg(postgres_tests)]
mod instances;
#[cfg(postgres_tests)]
mod integrations_instances;
#[cfg(postgres_tests)]
#[path = "../api/lists.rs"]
mod lists;
#[cfg(postgres_tests)]
#[path = "../api/logs.rs"]
mod logs;
#[cfg(postgres_tests)]
#[path = "../api/me.rs"]
mod me;
#[cfg(postgres_tests)]
#[path = "../api/meter.rs"]
mod meter;
#[cfg(postgres_tests)]
mod migrate_to;
#[cfg(postgres_tests)]
mod nginx;
#[cfg(postgres_tests)]
#[path = "../api/openapi.rs"]
mod openapi;
#[cfg(postgres_tests)]
#[path = "../api/operations.rs"]
mod operations;
#[cfg(postgres_tests)]
mod outage;
#[cfg(postgres_tests)]
#[path = "../api/resets.rs"]
mod resets;
#[cfg(postgres_tests)]
mod schema;
#[cfg(postgres_tests)]
#[path = "../api/seats.rs"]
mod seats;
#[cfg(postgres_tests)]
mod seats_instances;
#[cfg(postgres_tests)]
#[path = "../api/site.rs"]
mod site;
#[cfg(postgres_tests)]
#[path = "../api/smtp.rs"]
mod smtp;
#[cfg(postgres_tests)]
#[path = "../api/tokens.rs"]
mod tokens;
#[cfg(postgres_tests)]
#[path = "../api/webhooks.rs"]
mod webhooks;

#[cfg(not(postgres_tests))]
#[test]
fn postgresql_cases_skipped_because_paywall_test_postgres_url_is_unset() {
    println!("PostgreSQL cases skipped: set PAYWALL_TEST_POSTGRES_URL (see README) to run them");
}
