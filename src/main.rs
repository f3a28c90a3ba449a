//! The `paywall` command line: parse, load settings, call into the library.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paywall::config::Settings;
use paywall::startup::{self, AdminCreated, Application};

#[derive(Parser)]
#[command(name = "paywall", version, about = "A metered paywall service for newsrooms", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, create the admin named by PAYWALL_ADMIN_EMAIL if none exists, and serve HTTP on PAYWALL_BIND.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an admin account. The password comes from PAYWALL_ADMIN_PASSWORD, else from the first line of standard input.
    CreateAdmin {
        /// The new admin's email address.
        #[arg(long)]
        email: String,
    },
    /// Import accounts from CSV (with a header row) or JSON Lines: email, display_name, role (reader, editor, admin; subscriber and administrator as WordPress names them), status, subscription_plan, subscription_started_at, subscription_expires_at, created_at (RFC 3339, or a date alone) and optionally password_hash (Argon2 PHC, bcrypt, or WordPress's $P$ and $wp$). Existing emails are updated. Prints one line per input line (created, updated, or refused and why) and exits 1 if any line was refused.
    ImportAccounts {
        /// The file to read.
        file: String,
        /// csv or jsonl; by default taken from the file's extension.
        #[arg(long)]
        format: Option<String>,
        /// Leave out columns this service does not know (named once in the report) instead of refusing the file.
        #[arg(long)]
        ignore_unknown: bool,
    },
    /// Import articles from JSON Lines (the fields of POST /v1/admin/articles, plus external_id, canonical_url and body_html), a WordPress export (WXR) or a Ghost export. HTML is converted to Markdown; an item whose external_id was imported before updates that article. Prints each item that could not be imported with its position, then a summary; exits 1 if any was refused. A progress bar is drawn on a terminal.
    ImportArticles {
        /// The file to read.
        file: String,
        /// jsonl, wordpress or ghost; by default taken from the file's extension (.jsonl, .xml, .json).
        #[arg(long)]
        format: Option<String>,
        /// The access level of new articles whose item names none (WordPress items never do): free, registered, metered or subscribers.
        #[arg(long, default_value = "metered")]
        access: String,
        /// The section of new articles whose item names none (a WordPress post without a category).
        #[arg(long, default_value = "news")]
        section: String,
    },
    /// Export every account, oldest first, in the import format (to standard output unless --output is given).
    ExportAccounts {
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Include password hashes (they are left out unless asked for).
        #[arg(long)]
        with_password_hashes: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<String>,
    },
    /// Write a consistent copy of the SQLite database to PATH while it serves (refuses an existing file), and check the copy's integrity.
    Backup {
        /// Where to write the copy.
        path: String,
    },
    /// Replace the SQLite database with the backup at PATH after checking its integrity. Refused while a `paywall serve` uses the database.
    Restore {
        /// The backup to restore.
        path: String,
    },
    /// Copy every table of the SQLite database (DATABASE_URL) into the empty PostgreSQL database at URL, in one transaction, after applying its migrations; then point DATABASE_URL at URL. Reads one consistent snapshot, so the source may still be serving, but writes made after the copy began stay behind: stop the service first.
    MigrateTo {
        /// The PostgreSQL database to fill, e.g. postgres://paywall:secret@db.internal/paywall.
        url: String,
    },
    /// Print every setting's effective value (secrets masked; the signing secret by its key id, to compare instances) and warn of PAYWALL_* names that are no setting; a bad setting exits with status 2 and names it.
    CheckConfig {
        /// Also connect to the database and say whether it answers and how many migrations are pending (exit 1 if it does not answer).
        #[arg(long)]
        connect: bool,
    },
    /// Serve a fresh demo database (in a new temporary folder) with sample articles of every access level, and print an admin, a subscriber and a reader login.
    Demo,
}

/// glibc's malloc, set before any thread starts: two arenas, not up to eight per core
/// (each thread that allocates would otherwise get one, and keep its free memory), and a
/// fixed mmap threshold, so that large blocks (Argon2's 19 MiB) go back to the system
/// when freed instead of raising the threshold and staying in a heap, fragmented.
/// Measured in bench/RESULTS.md ("Memory"). `MALLOC_ARENA_MAX` and
/// `MALLOC_MMAP_THRESHOLD_` in the environment still take precedence.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |variable: &str| std::env::var_os(variable).is_some();
        // SAFETY: mallopt only reads its two integers; it runs here, before any other
        // thread exists, as glibc requires for these parameters.
        unsafe {
            if !set("MALLOC_ARENA_MAX") {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if !set("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
            }
        }
    }
}

/// Reads a file's articles into the database, with a progress bar on a terminal.
async fn import_articles(
    settings: Settings,
    file: String,
    format: Option<String>,
    access: String,
    section: String,
) -> Result<(), String> {
    use paywall::app::import::{self, Format, Source};
    let format = Format::choose(format.as_deref(), &file)?;
    let access = paywall::domain::AccessLevel::parse(&access).ok_or_else(|| {
        format!("--access {access:?} is not one of free, registered, metered, subscribers")
    })?;
    let section = section.trim().to_string();
    if section.is_empty() || section.chars().count() > 64 {
        return Err("--section must be 1 to 64 characters".into());
    }
    let opened = std::fs::File::open(&file).map_err(|e| format!("{file}: {e}"))?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:30}] {bytes}/{total_bytes} · {msg} · {elapsed} (about {eta} left)",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    let reader = std::io::BufReader::with_capacity(256 * 1024, bar.wrap_read(opened));
    let mut source: Box<dyn Source> = match format {
        Format::Jsonl => Box::new(import::JsonLines::new(reader)),
        Format::WordPress => Box::new(import::Wxr::new(reader)),
        Format::Ghost => Box::new(import::Ghost::read(reader).map_err(|e| format!("{file}: {e}"))?),
    };
    let store = startup::open_store(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let options = import::Options {
        access,
        section,
        default_ratio: settings.teaser_ratio,
    };
    let stdout = std::io::stdout();
    let mut report = std::io::LineWriter::new(stdout.lock());
    let progress_bar = bar.clone();
    let mut progress = move |items: u64| progress_bar.set_message(format!("{items} items"));
    let outcome = import::import(
        &store,
        &options,
        source.as_mut(),
        &mut report,
        &mut progress,
    )
    .await;
    bar.finish_and_clear();
    drop(report);
    store.close().await;
    let summary = outcome.map_err(|e| format!("{file}: {e}"))?;
    println!(
        "created {}, updated {}, refused {}, skipped {} (not articles)",
        summary.created, summary.updated, summary.refused, summary.skipped
    );
    if summary.refused > 0 {
        return Err(format!(
            "{} item(s) refused; the others were imported",
            summary.refused
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    // A missing .env is normal; a broken one is reported.
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("paywall: .env: {error}");
            return ExitCode::from(2);
        }
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("paywall: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    paywall::telemetry::init(&settings);
    let runtime = actix_web::rt::System::new();
    let result = runtime.block_on(run(cli.command, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("paywall: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            startup::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?
                .close()
                .await;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { email } => {
            let password = match settings.admin_password.clone() {
                Some(password) => password,
                None => read_password_from_stdin()?,
            };
            let store = startup::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let hasher = startup::hasher_for(&settings).map_err(|e| e.to_string())?;
            let outcome = startup::create_admin(&store, &hasher, &email, &password).await;
            store.close().await;
            match outcome.map_err(|e| e.to_string())? {
                AdminCreated::Created => {
                    println!("admin account created");
                    Ok(())
                }
                AdminCreated::AlreadyExists => {
                    Err("an account with this email already exists".into())
                }
            }
        }
        Command::ImportArticles {
            file,
            format,
            access,
            section,
        } => import_articles(settings, file, format, access, section).await,
        Command::ImportAccounts {
            file,
            format,
            ignore_unknown,
        } => {
            let format = paywall::transfer::Format::choose(format.as_deref(), &file)?;
            let input = std::fs::File::open(&file).map_err(|e| format!("{file}: {e}"))?;
            let store = startup::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let stdout = std::io::stdout();
            let mut report = std::io::BufWriter::new(stdout.lock());
            let outcome = paywall::transfer::import(
                &store,
                std::io::BufReader::new(input),
                format,
                if ignore_unknown {
                    paywall::transfer::Unknown::Ignore
                } else {
                    paywall::transfer::Unknown::Refuse
                },
                &mut report,
            )
            .await;
            drop(report);
            store.close().await;
            let summary = outcome?;
            println!(
                "created {}, updated {}, refused {}",
                summary.created, summary.updated, summary.refused
            );
            if summary.refused > 0 {
                return Err(format!(
                    "{} line(s) refused; the others were imported",
                    summary.refused
                ));
            }
            Ok(())
        }
        Command::ExportAccounts {
            format,
            with_password_hashes,
            output,
        } => {
            let format = paywall::transfer::Format::choose(Some(&format), "")?;
            let store = startup::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let written = match &output {
                Some(path) => {
                    let file = private_file(path).map_err(|e| format!("{path}: {e}"))?;
                    paywall::transfer::export(
                        &store,
                        std::io::BufWriter::new(file),
                        format,
                        with_password_hashes,
                    )
                    .await
                }
                None => {
                    let stdout = std::io::stdout();
                    paywall::transfer::export(
                        &store,
                        std::io::BufWriter::new(stdout.lock()),
                        format,
                        with_password_hashes,
                    )
                    .await
                }
            };
            store.close().await;
            eprintln!("exported {} account(s)", written?);
            Ok(())
        }
        Command::Backup { .. } | Command::Restore { .. } if settings.sqlite_path().is_none() => {
            Err("backup and restore work on a SQLite file; for PostgreSQL use pg_dump and pg_restore (see docs/deployment.md)".into())
        }
        Command::Backup { path } => {
            let target = std::path::PathBuf::from(&path);
            if target.exists() {
                return Err(format!("{path} already exists; choose a new file"));
            }
            let store = startup::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let outcome = store.backup_to(&path).await;
            store.close().await;
            outcome.map_err(|e| format!("backup failed: {e}"))?;
            let check = paywall::store::backup::integrity_check(&target)
                .await
                .map_err(|e| e.to_string())?;
            if check != "ok" {
                return Err(format!(
                    "the copy at {path} fails its integrity check: {check}"
                ));
            }
            println!("backup written to {path} (integrity check: ok)");
            backup_secret(&settings, &target)
        }
        Command::Restore { path } => restore(&settings, &path).await,
        Command::CheckConfig { connect } => {
            for (name, value) in settings.describe() {
                println!("{name}={value}");
            }
            for warning in settings.unknown_names(std::env::vars().map(|(name, _)| name)) {
                eprintln!("paywall: warning: {warning}");
            }
            if settings.jwt_secret.is_none() && settings.sqlite_path().is_none() {
                eprintln!(
                    "paywall: warning: PAYWALL_JWT_SECRET is unset: `paywall serve` on PostgreSQL refuses to start without it"
                );
            }
            if let Some(db) = settings.sqlite_path().filter(|_| settings.jwt_secret.is_none()) {
                let file = paywall::store::backup::secret_file_of(&db);
                if let Ok(secret) = std::fs::read_to_string(&file) {
                    println!(
                        "# the generated secret in {} has key id {}",
                        file.display(),
                        paywall::auth::tokens::key_id(secret.trim().as_bytes())
                    );
                }
            }
            let missing = settings.sqlite_path().filter(|db| !db.exists());
            if let (true, Some(db)) = (connect, &missing) {
                println!(
                    "# database: {} does not exist yet; `paywall serve` or `paywall migrate` creates it",
                    db.display()
                );
            } else if connect {
                let store = paywall::store::Store::connect_with(&settings.database_url, settings.pools())
                    .await
                    .map_err(|e| format!("the database does not answer: {e}"))?;
                let pending = store.pending_migrations().await;
                if store.backend() == paywall::store::Backend::Postgres {
                    if let Ok((lock, statement)) = store.session_timeouts().await {
                        println!("# database: its connections have lock_timeout {lock} and statement_timeout {statement}");
                    }
                }
                store.close().await;
                match pending.map_err(|e| format!("the database does not answer: {e}"))? {
                    0 => println!("# database: answers; every migration is applied"),
                    n => println!("# database: answers; {n} migration(s) pending (`paywall migrate` or `paywall serve` applies them)"),
                }
            }
            Ok(())
        }
        Command::MigrateTo { url } => {
            let copied = paywall::store::copy::sqlite_to_postgres(&settings.database_url, &url)
                .await
                .map_err(|e| e.to_string())?;
            for (table, rows) in copied {
                println!("{table}: {rows} row(s) copied");
            }
            println!("done; set DATABASE_URL to the new database");
            if settings.jwt_secret.is_none() {
                if let Some(db) = settings.sqlite_path() {
                    println!(
                        "sessions stay signed in only if PAYWALL_JWT_SECRET is set to the secret kept in {}.jwt-secret",
                        db.display()
                    );
                }
            }
            Ok(())
        }
        Command::Demo => {
            let (settings, folder) = paywall::demo::prepare(settings)
                .await
                .map_err(|e| e.to_string())?;
            let served = serve(settings).await;
            drop(folder);
            served
        }
    }
}

/// The signing secret also keys meter ids and gift links: a database restored without
/// it would sign every reader out and forget every meter. A generated secret (kept
/// beside the database) is copied beside the backup, 0600; a configured one is named.
fn backup_secret(settings: &Settings, target: &std::path::Path) -> Result<(), String> {
    if settings.jwt_secret.is_some() {
        println!(
            "the signing secret is PAYWALL_JWT_SECRET, set in the environment, and is not in the backup: \
             keep it with the backup, since it also keys meter ids and gift links"
        );
        return Ok(());
    }
    let Some(db) = settings.sqlite_path() else {
        return Ok(());
    };
    let source = paywall::store::backup::secret_file_of(&db);
    let secret = match std::fs::read_to_string(&source) {
        Ok(secret) => secret,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(format!("{}: {error}", source.display())),
    };
    let copy = paywall::store::backup::secret_file_of(target);
    startup::write_private(&copy, &secret).map_err(|e| format!("{}: {e}", copy.display()))?;
    println!(
        "signing secret copied to {} (it also keys meter ids and gift links; keep it as private as the backup)",
        copy.display()
    );
    Ok(())
}

async fn restore(settings: &Settings, path: &str) -> Result<(), String> {
    let db = settings
        .sqlite_path()
        .ok_or("restore needs DATABASE_URL to name a SQLite file")?;
    let lock = paywall::store::backup::serving_lock(&db).map_err(|e| e.to_string())?;
    if lock.try_lock().is_err() {
        return Err(format!(
            "{} is in use by a running paywall serve; stop it first",
            db.display()
        ));
    }
    let source = std::path::Path::new(path);
    let check = paywall::store::backup::integrity_check(source)
        .await
        .map_err(|e| format!("{path} is not a readable SQLite database: {e}"))?;
    if check != "ok" {
        return Err(format!("{path} fails its integrity check: {check}"));
    }
    // The database replaced is kept, whole (its write-ahead log included), beside it.
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut kept = db.clone().into_os_string();
    kept.push(format!(".before-restore-{stamp}"));
    let kept = std::path::PathBuf::from(kept);
    if db.is_file() {
        paywall::store::backup::copy_file_database(&db, &kept)
            .await
            .map_err(|e| {
                format!(
                    "could not keep a copy of {} before restoring: {e}",
                    db.display()
                )
            })?;
        println!("the database replaced is kept as {}", kept.display());
    }
    // Copy beside the target, then rename over it: never a half-written database.
    let mut staging = db.clone().into_os_string();
    staging.push(".restoring");
    std::fs::copy(source, &staging).map_err(|e| e.to_string())?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::rename(&staging, &db).map_err(|e| e.to_string())?;
    println!("{} restored from {path}", db.display());
    // The backup's signing secret, if it has one, comes back with it.
    let secret = paywall::store::backup::secret_file_of(source);
    if secret.is_file() && settings.jwt_secret.is_none() {
        let current = paywall::store::backup::secret_file_of(&db);
        if current.is_file() {
            let mut old = current.clone().into_os_string();
            old.push(format!(".before-restore-{stamp}"));
            std::fs::rename(&current, &old).map_err(|e| e.to_string())?;
        }
        let text =
            std::fs::read_to_string(&secret).map_err(|e| format!("{}: {e}", secret.display()))?;
        startup::write_private(&current, &text)
            .map_err(|e| format!("{}: {e}", current.display()))?;
        println!("signing secret restored from {}", secret.display());
    }
    Ok(())
}

/// A file for account data (and, when asked for, password hashes) that only its owner
/// may read, whatever the umask: created 0600, or cut to nothing and made 0600.
fn private_file(path: &str) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// The new admin's password: typed at the terminal without echo, or the first line
/// of standard input when it is not a terminal (a script's pipe).
fn read_password_from_stdin() -> Result<String, String> {
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password("password for the new admin (not shown): ")
            .map_err(|e| format!("could not read the password: {e}"))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("could not read the password: {e}"))?;
        line
    };
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(
            "no password given (set PAYWALL_ADMIN_PASSWORD or type it on standard input)".into(),
        );
    }
    Ok(password)
}

async fn serve(settings: Settings) -> Result<(), String> {
    for warning in settings.unknown_names(std::env::vars().map(|(name, _)| name)) {
        tracing::warn!("{warning}");
    }
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    // Printed on standard output so scripts and tests can find the port when it was 0.
    println!("paywall listening on http://{}", app.address());
    tracing::info!(address = %app.address(), "serving");
    tokio::spawn(async {
        tokio::time::sleep(STARTUP).await;
        // Reading /proc/self/smaps is file I/O: on the blocking pool, not a runtime thread.
        let _ = tokio::task::spawn_blocking(paywall::memory::let_code_go).await;
    });
    app.run().await.map_err(|e| e.to_string())
}

/// How long after the listener opens the code that only starting needed is let go
/// (see `paywall::memory::let_code_go`).
const STARTUP: std::time::Duration = std::time::Duration::from_secs(5);
