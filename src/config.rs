//! Settings from the environment (and `.env`), validated once at start-up. A bad value
//! stops start-up with a message that names the variable.

#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

fn bad(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the declaration of one setting says of it: `check-config`, the unknown-name
/// warnings and the `.env.example` test read these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDoc {
    pub name: &'static str,
    /// The part of the service that uses it.
    pub component: &'static str,
    /// The value when unset, as it would be written (empty: none, or computed).
    pub default: &'static str,
    pub doc: &'static str,
    /// Never shown, only whether it is set.
    pub secret: bool,
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Declares every setting once: its field, type, variable, default, reader, how
/// `check-config` shows it, and whether it is a secret. From this come `Settings`, its
/// reading from the environment (`from_lookup`), `describe` and `SETTINGS`.
macro_rules! settings {
    ($(
        $component:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $name:literal ($default:literal) => $read:expr, $show:expr $(, $secret:ident)?;
            )+
        }
    )+) => {
        /// Every setting the service reads. `Debug` never prints secrets.
        #[derive(Clone)]
        pub struct Settings {
            $($(
                $(#[doc = $doc])+
                pub $field: $ty,
            )+)+
        }

        /// Every setting, in the order `check-config` lists them, by component.
        pub const SETTINGS: &[SettingDoc] = &[$($(SettingDoc {
            name: $name,
            component: stringify!($component),
            default: $default,
            doc: concat!($($doc),+),
            secret: settings!(@secret $($secret)?),
        },)+)+];

        impl Settings {
            /// Reads settings through `get`, so tests can supply their own variables.
            pub fn from_lookup(get: Lookup) -> Result<Self, ConfigError> {
                let settings = Settings {
                    $($($field: ($read)(&Raw::new(get, $name, $default))?,)+)+
                };
                settings.check_together()?;
                Ok(settings)
            }

            /// Every setting as `(variable, effective value)`, secrets masked: what
            /// `paywall check-config` prints.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![$($(($name, ($show)(&self.$field)),)+)+]
            }
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

/// A variable as the environment gives it, with its declared default.
struct Raw<'a> {
    get: Lookup<'a>,
    name: &'static str,
    default: &'static str,
}

impl<'a> Raw<'a> {
    fn new(get: Lookup<'a>, name: &'static str, default: &'static str) -> Self {
        Raw { get, name, default }
    }

    /// The value set, trimmed (an unset or blank variable counts as unset), else the
    /// default; none when neither.
    fn value(&self) -> Option<String> {
        (self.get)(self.name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
            .or_else(|| (!self.default.is_empty()).then(|| self.default.to_string()))
    }

    fn text(&self) -> String {
        self.value().unwrap_or_default()
    }

    /// A comma-separated list, blank items left out.
    fn list(&self) -> Vec<String> {
        self.value()
            .map(|raw| {
                raw.split(',')
                    .map(|item| item.trim().to_string())
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn bad(&self, message: impl Into<String>) -> ConfigError {
        bad(self.name, message)
    }
}

/// Whether `url` is an absolute https URL, or http on this machine (to try things out).
pub fn https_or_local(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

/// Readers: each turns a variable into its field's value or a message naming it.
mod read {
    use super::{ConfigError, LogFormat, Raw};

    pub fn text(raw: &Raw) -> Result<String, ConfigError> {
        Ok(raw.text())
    }

    /// A whole number from `min` to `max`.
    pub fn number<T>(min: T, max: T) -> impl Fn(&Raw) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        move |raw| {
            let text = raw.text();
            let value: T = text
                .parse()
                .map_err(|_| raw.bad(format!("{text:?} is not a number")))?;
            if value < min || value > max {
                return Err(raw.bad(format!("{value} is out of range ({min} to {max})")));
            }
            Ok(value)
        }
    }

    /// One of two words (any case), for `true` and `false`.
    pub fn either(
        yes: &'static str,
        no: &'static str,
    ) -> impl Fn(&Raw) -> Result<bool, ConfigError> {
        move |raw| match raw.text().to_ascii_lowercase() {
            word if word == yes => Ok(true),
            word if word == no => Ok(false),
            other => Err(raw.bad(format!("{other:?} is neither \"{yes}\" nor \"{no}\""))),
        }
    }

    pub fn bind(raw: &Raw) -> Result<String, ConfigError> {
        let bind = raw.text();
        bind.parse::<std::net::SocketAddr>().map_err(|_| {
            raw.bad(format!(
                "{bind:?} is not an address and port such as 127.0.0.1:8080"
            ))
        })?;
        Ok(bind)
    }

    pub fn database_url(raw: &Raw) -> Result<String, ConfigError> {
        let url = raw.text();
        crate::store::Backend::of_url(&url).ok_or_else(|| {
            raw.bad(
                "must be a sqlite:// URL (for example sqlite://paywall.db) or a postgres:// URL \
                 (for example postgres://paywall@db.internal/paywall)",
            )
        })?;
        Ok(url)
    }

    pub fn jwt_secret(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let secret = raw.value();
        if let Some(short) = secret.as_ref().filter(|s| s.len() < 32) {
            return Err(raw.bad(format!(
                "must be at least 32 bytes long (it is {} bytes)",
                short.len()
            )));
        }
        Ok(secret)
    }

    pub fn previous_secrets(raw: &Raw) -> Result<Vec<String>, ConfigError> {
        let secrets = raw.list();
        if let Some(short) = secrets.iter().find(|s| s.len() < 32) {
            return Err(raw.bad(format!(
                "every secret must be at least 32 bytes long (one is {} bytes)",
                short.len()
            )));
        }
        Ok(secrets)
    }

    pub fn teaser_ratio(raw: &Raw) -> Result<f64, ConfigError> {
        let ratio = number(0.0_f64, 1.0)(raw)?;
        if !(ratio > 0.0 && ratio < 1.0) {
            return Err(raw.bad("must be strictly between 0 and 1, such as 0.40"));
        }
        Ok(ratio)
    }

    pub fn admin_email(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let email = raw.value();
        if let Some(email) = &email {
            crate::domain::Email::parse(email).map_err(|message| raw.bad(message))?;
        }
        Ok(email)
    }

    /// Passwords are not trimmed: what is typed is what counts.
    pub fn admin_password(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let password = (raw.get)(raw.name).filter(|p| !p.is_empty());
        if let Some(password) = &password {
            crate::domain::Password::parse_length(password).map_err(|message| raw.bad(message))?;
        }
        Ok(password)
    }

    pub fn smtp_url(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let url = raw.value();
        if url
            .as_ref()
            .is_some_and(|url| !(url.starts_with("smtp://") || url.starts_with("smtps://")))
        {
            return Err(raw.bad(
                "must start with smtp:// or smtps://, such as smtp://mail.example.org:587?tls=required",
            ));
        }
        Ok(url)
    }

    pub fn mail_from(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let from = raw.value();
        if let Some(from) = &from {
            from.parse::<lettre::message::Mailbox>().map_err(|e| {
                raw.bad(format!(
                    "{from:?} is not a mail address such as \"Newsroom <news@example.org>\": {e}"
                ))
            })?;
        }
        Ok(from)
    }

    /// Every prefix of every file, in the format search engines publish.
    pub fn crawler_ranges(raw: &Raw) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let mut ranges = Vec::new();
        for path in raw.list() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| raw.bad(format!("{path}: {e}")))?;
            let document: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| raw.bad(format!("{path} is not JSON: {e}")))?;
            let prefixes = document
                .get("prefixes")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| {
                    raw.bad(format!(
                        "{path} has no \"prefixes\" list, as in {{\"prefixes\": [{{\"ipv4Prefix\": \"66.249.64.0/27\"}}]}}"
                    ))
                })?;
            for prefix in prefixes {
                let value = prefix
                    .get("ipv4Prefix")
                    .or_else(|| prefix.get("ipv6Prefix"))
                    .and_then(serde_json::Value::as_str)
                    .and_then(super::parse_net)
                    .ok_or_else(|| {
                        raw.bad(format!(
                            "{path}: {prefix} is not an ipv4Prefix or ipv6Prefix"
                        ))
                    })?;
                ranges.push(value);
            }
        }
        Ok(ranges)
    }

    pub fn language(raw: &Raw) -> Result<crate::domain::Language, ConfigError> {
        let text = raw.text().to_ascii_lowercase();
        crate::domain::Language::parse(&text)
            .ok_or_else(|| raw.bad(format!("{text:?} is neither \"en\" nor \"fr\"")))
    }

    pub fn stripe_webhook_secrets(raw: &Raw) -> Result<Vec<String>, ConfigError> {
        let secrets = raw.list();
        if secrets
            .iter()
            .any(|s| !s.starts_with("whsec_") || s.len() < 16)
        {
            return Err(raw.bad(
                "every secret must be a webhook signing secret as Stripe shows it, starting \
                 with whsec_ (Developers > Webhooks > the endpoint > Signing secret)",
            ));
        }
        Ok(secrets)
    }

    /// An absolute https:// URL (http:// only for this machine, to try things out).
    pub fn https_url(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let url = raw.value();
        if let Some(url) = &url {
            if !super::https_or_local(url) {
                return Err(raw.bad(format!(
                    "{url:?} must be an https:// URL, such as https://billing.stripe.com/p/login/..."
                )));
            }
        }
        Ok(url)
    }

    pub fn public_url(raw: &Raw) -> Result<Option<String>, ConfigError> {
        let url = raw.value().map(|url| url.trim_end_matches('/').to_string());
        if let Some(url) = &url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(raw.bad(format!("{url:?} must start with http:// or https://")));
            }
        }
        Ok(url)
    }

    pub fn trusted_proxies(raw: &Raw) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        raw.list()
            .iter()
            .map(|item| {
                super::parse_net(item).ok_or_else(|| {
                    raw.bad(format!(
                        "{item:?} is not an address or CIDR block such as 10.0.0.0/8"
                    ))
                })
            })
            .collect()
    }

    /// Kept as browsers send them in `Origin`: scheme and host, lowercase, no path.
    pub fn cors_origins(raw: &Raw) -> Result<Vec<String>, ConfigError> {
        raw.list()
            .iter()
            .map(|origin| {
                let trimmed = origin.trim_end_matches('/');
                crate::domain::origin_of(trimmed)
                    .filter(|o| o.len() == trimmed.len())
                    .ok_or_else(|| {
                        raw.bad(format!(
                            "{origin:?} is not an origin such as https://news.example (scheme and host, no path)"
                        ))
                    })
            })
            .collect()
    }

    /// Unset: one per core.
    pub fn workers(raw: &Raw) -> Result<usize, ConfigError> {
        if raw.value().is_none() {
            return Ok(std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1));
        }
        number(1_usize, 1_024)(raw)
    }

    /// Unset: one per core.
    pub fn hash_threads(raw: &Raw) -> Result<usize, ConfigError> {
        if raw.value().is_none() {
            return workers(raw);
        }
        number(1_usize, 256)(raw)
    }

    pub fn log_filter(raw: &Raw) -> Result<String, ConfigError> {
        let log = raw.text();
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| raw.bad(format!("{log:?} is not a log filter: {e}")))?;
        Ok(log)
    }

    pub fn log_format(raw: &Raw) -> Result<LogFormat, ConfigError> {
        match raw.text().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(raw.bad(format!("{other:?} is neither \"text\" nor \"json\""))),
        }
    }
}

/// How `check-config` shows a value.
mod show {
    pub fn plain<T: ToString>(value: &T) -> String {
        value.to_string()
    }

    pub fn optional(value: &Option<String>) -> String {
        value.clone().unwrap_or_else(|| "<unset>".to_string())
    }

    pub fn secret(value: &Option<String>) -> String {
        match value {
            Some(_) => "<set>".to_string(),
            None => "<unset>".to_string(),
        }
    }

    pub fn list<T: ToString>(values: &[T]) -> String {
        if values.is_empty() {
            "<none>".to_string()
        } else {
            values
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
    }

    /// A URL with any password in it hidden.
    pub fn url(value: &str) -> String {
        super::redact_url(value)
    }

    pub fn optional_url(value: &Option<String>) -> String {
        value
            .as_deref()
            .map_or("<unset>".to_string(), super::redact_url)
    }

    /// The key id (as in tokens' `kid`) tells whether instances share one secret
    /// without showing it.
    pub fn jwt_secret(value: &Option<String>) -> String {
        match value {
            Some(secret) => format!(
                "<set, key id {}>",
                crate::auth::tokens::key_id(secret.as_bytes())
            ),
            None => "<unset: generated and kept beside the SQLite file>".to_string(),
        }
    }

    pub fn count(values: &[String]) -> String {
        format!("<{} set>", values.len())
    }

    pub fn max_connections(value: &u32) -> String {
        match value {
            0 => "0 (two per core for SQLite reads, 10 for PostgreSQL)".to_string(),
            n => n.to_string(),
        }
    }

    pub fn ranges(ranges: &[ipnet::IpNet]) -> String {
        match ranges.len() {
            0 => "<none>".to_string(),
            n => format!("<{n} ranges>"),
        }
    }

    pub fn on_or_off(on: &bool) -> String {
        if *on { "on" } else { "off" }.to_string()
    }

    pub fn true_or_false(value: &bool) -> String {
        value.to_string()
    }

    pub fn open_or_closed(open: &bool) -> String {
        if *open { "open" } else { "closed" }.to_string()
    }

    pub fn log_format(format: &super::LogFormat) -> String {
        match format {
            super::LogFormat::Text => "text",
            super::LogFormat::Json => "json",
        }
        .to_string()
    }
}

settings! {
    server {
        /// Address and port to listen on (port 0 picks a free one).
        bind: String = "PAYWALL_BIND" ("127.0.0.1:8080") => read::bind, show::plain;
        /// HTTP worker threads (unset: one per core).
        workers: usize = "PAYWALL_WORKERS" ("") => read::workers, show::plain;
        /// Password hashes (Argon2id) computed at once, each thread holding 19 MiB
        /// (borrowed from the caches) until 10 s after its last (unset: one per core);
        /// more sign-ins wait their turn.
        hash_threads: usize = "PAYWALL_HASH_THREADS" ("") => read::hash_threads, show::plain;
        /// MiB of memory for the caches of articles, article pages and list pages
        /// (shared 12:8:1), less what password hashing borrows while sign-ins run.
        cache_mib: usize = "PAYWALL_CACHE_MIB" ("42") => read::number(3, 65_536), show::plain;
        /// How long a stop (SIGTERM, SIGINT) waits for requests in flight, in seconds.
        shutdown_timeout_secs: u64 = "PAYWALL_SHUTDOWN_TIMEOUT_SECS" ("30") => read::number(1, 3_600), show::plain;
        /// The longest a request may take before it is answered 503 `unavailable`: a
        /// frozen database holds no reader for ever.
        request_timeout_secs: u64 = "PAYWALL_REQUEST_TIMEOUT_SECS" ("10") => read::number(1, 600), show::plain;
        /// How long answers may wait to leave before the connection is closed: a client
        /// that never reads holds no memory for ever.
        write_timeout_secs: u64 = "PAYWALL_WRITE_TIMEOUT_SECS" ("30") => read::number(1, 3_600), show::plain;
    }
    database {
        /// sqlite://FILE or postgres://USER:PASSWORD@HOST/DATABASE.
        database_url: String = "DATABASE_URL" ("sqlite://paywall.db") => read::database_url, show::url;
        /// Connections at most (0: the backend's default).
        db_max_connections: u32 = "PAYWALL_DB_MAX_CONNECTIONS" ("0") => read::number(0, 1_000), show::max_connections;
        /// How long a request waits for a free connection, in seconds.
        db_acquire_timeout_secs: u64 = "PAYWALL_DB_ACQUIRE_TIMEOUT_SECS" ("5") => read::number(1, 600), show::plain;
    }
    tokens {
        /// HS256 signing secret, at least 32 bytes (unset: generated beside the SQLite file).
        jwt_secret: Option<String> = "PAYWALL_JWT_SECRET" ("") => read::jwt_secret, show::jwt_secret, secret;
        /// Earlier signing secrets that still verify what they signed.
        jwt_previous_secrets: Vec<String> = "PAYWALL_JWT_PREVIOUS_SECRETS" ("") => read::previous_secrets, show::count, secret;
        /// The `iss` of access tokens.
        jwt_issuer: String = "PAYWALL_JWT_ISSUER" ("paywall") => read::text, show::plain;
        /// The `aud` of access tokens.
        jwt_audience: String = "PAYWALL_JWT_AUDIENCE" ("paywall") => read::text, show::plain;
        /// How long an access token lasts, in seconds.
        access_token_ttl_secs: i64 = "PAYWALL_ACCESS_TOKEN_TTL_SECS" ("900") => read::number(30, 86_400), show::plain;
        /// The absolute lifetime of a session (and so of its refresh tokens).
        refresh_token_ttl_secs: i64 = "PAYWALL_REFRESH_TOKEN_TTL_SECS" ("2592000") => read::number(1, 31_622_400), show::plain;
        /// A session unused (not refreshed) for this long ends.
        session_idle_secs: i64 = "PAYWALL_SESSION_IDLE_SECS" ("604800") => read::number(1, 31_622_400), show::plain;
    }
    paywall {
        /// The share of an article shown as its teaser, strictly between 0 and 1.
        teaser_ratio: f64 = "PAYWALL_TEASER_RATIO" ("0.40") => read::teaser_ratio, show::plain;
        /// Metered articles per month for anonymous readers.
        meter_anonymous: u32 = "PAYWALL_METER_ANONYMOUS" ("3") => read::number(0, 1_000), show::plain;
        /// Metered articles per month for reader accounts.
        meter_registered: u32 = "PAYWALL_METER_REGISTERED" ("5") => read::number(0, 1_000), show::plain;
        /// Metered articles per client address per day for readers without a meter id.
        meter_unidentified_per_day: u32 = "PAYWALL_METER_UNIDENTIFIED_PER_DAY" ("10") => read::number(0, 100_000), show::plain;
        /// Gift links each subscriber may make per month.
        gifts_per_month: u32 = "PAYWALL_GIFTS_PER_MONTH" ("10") => read::number(0, 10_000), show::plain;
        /// How long a gift link opens its article, in seconds.
        gift_ttl_secs: i64 = "PAYWALL_GIFT_TTL_SECS" ("2592000") => read::number(60, 31_622_400), show::plain;
        /// How long a session keeps its reading seat after its last full-text read, in
        /// seconds (a plan's `seats` say how many sessions may read at once).
        seat_hold_secs: i64 = "PAYWALL_SEAT_HOLD_SECS" ("900") => read::number(1, 86_400), show::plain;
    }
    accounts {
        /// `open`: anyone may register; `closed`: 403 registration_closed.
        registration_open: bool = "PAYWALL_REGISTRATION" ("open") => read::either("open", "closed"), show::open_or_closed;
        /// The admin `paywall serve` creates when no active admin exists.
        admin_email: Option<String> = "PAYWALL_ADMIN_EMAIL" ("") => read::admin_email, show::optional;
        /// That admin's password.
        admin_password: Option<String> = "PAYWALL_ADMIN_PASSWORD" ("") => read::admin_password, show::secret, secret;
        /// Failed sign-ins per email and client address within the window.
        login_max_failures: u32 = "PAYWALL_LOGIN_MAX_FAILURES" ("5") => read::number(1, 10_000), show::plain;
        /// The sign-in failure window, in seconds.
        login_window_secs: u64 = "PAYWALL_LOGIN_WINDOW_SECS" ("900") => read::number(1, 86_400), show::plain;
        /// Failed sign-ins per client address within the window, for any email.
        login_max_failures_per_address: u32 = "PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS" ("50") => read::number(1, 1_000_000), show::plain;
        /// Registrations and reset requests per client address per hour.
        signups_per_address_per_hour: u32 = "PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR" ("20") => read::number(1, 1_000_000), show::plain;
    }
    mail {
        /// smtp:// or smtps:// relay for reset mail (unset: no mail is sent).
        smtp_url: Option<String> = "PAYWALL_SMTP_URL" ("") => read::smtp_url, show::optional_url;
        /// The From of reset mail; required with PAYWALL_SMTP_URL.
        mail_from: Option<String> = "PAYWALL_MAIL_FROM" ("") => read::mail_from, show::optional;
    }
    billing {
        /// Stripe's webhook signing secrets (`whsec_...`), comma-separated: several while
        /// one is rotated (unset: every delivery is refused).
        stripe_webhook_secrets: Vec<String> = "PAYWALL_STRIPE_WEBHOOK_SECRETS" ("") => read::stripe_webhook_secrets, show::count, secret;
        /// The Stripe customer portal's login link (unset: GET /v1/me/billing is 404).
        stripe_portal_url: Option<String> = "PAYWALL_STRIPE_PORTAL_URL" ("") => read::https_url, show::optional;
        /// Days a `past_due` subscription still reads after its period's end.
        billing_grace_days: i64 = "PAYWALL_BILLING_GRACE_DAYS" ("3") => read::number(0, 365), show::plain;
    }
    webhooks {
        /// `true`: webhook endpoints may be loopback or private addresses (a receiver on
        /// the same host or network); `false` refuses them, against server-side request
        /// forgery.
        webhook_allow_private: bool = "PAYWALL_WEBHOOK_ALLOW_PRIVATE" ("false") => read::either("true", "false"), show::true_or_false;
        /// Seconds an endpoint has to answer a delivery before it counts as failed.
        webhook_timeout_secs: u64 = "PAYWALL_WEBHOOK_TIMEOUT_SECS" ("10") => read::number(1, 120), show::plain;
        /// Seconds a delivery is retried for (with exponential backoff and jitter) before
        /// it is given up as failed.
        webhook_retry_secs: i64 = "PAYWALL_WEBHOOK_RETRY_SECS" ("86400") => read::number(1, 604_800), show::plain;
    }
    site {
        /// `on`: serve the reader's website (pages at /, /articles/{slug}, /signin ...).
        site: bool = "PAYWALL_SITE" ("off") => read::either("on", "off"), show::on_or_off;
        /// `en` or `fr`: pages for readers whose browser asks for neither, and the API's
        /// paywall messages.
        language: crate::domain::Language = "PAYWALL_LANGUAGE" ("en") => read::language, show::plain;
        /// Files of search engines' published crawler address ranges (JSON with
        /// `prefixes` of `ipv4Prefix`/`ipv6Prefix`), comma-separated: those addresses
        /// read full text, marked for them. Never recognised by user agent.
        crawler_ranges: Vec<ipnet::IpNet> = "PAYWALL_CRAWLER_RANGES" ("") => read::crawler_ranges, show::ranges;
    }
    web {
        /// The base of the links handed out (default: http://{PAYWALL_BIND}).
        public_url: Option<String> = "PAYWALL_PUBLIC_URL" ("") => read::public_url, show::optional;
        /// Reverse proxies whose X-Forwarded-For is read for the client address.
        trusted_proxies: Vec<ipnet::IpNet> = "PAYWALL_TRUSTED_PROXIES" ("") => read::trusted_proxies, show::list;
        /// Origins granted cross-origin browser access with credentials.
        cors_origins: Vec<String> = "PAYWALL_CORS_ORIGINS" ("") => read::cors_origins, show::list;
    }
    logs {
        /// tracing's EnvFilter syntax, such as `info` or `paywall=debug,info`.
        log: String = "PAYWALL_LOG" ("info") => read::log_filter, show::plain;
        /// `text` or `json`.
        log_format: LogFormat = "PAYWALL_LOG_FORMAT" ("text") => read::log_format, show::log_format;
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("teaser_ratio", &self.teaser_ratio)
            .field("registration_open", &self.registration_open)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the process environment (after `.env` has been loaded by the caller).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// What no single variable can check alone.
    fn check_together(&self) -> Result<(), ConfigError> {
        if self.smtp_url.is_some() && self.mail_from.is_none() {
            return Err(bad(
                "PAYWALL_MAIL_FROM",
                "must be set when PAYWALL_SMTP_URL is, such as news@example.org",
            ));
        }
        Ok(())
    }

    /// A warning for each `PAYWALL_*` name among `names` that is no setting (a typo
    /// would otherwise be ignored in silence), naming the closest setting when one is
    /// near. `PAYWALL_TEST_*` names belong to the test suite and are passed over.
    pub fn unknown_names(&self, names: impl IntoIterator<Item = String>) -> Vec<String> {
        let known: Vec<&'static str> = SETTINGS.iter().map(|s| s.name).collect();
        let mut warnings: Vec<String> = names
            .into_iter()
            .filter(|name| name.starts_with("PAYWALL_") && !name.starts_with("PAYWALL_TEST_"))
            .filter(|name| !known.contains(&name.as_str()))
            .map(|name| {
                // Compared without the prefix every name shares.
                let bare = |n: &str| n.trim_start_matches("PAYWALL_").to_string();
                let closest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(&bare(&name), &bare(k)), *k))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(score, _)| *score >= 0.88);
                match closest {
                    Some((_, setting)) => {
                        format!("{name} is not a setting and is ignored; did you mean {setting}?")
                    }
                    None => format!("{name} is not a setting and is ignored"),
                }
            })
            .collect();
        warnings.sort();
        warnings
    }

    /// The sign-in and registration allowances, for `Throttle::new`.
    pub fn throttle_limits(&self) -> crate::auth::throttle::ThrottleLimits {
        crate::auth::throttle::ThrottleLimits {
            login_max_failures: self.login_max_failures,
            login_max_failures_per_address: self.login_max_failures_per_address,
            login_window_secs: self.login_window_secs,
            signups_per_address_per_hour: self.signups_per_address_per_hour,
        }
    }

    /// The pool limits for `Store::connect_with`.
    pub fn pools(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: self.db_max_connections,
            leave_checkpoints: false,
            acquire_timeout: std::time::Duration::from_secs(self.db_acquire_timeout_secs),
            statement_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
        }
    }

    /// What the engine's caches may hold (`PAYWALL_CACHE_MIB`).
    pub fn cache_budget(&self) -> crate::engine::CacheBudget {
        crate::engine::CacheBudget::of_mib(self.cache_mib)
    }

    /// The path of the SQLite file, if the URL names one (not `:memory:`).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        crate::store::sqlite_file_of(&self.database_url)
    }
}

/// Hides a password in a database URL (`postgres://user:secret@host`).
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<redacted>@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A CIDR block, or a single address as the block of just that address.
fn parse_net(value: &str) -> Option<ipnet::IpNet> {
    value.parse::<ipnet::IpNet>().ok().or_else(|| {
        value
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&move |name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://paywall.db");
        assert_eq!(s.access_token_ttl_secs, 900);
        assert_eq!(s.refresh_token_ttl_secs, 2_592_000);
        assert_eq!(s.teaser_ratio, 0.40);
        assert_eq!((s.meter_anonymous, s.meter_registered), (3, 5));
        assert_eq!(s.meter_unidentified_per_day, 10);
        assert_eq!((s.gifts_per_month, s.gift_ttl_secs), (10, 2_592_000));
        assert!(s.registration_open);
        assert_eq!((s.login_max_failures, s.login_window_secs), (5, 900));
        assert_eq!(s.login_max_failures_per_address, 50);
        assert_eq!(s.signups_per_address_per_hour, 20);
        assert_eq!(s.log, "info");
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.jwt_secret.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PAYWALL_BIND", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("PAYWALL_JWT_SECRET", "short"),
            ("PAYWALL_TEASER_RATIO", "1.5"),
            ("PAYWALL_TEASER_RATIO", "0"),
            ("PAYWALL_TEASER_RATIO", "abc"),
            ("PAYWALL_ACCESS_TOKEN_TTL_SECS", "-1"),
            ("PAYWALL_REGISTRATION", "maybe"),
            ("PAYWALL_LOG_FORMAT", "xml"),
            ("PAYWALL_ADMIN_EMAIL", "not-an-email"),
            ("PAYWALL_ADMIN_PASSWORD", "short"),
            ("PAYWALL_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("PAYWALL_PUBLIC_URL", "ftp://x"),
            ("PAYWALL_WORKERS", "0"),
            ("PAYWALL_HASH_THREADS", "0"),
            ("PAYWALL_HASH_THREADS", "many"),
            ("PAYWALL_CACHE_MIB", "2"),
            ("PAYWALL_CACHE_MIB", "-1"),
            ("PAYWALL_SMTP_URL", "mail.example.org"),
        ] {
            let error = settings(&[(name, value)]).err().unwrap_or_else(|| {
                panic!("{name}={value} was accepted");
            });
            assert_eq!(error.name, name, "{value}");
            assert!(error.to_string().starts_with(name));
        }
    }

    #[test]
    fn hashing_threads_default_to_the_cores_and_the_caches_to_42_mib() {
        let defaults = settings(&[]).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!((defaults.hash_threads, defaults.cache_mib), (cores, 42));
        let set = settings(&[("PAYWALL_HASH_THREADS", "1"), ("PAYWALL_CACHE_MIB", "8")]).unwrap();
        assert_eq!((set.hash_threads, set.cache_mib), (1, 8));
        assert_eq!(set.cache_budget(), crate::engine::CacheBudget::of_mib(8));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = settings(&[
            (
                "PAYWALL_JWT_SECRET",
                "0123456789abcdef0123456789abcdef-secret",
            ),
            ("PAYWALL_ADMIN_PASSWORD", "admin-password-123"),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("0123456789abcdef"));
        assert!(!printed.contains("admin-password"));
    }

    #[test]
    fn trusted_proxies_take_blocks_and_addresses() {
        let s = settings(&[("PAYWALL_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1,::1")]).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[1].contains(&"192.0.2.1".parse::<std::net::IpAddr>().unwrap()));
    }

    #[test]
    fn check_config_lists_every_setting_without_secrets() {
        let s = settings(&[
            (
                "PAYWALL_JWT_SECRET",
                "0123456789abcdef0123456789abcdef-secret",
            ),
            ("PAYWALL_ADMIN_PASSWORD", "admin-password-123"),
            (
                "PAYWALL_SMTP_URL",
                "smtp://user:mailpass@mail.example.org:587",
            ),
            ("PAYWALL_MAIL_FROM", "news@example.org"),
        ])
        .unwrap();
        let described = s.describe();
        let text: String = described
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        assert!(
            !text.contains("0123456789abcdef")
                && !text.contains("admin-password")
                && !text.contains("mailpass")
        );
        assert!(text.contains("PAYWALL_SMTP_URL=smtp://<redacted>@mail.example.org:587"));
        // Every variable .env.example documents is listed.
        let example = include_str!("../.env.example");
        for line in example.lines() {
            let name = line
                .trim_start_matches("# ")
                .split('=')
                .next()
                .unwrap_or("");
            if name.starts_with("PAYWALL_") || name == "DATABASE_URL" {
                assert!(
                    described.iter().any(|(k, _)| *k == name),
                    "{name} missing from check-config"
                );
            }
        }
    }

    #[test]
    fn sqlite_paths() {
        let s = settings(&[("DATABASE_URL", "sqlite:///tmp/x.db?mode=rwc")]).unwrap();
        assert_eq!(
            s.sqlite_path().unwrap(),
            std::path::PathBuf::from("/tmp/x.db")
        );
        let s = settings(&[("DATABASE_URL", "sqlite::memory:")]).unwrap();
        assert!(s.sqlite_path().is_none());
    }

    #[test]
    fn every_declared_setting_is_in_env_example_with_its_default() {
        let example = include_str!("../.env.example");
        for setting in SETTINGS {
            let assigned = format!("{}=", setting.name);
            match example.lines().find(|line| line.starts_with(&assigned)) {
                Some(line) => assert_eq!(
                    &line[assigned.len()..],
                    setting.default,
                    "{} in .env.example is not its declared default",
                    setting.name
                ),
                None => assert!(
                    example
                        .lines()
                        .any(|line| line.starts_with(&format!("# {assigned}"))),
                    "{} is not in .env.example",
                    setting.name
                ),
            }
            assert!(!setting.doc.is_empty(), "{} has no doc", setting.name);
        }
        // And every variable .env.example sets or shows is declared.
        for line in example.lines() {
            let name = line
                .trim_start_matches("# ")
                .split('=')
                .next()
                .unwrap_or("");
            if line.contains('=') && (name.starts_with("PAYWALL_") || name == "DATABASE_URL") {
                assert!(
                    SETTINGS.iter().any(|s| s.name == name),
                    "{name} is in .env.example but declared nowhere"
                );
            }
        }
        let described: Vec<&str> = settings(&[])
            .unwrap()
            .describe()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let declared: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(
            described, declared,
            "check-config lists the declaration, in its order"
        );
    }

    #[test]
    fn no_secret_is_ever_shown() {
        // Shaped to pass every secret's own check (Stripe's start with whsec_).
        const MARK: &str = "whsec_a-secret-value-0123456789abcdefghijkl";
        let secrets: Vec<(&str, &str)> = SETTINGS
            .iter()
            .filter(|s| s.secret)
            .map(|s| (s.name, MARK))
            .collect();
        assert!(secrets.len() >= 3, "the secrets are declared as such");
        let s = settings(&secrets).unwrap();
        for (name, shown) in s.describe() {
            assert!(!shown.contains(MARK), "{name} shows its secret");
        }
        assert!(!format!("{s:?}").contains(MARK));
    }
}
