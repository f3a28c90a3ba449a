//! Black-box tests: the real binary, a fresh database per test, HTTP only.

mod access;
mod accounts;
mod admin_accounts;
mod admin_articles;
mod cli;
mod errors;
mod hardening;
mod helpers;
mod import;
mod lists;
mod logs;
mod me;
mod meter;
mod openapi;
mod operations;
mod resets;
mod smtp;
mod tokens;
