//! Paywall: articles, reader accounts and sign-in, and the decision on every article
//! request between the full text and a teaser with the share left to read.

pub mod app;
pub mod auth;
pub mod config;
pub mod connection;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod error;
pub mod mail;
pub mod memory;
pub mod metrics;
pub mod paywall;
pub mod routes;
pub mod site;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod transfer;
