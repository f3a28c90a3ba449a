//! Settings from the environment (and `.env`), validated once at start-up. A bad value
//! stops start-up with a message that names the variable.

use std::net::SocketAddr;

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

/// Every setting the service reads. `Debug` never prints secrets.
#[derive(Clone)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    /// Connections at most (0: the backend's default) and how long to wait for one.
    pub db_max_connections: u32,
    pub db_acquire_timeout_secs: u64,
    pub jwt_secret: Option<String>,
    pub jwt_previous_secrets: Vec<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: i64,
    /// The absolute lifetime of a session (and so of its refresh tokens).
    pub refresh_token_ttl_secs: i64,
    /// A session unused (not refreshed) for this long ends.
    pub session_idle_secs: i64,
    pub teaser_ratio: f64,
    pub meter_anonymous: u32,
    pub meter_registered: u32,
    pub meter_unidentified_per_day: u32,
    pub gifts_per_month: u32,
    pub gift_ttl_secs: i64,
    pub registration_open: bool,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    pub login_max_failures_per_address: u32,
    pub signups_per_address_per_hour: u32,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub cors_origins: Vec<String>,
    pub workers: usize,
    /// How long a stop (SIGTERM, SIGINT) waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// The longest a request may take before it is answered 503 `unavailable`
    /// (`PAYWALL_REQUEST_TIMEOUT_SECS`): a frozen database holds no reader for ever.
    pub request_timeout_secs: u64,
    /// How long answers may wait to leave before the connection is closed
    /// (`PAYWALL_WRITE_TIMEOUT_SECS`): a client that never reads holds no memory for ever.
    pub write_timeout_secs: u64,
    pub log: String,
    pub log_format: LogFormat,
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
    /// Every setting as `(variable, effective value)`, secrets masked: what
    /// `paywall check-config` prints.
    /// A warning for each `PAYWALL_*` name among `names` that is no setting (a typo
    /// would otherwise be ignored in silence), naming the closest setting when one is
    /// near. `PAYWALL_TEST_*` names belong to the test suite and are passed over.
    pub fn unknown_names(&self, names: impl IntoIterator<Item = String>) -> Vec<String> {
        let known: Vec<&'static str> = self.describe().into_iter().map(|(name, _)| name).collect();
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

    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let secret = |v: &Option<String>| {
            if v.is_some() {
                "<set>".to_string()
            } else {
                "<unset>".to_string()
            }
        };
        let optional = |v: &Option<String>| v.clone().unwrap_or_else(|| "<unset>".to_string());
        let joined = |v: Vec<String>| {
            if v.is_empty() {
                "<none>".to_string()
            } else {
                v.join(",")
            }
        };
        vec![
            ("PAYWALL_BIND", self.bind.clone()),
            ("DATABASE_URL", redact_url(&self.database_url)),
            (
                "PAYWALL_DB_MAX_CONNECTIONS",
                match self.db_max_connections {
                    0 => "0 (two per core for SQLite reads, 10 for PostgreSQL)".to_string(),
                    n => n.to_string(),
                },
            ),
            (
                "PAYWALL_DB_ACQUIRE_TIMEOUT_SECS",
                self.db_acquire_timeout_secs.to_string(),
            ),
            (
                "PAYWALL_JWT_SECRET",
                if let Some(secret) = &self.jwt_secret {
                    // The key id (as in tokens' `kid`) tells whether instances share one
                    // secret without showing it.
                    format!(
                        "<set, key id {}>",
                        crate::auth::tokens::key_id(secret.as_bytes())
                    )
                } else {
                    "<unset: generated and kept beside the SQLite file>".to_string()
                },
            ),
            (
                "PAYWALL_JWT_PREVIOUS_SECRETS",
                format!("<{} set>", self.jwt_previous_secrets.len()),
            ),
            ("PAYWALL_JWT_ISSUER", self.jwt_issuer.clone()),
            ("PAYWALL_JWT_AUDIENCE", self.jwt_audience.clone()),
            (
                "PAYWALL_ACCESS_TOKEN_TTL_SECS",
                self.access_token_ttl_secs.to_string(),
            ),
            (
                "PAYWALL_REFRESH_TOKEN_TTL_SECS",
                self.refresh_token_ttl_secs.to_string(),
            ),
            (
                "PAYWALL_SESSION_IDLE_SECS",
                self.session_idle_secs.to_string(),
            ),
            ("PAYWALL_TEASER_RATIO", self.teaser_ratio.to_string()),
            ("PAYWALL_METER_ANONYMOUS", self.meter_anonymous.to_string()),
            (
                "PAYWALL_METER_REGISTERED",
                self.meter_registered.to_string(),
            ),
            (
                "PAYWALL_METER_UNIDENTIFIED_PER_DAY",
                self.meter_unidentified_per_day.to_string(),
            ),
            ("PAYWALL_GIFTS_PER_MONTH", self.gifts_per_month.to_string()),
            ("PAYWALL_GIFT_TTL_SECS", self.gift_ttl_secs.to_string()),
            (
                "PAYWALL_REGISTRATION",
                (if self.registration_open {
                    "open"
                } else {
                    "closed"
                })
                .to_string(),
            ),
            ("PAYWALL_ADMIN_EMAIL", optional(&self.admin_email)),
            ("PAYWALL_ADMIN_PASSWORD", secret(&self.admin_password)),
            (
                "PAYWALL_LOGIN_MAX_FAILURES",
                self.login_max_failures.to_string(),
            ),
            (
                "PAYWALL_LOGIN_WINDOW_SECS",
                self.login_window_secs.to_string(),
            ),
            (
                "PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS",
                self.login_max_failures_per_address.to_string(),
            ),
            (
                "PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR",
                self.signups_per_address_per_hour.to_string(),
            ),
            (
                "PAYWALL_SMTP_URL",
                self.smtp_url
                    .as_deref()
                    .map_or("<unset>".to_string(), redact_url),
            ),
            ("PAYWALL_MAIL_FROM", optional(&self.mail_from)),
            ("PAYWALL_PUBLIC_URL", optional(&self.public_url)),
            (
                "PAYWALL_TRUSTED_PROXIES",
                joined(self.trusted_proxies.iter().map(|n| n.to_string()).collect()),
            ),
            ("PAYWALL_CORS_ORIGINS", joined(self.cors_origins.clone())),
            ("PAYWALL_WORKERS", self.workers.to_string()),
            (
                "PAYWALL_SHUTDOWN_TIMEOUT_SECS",
                self.shutdown_timeout_secs.to_string(),
            ),
            (
                "PAYWALL_REQUEST_TIMEOUT_SECS",
                self.request_timeout_secs.to_string(),
            ),
            (
                "PAYWALL_WRITE_TIMEOUT_SECS",
                self.write_timeout_secs.to_string(),
            ),
            ("PAYWALL_LOG", self.log.clone()),
            (
                "PAYWALL_LOG_FORMAT",
                (match self.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                })
                .to_string(),
            ),
        ]
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

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn text(get: Lookup, name: &'static str, default: &str) -> String {
    optional(get, name).unwrap_or_else(|| default.to_string())
}

/// An unset or blank variable counts as unset.
fn optional(get: Lookup, name: &'static str) -> Option<String> {
    get(name)
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    get: Lookup,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let Some(raw) = optional(get, name) else {
        return Ok(default);
    };
    let value: T = raw
        .parse()
        .map_err(|_| bad(name, format!("{raw:?} is not a number")))?;
    if value < min || value > max {
        return Err(bad(
            name,
            format!("{value} is out of range ({min} to {max})"),
        ));
    }
    Ok(value)
}

fn list(get: Lookup, name: &'static str) -> Vec<String> {
    optional(get, name)
        .map(|raw| {
            raw.split(',')
                .map(|item| item.trim().to_string())
                .filter(|item| !item.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

impl Settings {
    /// Reads the process environment (after `.env` has been loaded by the caller).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads settings through `get`, so tests can supply their own variables.
    pub fn from_lookup(get: Lookup) -> Result<Self, ConfigError> {
        let bind = text(get, "PAYWALL_BIND", "127.0.0.1:8080");
        bind.parse::<SocketAddr>().map_err(|_| {
            bad(
                "PAYWALL_BIND",
                format!("{bind:?} is not an address and port such as 127.0.0.1:8080"),
            )
        })?;

        let database_url = text(get, "DATABASE_URL", "sqlite://paywall.db");
        crate::store::Backend::of_url(&database_url).ok_or_else(|| {
            bad(
                "DATABASE_URL",
                "must be a sqlite:// URL (for example sqlite://paywall.db) or a postgres:// URL \
                 (for example postgres://paywall@db.internal/paywall)",
            )
        })?;

        let jwt_secret = optional(get, "PAYWALL_JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < 32 {
                return Err(bad(
                    "PAYWALL_JWT_SECRET",
                    format!(
                        "must be at least 32 bytes long (it is {} bytes)",
                        secret.len()
                    ),
                ));
            }
        }

        let jwt_previous_secrets = list(get, "PAYWALL_JWT_PREVIOUS_SECRETS");
        if let Some(short) = jwt_previous_secrets.iter().find(|s| s.len() < 32) {
            return Err(bad(
                "PAYWALL_JWT_PREVIOUS_SECRETS",
                format!(
                    "every secret must be at least 32 bytes long (one is {} bytes)",
                    short.len()
                ),
            ));
        }

        let teaser_ratio = number(get, "PAYWALL_TEASER_RATIO", 0.40_f64, 0.0, 1.0)?;
        if !(teaser_ratio > 0.0 && teaser_ratio < 1.0) {
            return Err(bad(
                "PAYWALL_TEASER_RATIO",
                "must be strictly between 0 and 1, such as 0.40",
            ));
        }

        let registration_open = match text(get, "PAYWALL_REGISTRATION", "open")
            .to_ascii_lowercase()
            .as_str()
        {
            "open" => true,
            "closed" => false,
            other => {
                return Err(bad(
                    "PAYWALL_REGISTRATION",
                    format!("{other:?} is neither \"open\" nor \"closed\""),
                ))
            }
        };

        let admin_email = optional(get, "PAYWALL_ADMIN_EMAIL");
        if let Some(email) = &admin_email {
            crate::domain::Email::parse(email)
                .map_err(|message| bad("PAYWALL_ADMIN_EMAIL", message))?;
        }
        // Passwords are not trimmed: what is typed is what counts.
        let admin_password = get("PAYWALL_ADMIN_PASSWORD").filter(|p| !p.is_empty());
        if let Some(password) = &admin_password {
            crate::domain::Password::parse_length(password)
                .map_err(|message| bad("PAYWALL_ADMIN_PASSWORD", message))?;
        }

        let log_format = match text(get, "PAYWALL_LOG_FORMAT", "text")
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "PAYWALL_LOG_FORMAT",
                    format!("{other:?} is neither \"text\" nor \"json\""),
                ))
            }
        };
        let log = text(get, "PAYWALL_LOG", "info");
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| bad("PAYWALL_LOG", format!("{log:?} is not a log filter: {e}")))?;

        let smtp_url = optional(get, "PAYWALL_SMTP_URL");
        let mail_from = optional(get, "PAYWALL_MAIL_FROM");
        if let Some(from) = &mail_from {
            from.parse::<lettre::message::Mailbox>().map_err(|e| {
                bad(
                    "PAYWALL_MAIL_FROM",
                    format!("{from:?} is not a mail address such as \"Newsroom <news@example.org>\": {e}"),
                )
            })?;
        }
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(bad(
                    "PAYWALL_SMTP_URL",
                    "must start with smtp:// or smtps://, such as smtp://mail.example.org:587?tls=required",
                ));
            }
            if mail_from.is_none() {
                return Err(bad(
                    "PAYWALL_MAIL_FROM",
                    "must be set when PAYWALL_SMTP_URL is, such as news@example.org",
                ));
            }
        }
        let public_url =
            optional(get, "PAYWALL_PUBLIC_URL").map(|url| url.trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "PAYWALL_PUBLIC_URL",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }

        let trusted_proxies = list(get, "PAYWALL_TRUSTED_PROXIES")
            .iter()
            .map(|item| {
                parse_net(item).ok_or_else(|| {
                    bad(
                        "PAYWALL_TRUSTED_PROXIES",
                        format!("{item:?} is not an address or CIDR block such as 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Kept as browsers send them in `Origin`: scheme and host, lowercase, no path.
        let cors_origins = list(get, "PAYWALL_CORS_ORIGINS")
            .iter()
            .map(|origin| {
                let trimmed = origin.trim_end_matches('/');
                crate::domain::origin_of(trimmed)
                    .filter(|o| o.len() == trimmed.len())
                    .ok_or_else(|| {
                        bad(
                            "PAYWALL_CORS_ORIGINS",
                            format!("{origin:?} is not an origin such as https://news.example (scheme and host, no path)"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let default_workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);

        Ok(Settings {
            bind,
            database_url,
            db_max_connections: number(get, "PAYWALL_DB_MAX_CONNECTIONS", 0, 0, 1_000)?,
            db_acquire_timeout_secs: number(get, "PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", 5, 1, 600)?,
            jwt_secret,
            jwt_previous_secrets,
            jwt_issuer: text(get, "PAYWALL_JWT_ISSUER", "paywall"),
            jwt_audience: text(get, "PAYWALL_JWT_AUDIENCE", "paywall"),
            access_token_ttl_secs: number(get, "PAYWALL_ACCESS_TOKEN_TTL_SECS", 900, 30, 86_400)?,
            refresh_token_ttl_secs: number(
                get,
                "PAYWALL_REFRESH_TOKEN_TTL_SECS",
                2_592_000,
                1,
                31_622_400,
            )?,
            session_idle_secs: number(get, "PAYWALL_SESSION_IDLE_SECS", 604_800, 1, 31_622_400)?,
            teaser_ratio,
            meter_anonymous: number(get, "PAYWALL_METER_ANONYMOUS", 3, 0, 1_000)?,
            meter_registered: number(get, "PAYWALL_METER_REGISTERED", 5, 0, 1_000)?,
            meter_unidentified_per_day: number(
                get,
                "PAYWALL_METER_UNIDENTIFIED_PER_DAY",
                10,
                0,
                100_000,
            )?,
            gifts_per_month: number(get, "PAYWALL_GIFTS_PER_MONTH", 10, 0, 10_000)?,
            gift_ttl_secs: number(get, "PAYWALL_GIFT_TTL_SECS", 2_592_000, 60, 31_622_400)?,
            registration_open,
            admin_email,
            admin_password,
            login_max_failures: number(get, "PAYWALL_LOGIN_MAX_FAILURES", 5, 1, 10_000)?,
            login_window_secs: number(get, "PAYWALL_LOGIN_WINDOW_SECS", 900, 1, 86_400)?,
            login_max_failures_per_address: number(
                get,
                "PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS",
                50,
                1,
                1_000_000,
            )?,
            signups_per_address_per_hour: number(
                get,
                "PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR",
                20,
                1,
                1_000_000,
            )?,
            smtp_url,
            mail_from,
            public_url,
            trusted_proxies,
            cors_origins,
            workers: number(get, "PAYWALL_WORKERS", default_workers, 1, 1_024)?,
            shutdown_timeout_secs: number(get, "PAYWALL_SHUTDOWN_TIMEOUT_SECS", 30, 1, 3_600)?,
            request_timeout_secs: number(get, "PAYWALL_REQUEST_TIMEOUT_SECS", 10, 1, 600)?,
            write_timeout_secs: number(get, "PAYWALL_WRITE_TIMEOUT_SECS", 30, 1, 3_600)?,
            log,
            log_format,
        })
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

    /// The path of the SQLite file, if the URL names one (not `:memory:`).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        crate::store::sqlite_file_of(&self.database_url)
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
}
