// `sqlx::migrate!` embeds the migrations at compile time; rebuild when they change.
// With PAYWALL_TEST_POSTGRES_URL set, the `api_postgres` tests are compiled in (cfg
// `postgres_tests`); without it they report that they were skipped.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=PAYWALL_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var("PAYWALL_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=postgres_tests");
    }
}
