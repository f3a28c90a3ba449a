//! Builds the shared state and the HTTP server. Tests and the binary start the service
//! the same way: `Application::build`, then `run`.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_service::{IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::Server;
use actix_web::{web, App};

use crate::app::accounts::NewAccountRequest;
use crate::auth::{tokens, PasswordHasher, Throttle, TokenKeys};
use crate::config::Settings;
use crate::domain::{Email, Role};
use crate::engine::meter::MeterWriter;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::paywall::gifts::GiftKeys;
use crate::paywall::meter::MeterIds;
use crate::routes;
pub use crate::state::AppState;
use crate::store::{now_ts, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("JWT secret file {path}: {message}")]
    SecretFile { path: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// The configured secret, else the one kept beside the SQLite file (made on first
/// start). A database in memory gets a secret that lives as long as the process.
pub fn resolve_jwt_secret(settings: &Settings) -> Result<String, StartupError> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    if crate::store::Backend::of_url(&settings.database_url)
        == Some(crate::store::Backend::Postgres)
    {
        // Only serving needs it: imports, exports and migrations sign nothing.
        return Err(StartupError::Other(
            "PAYWALL_JWT_SECRET must be set with PostgreSQL: every instance signs and verifies with the same secret".into(),
        ));
    }
    let Some(db_path) = settings.sqlite_path() else {
        tracing::warn!("PAYWALL_JWT_SECRET is not set and the database is in memory: using a secret that lasts until exit");
        return Ok(tokens::generate_secret());
    };
    let path = crate::store::backup::secret_file_of(&db_path);
    let describe = |message: String| StartupError::SecretFile {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) => {
            let secret = secret.trim().to_string();
            if secret.len() < 32 {
                return Err(describe(
                    "holds fewer than 32 bytes; delete it or set PAYWALL_JWT_SECRET".into(),
                ));
            }
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret = tokens::generate_secret();
            write_private(&path, &secret).map_err(|e| describe(e.to_string()))?;
            tracing::warn!(
                path = %path.display(),
                "PAYWALL_JWT_SECRET is not set: generated a signing secret and saved it beside the database; \
                 set PAYWALL_JWT_SECRET to share one secret between instances"
            );
            Ok(secret)
        }
        Err(error) => Err(describe(error.to_string())),
    }
}

/// Writes a new file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Opens the database and applies the migrations.
pub async fn open_store(settings: &Settings) -> Result<Store, StartupError> {
    let store = Store::connect_with(&settings.database_url, settings.pools()).await?;
    store.migrate().await?;
    Ok(store)
}

#[derive(Debug, PartialEq, Eq)]
pub enum AdminCreated {
    Created,
    AlreadyExists,
}

/// Creates an admin account, by the same rule as every account
/// (`app::accounts::create`): its password must pass a reader's checks.
pub async fn create_admin(
    store: &Store,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
) -> Result<AdminCreated, StartupError> {
    let created = crate::app::accounts::create(
        store,
        hasher,
        NewAccountRequest {
            email,
            display_name: None,
            password: Some(password.to_string()),
            role: Role::Admin,
            subscription: None,
            reset_link_base: None,
            audit: None,
            now: now_ts(),
        },
        Vec::new(),
    )
    .await;
    match created {
        Ok(_) => Ok(AdminCreated::Created),
        Err(ApiError::EmailTaken) => Ok(AdminCreated::AlreadyExists),
        Err(ApiError::Validation(errors)) => Err(StartupError::Other(
            errors
                .iter()
                .map(|e| format!("admin {} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(other) => Err(StartupError::Other(format!(
            "could not create the admin account: {other}"
        ))),
    }
}

/// When both PAYWALL_ADMIN_EMAIL and PAYWALL_ADMIN_PASSWORD are set and no active
/// admin exists, creates that admin.
async fn bootstrap_admin(
    settings: &Settings,
    store: &Store,
    hasher: &PasswordHasher,
) -> Result<(), StartupError> {
    let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) else {
        return Ok(());
    };
    if store.active_admin_exists().await? {
        return Ok(());
    }
    match create_admin(store, hasher, email, password).await {
        Ok(AdminCreated::Created) => {
            tracing::info!("created the admin account named by PAYWALL_ADMIN_EMAIL");
            Ok(())
        }
        Ok(AdminCreated::AlreadyExists) => {
            // Another instance starting at the same time may have just made it.
            let is_admin = match Email::parse(email) {
                Ok(email) => store
                    .account_by_email(email.as_str())
                    .await?
                    .is_some_and(|account| account.is_active_admin()),
                Err(_) => false,
            };
            if !is_admin {
                tracing::warn!("PAYWALL_ADMIN_EMAIL names an existing account that is not an admin; it was left unchanged");
            }
            Ok(())
        }
        Err(StartupError::Other(message)) => Err(StartupError::Other(format!(
            "PAYWALL_ADMIN_EMAIL/PAYWALL_ADMIN_PASSWORD: {message}"
        ))),
        Err(other) => Err(other),
    }
}

pub fn hasher_for(settings: &Settings) -> Result<PasswordHasher, StartupError> {
    PasswordHasher::new(settings.hash_threads)
        .map_err(|e| StartupError::Other(format!("argon2: {e}")))
}

/// The server's hasher: its Argon2 memory is lent by the engine's caches.
fn serving_hasher(settings: &Settings, engine: &Engine) -> Result<PasswordHasher, StartupError> {
    let lender: Arc<dyn crate::engine::MemoryLender> = Arc::new(engine.clone());
    PasswordHasher::with_lender(settings.hash_threads, Some(lender))
        .map_err(|e| StartupError::Other(format!("argon2: {e}")))
}

/// How long finished webhook deliveries stay in the delivery log: 30 days.
const DELIVERY_LOG_SECS: i64 = 30 * 86_400;

/// How often counts of finished meter periods and spent gifts are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Deletes what finished periods and windows leave behind, at start-up and then every
/// hour, so the meter and throttle tables do not grow without bound.
fn start_pruning(store: Store, failure_window: i64) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            every.tick().await;
            let now = time::OffsetDateTime::now_utc();
            let month_start = crate::paywall::meter::period_starts_at(now).unix_timestamp();
            let meter = store.prune_meter(now.unix_timestamp()).await;
            let gifts = store.prune_gifts(now.unix_timestamp(), month_start).await;
            let failures = store
                .prune_failures(failure_window, now.unix_timestamp())
                .await;
            if let Err(error) = store
                .prune_deliveries(now.unix_timestamp() - DELIVERY_LOG_SECS)
                .await
            {
                tracing::warn!(%error, "pruning the webhook delivery log failed");
            }
            match (meter, gifts, failures) {
                (Ok(reads), Ok(gifts), Ok(failures)) => tracing::debug!(
                    reads,
                    gifts,
                    failures,
                    "pruned finished meter periods, spent gifts and ended failure windows"
                ),
                (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                    tracing::warn!(%error, "pruning the meter, gifts or failure counts failed")
                }
            }
        }
    });
}

pub struct Application {
    server: Server,
    address: std::net::SocketAddr,
    store: Store,
    /// Held while serving, so that `paywall restore` can tell the database is in use.
    _serving: Option<std::fs::File>,
}

/// Takes the lock beside the SQLite file for as long as the returned file lives.
fn lock_database(settings: &Settings) -> Option<std::fs::File> {
    let path = settings.sqlite_path()?;
    let file = crate::store::backup::serving_lock(&path).ok()?;
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(_) => {
            tracing::warn!("another process is serving this SQLite database");
            None
        }
    }
}

impl Application {
    /// Opens and migrates the database, bootstraps the admin, and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let engine = Engine::open(
            &settings.database_url,
            settings.pools(),
            settings.cache_budget(),
        )
        .await?;
        engine.store().migrate().await?;
        let store = engine.store().clone();
        let secret = resolve_jwt_secret(&settings)?;
        let previous: Vec<&[u8]> = settings
            .jwt_previous_secrets
            .iter()
            .map(|s| s.as_bytes())
            .collect();
        // Meter ids and gift tokens are signed with keys derived from the same secrets,
        // so they survive a rotation like access tokens do.
        let all_secrets: Vec<&[u8]> = std::iter::once(secret.as_bytes())
            .chain(previous.iter().copied())
            .collect();
        let meter_ids = MeterIds::new(&all_secrets);
        let gift_keys = GiftKeys::new(&all_secrets);
        let key_digests = crate::auth::ApiKeyDigests::new(&all_secrets);
        let keys = TokenKeys::with_previous(
            secret.as_bytes(),
            &previous,
            &settings.jwt_issuer,
            &settings.jwt_audience,
            settings.access_token_ttl_secs,
        );
        let hasher = serving_hasher(&settings, &engine)?;
        // Installed before any request is counted.
        crate::metrics::handle();
        bootstrap_admin(&settings, &store, &hasher).await?;

        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        })?;
        let serving = lock_database(&settings);
        let workers = settings.workers;
        let shutdown_timeout = settings.shutdown_timeout_secs;
        let mailer = match (&settings.smtp_url, &settings.mail_from) {
            (Some(url), Some(from)) => Some(Arc::new(
                Mailer::new(url, from).map_err(StartupError::Other)?,
            )),
            _ => None,
        };
        let public_base = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        let charge_deadline = std::time::Duration::from_secs(settings.db_acquire_timeout_secs);
        let state = web::Data::new(AppState {
            throttle: Throttle::new(settings.throttle_limits()),
            settings: Arc::new(settings),
            store: store.clone(),
            keys,
            key_digests,
            hasher,
            mailer,
            public_base,
            meter_ids,
            gift_keys,
            meter: MeterWriter::start(store.clone(), engine.wal_restart_flag(), charge_deadline),
            engine: engine.clone(),
        });
        start_pruning(store.clone(), state.throttle.window_secs());
        crate::app::webhooks::start(store.clone(), &state.settings).map_err(StartupError::Other)?;
        engine.start_poller();
        routes::health::publish_document(routes::openapi::document());
        let query_config = web::QueryConfig::default().error_handler(|error, _| {
            ApiError::BadRequest(format!("the query string is not valid: {error}")).into()
        });
        let path_config = web::PathConfig::default()
            .error_handler(|_, _| ApiError::NotFound("there is nothing at this path").into());
        let write_timeout = std::time::Duration::from_secs(state.settings.write_timeout_secs);
        let builder = actix_server::Server::build()
            .workers(workers)
            // On SIGTERM or SIGINT: stop accepting, let requests in flight finish.
            .shutdown_timeout(shutdown_timeout);
        let shutdown_signal = builder.graceful_shutdown_signal();
        let server = builder
            .listen("paywall", listener, move || {
                let state = state.clone();
                let query_config = query_config.clone();
                let path_config = path_config.clone();
                let site = state.settings.site;
                let app = App::new()
                    .app_data(state)
                    .app_data(query_config)
                    .app_data(path_config)
                    // The last wrapped runs first: every answer, refusals included, gets
                    // the security headers, a request id and a log line.
                    .wrap(actix_web::middleware::from_fn(routes::request_hygiene))
                    .wrap(actix_web::middleware::from_fn(routes::cors))
                    .wrap(routes::security_headers())
                    .wrap(actix_web::middleware::from_fn(routes::observe))
                    .configure(routes::configure)
                    .configure(|cfg| {
                        if site {
                            crate::site::configure(cfg)
                        }
                    })
                    .default_service(web::to(crate::site::fallback))
                    .into_factory()
                    .map_err(|error| error.error_response());
                let signal = shutdown_signal.clone();
                let http = actix_http::HttpService::build()
                    // Idle kept-alive connections close at once on a stop.
                    .graceful_shutdown_signal(move || {
                        let signal = signal.clone();
                        async move { signal.notified().await }
                    })
                    .client_request_timeout(std::time::Duration::from_secs(5))
                    .client_disconnect_timeout(std::time::Duration::from_secs(1))
                    .local_addr(address)
                    .h1(actix_service::map_config(app, move |_| {
                        // What HttpServer gives an application: plain HTTP, the bound
                        // address (Host headers name the public one).
                        actix_web::dev::AppConfig::__priv_test_new(
                            false,
                            address.to_string(),
                            address,
                        )
                    }));
                // Every connection goes through the guard: answers a client does not
                // read stop its reading, and end it after the write timeout.
                actix_service::fn_service(move |io: tokio::net::TcpStream| async move {
                    // An answer leaves as soon as it is written, never held back waiting
                    // for the client to acknowledge the one before (Nagle's algorithm).
                    let _ = io.set_nodelay(true);
                    let guarded = crate::connection::GuardedStream::new(io, write_timeout);
                    let peer = guarded.peer_addr().ok();
                    Ok::<_, actix_http::error::DispatchError>((guarded, peer))
                })
                .and_then(http)
            })
            .map_err(|source| StartupError::Bind {
                address: address.to_string(),
                source,
            })?
            .run();
        Ok(Application {
            server,
            address,
            store,
            _serving: serving,
        })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Serves until the server stops (SIGINT or SIGTERM; requests in flight, and so
    /// their meter charges, finish first), then closes the database.
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.store.close().await;
        tracing::info!("stopped");
        result
    }
}
