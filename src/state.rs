//! What every handler shares: settings, the store and its engine, keys, the hasher, the
//! throttles and the mailer. Built once by `startup`, handed to handlers as
//! `web::Data<AppState>`; it knows nothing of the routes.

use std::sync::Arc;

use crate::auth::{ApiKeyDigests, PasswordHasher, Throttle, TokenKeys};
use crate::config::Settings;
use crate::engine::meter::MeterWriter;
use crate::engine::Engine;
use crate::mail::Mailer;
use crate::paywall::gifts::GiftKeys;
use crate::paywall::meter::MeterIds;
use crate::store::Store;

/// What every handler shares. Built once, outside the per-worker closure.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    /// The caches and writers over `store` (the same store).
    pub engine: Engine,
    pub keys: TokenKeys,
    /// Digests API keys (under the same secrets as the tokens).
    pub key_digests: ApiKeyDigests,
    pub hasher: PasswordHasher,
    pub throttle: Throttle,
    /// None when PAYWALL_SMTP_URL is unset: no mail is sent.
    pub mailer: Option<Arc<Mailer>>,
    /// The base of links handed out (reset and gift links): PAYWALL_PUBLIC_URL, else
    /// this server.
    pub public_base: String,
    pub meter_ids: MeterIds,
    pub gift_keys: GiftKeys,
    pub meter: MeterWriter,
}
