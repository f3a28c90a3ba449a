//! Account import and export for publishers moving from another system: CSV (with a
//! header row) or JSON Lines, with the columns of `COLUMNS`. An export imported into an
//! empty database gives back every account as it was: status, dates and hashes too.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::auth::password::is_supported_hash;
use crate::domain::{parse_display_name, parse_rfc3339, rfc3339};
use crate::domain::{AccountStatus, Email, Role};
use crate::store::AccountRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// From `--format`, else from the file's extension.
    pub fn choose(flag: Option<&str>, path: &str) -> Result<Format, String> {
        let name = match flag {
            Some(flag) => flag.to_ascii_lowercase(),
            None => path.rsplit('.').next().unwrap_or("").to_ascii_lowercase(),
        };
        match name.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json-lines" => Ok(Format::JsonLines),
            _ => Err(format!(
                "cannot tell the format of {path:?}: name it .csv or .jsonl, or pass --format csv|jsonl"
            )),
        }
    }
}

/// Every column, in the order exports write them.
pub const COLUMNS: [&str; 9] = [
    "email",
    "display_name",
    "role",
    "status",
    "subscription_plan",
    "subscription_started_at",
    "subscription_expires_at",
    "created_at",
    "password_hash",
];

/// One line as written in the file; blank values count as absent. Unknown columns are
/// found before this is read (see `read_lines`).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RawAccount {
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub subscription_plan: Option<String>,
    #[serde(default)]
    pub subscription_started_at: Option<String>,
    #[serde(default)]
    pub subscription_expires_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
}

pub use crate::store::accounts::{ImportRecord, ImportedSubscription};

fn blank_to_none(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Role names as other systems export them: WordPress's `subscriber` is a registered
/// reader (payment is the subscription columns' business), `administrator` an admin.
fn import_role(name: &str) -> Option<Role> {
    match name.to_ascii_lowercase().as_str() {
        "subscriber" | "member" => Some(Role::Reader),
        "administrator" => Some(Role::Admin),
        other => Role::parse(other),
    }
}

/// When a date-only value falls in a day: an instant is its start (`2030-01-31` is
/// midnight UTC), an expiry its end (access through 31 January, to midnight UTC after).
#[derive(Clone, Copy)]
enum DateOnly {
    StartOfDay,
    EndOfDay,
}

/// An RFC 3339 date and time, or a date alone (`2030-01-31`), in UTC.
fn parse_instant(text: &str, date_only: DateOnly) -> Option<i64> {
    if let Some(instant) = parse_rfc3339(text) {
        return Some(instant);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Some(match date_only {
        DateOnly::StartOfDay => start,
        DateOnly::EndOfDay => start + 86_400,
    })
}

fn instant_field(
    name: &str,
    value: Option<String>,
    date_only: DateOnly,
) -> Result<Option<i64>, String> {
    blank_to_none(value)
        .map(|t| {
            parse_instant(&t, date_only).ok_or_else(|| {
                format!("{name}: {t:?} is neither an RFC 3339 date and time nor a date such as 2030-01-31")
            })
        })
        .transpose()
}

impl RawAccount {
    /// Checks every field; the error names the first bad one.
    pub fn check(self) -> Result<ImportRecord, String> {
        let email = blank_to_none(self.email).ok_or("email: is required")?;
        let email = Email::parse(&email).map_err(|m| format!("email: {m}"))?;
        let display_name = parse_display_name(self.display_name.as_deref())
            .map_err(|m| format!("display_name: {m}"))?;
        let role = blank_to_none(self.role)
            .map(|r| {
                import_role(&r).ok_or_else(|| {
                    format!("role: {r:?} is not reader (or subscriber), editor or admin (or administrator)")
                })
            })
            .transpose()?;
        let status = blank_to_none(self.status)
            .map(|s| {
                AccountStatus::parse(&s.to_ascii_lowercase())
                    .ok_or_else(|| format!("status: {s:?} is not active or suspended"))
            })
            .transpose()?;
        let plan = blank_to_none(self.subscription_plan);
        let started = instant_field(
            "subscription_started_at",
            self.subscription_started_at,
            DateOnly::StartOfDay,
        )?;
        let expires = instant_field(
            "subscription_expires_at",
            self.subscription_expires_at,
            DateOnly::EndOfDay,
        )?;
        let created_at = instant_field("created_at", self.created_at, DateOnly::StartOfDay)?;
        let subscription = match (plan, started, expires) {
            (Some(plan), started_at, expires_at) if plan.chars().count() <= 64 => {
                Some(ImportedSubscription {
                    plan,
                    started_at,
                    expires_at,
                })
            }
            (Some(_), _, _) => {
                return Err("subscription_plan: must be at most 64 characters".into())
            }
            (None, Some(_), _) => {
                return Err("subscription_started_at: given without a subscription_plan".into())
            }
            (None, _, Some(_)) => {
                return Err("subscription_expires_at: given without a subscription_plan".into())
            }
            (None, None, None) => None,
        };
        let password_hash = blank_to_none(self.password_hash);
        if let Some(hash) = &password_hash {
            if !is_supported_hash(hash) {
                return Err(
                    "password_hash: not an Argon2 PHC string, a bcrypt hash or a WordPress ($P$ or $wp$) hash"
                        .into(),
                );
            }
        }
        Ok(ImportRecord {
            email: email.as_str().to_string(),
            display_name,
            role,
            status,
            subscription,
            created_at,
            password_hash,
        })
    }
}

/// A line of the input, numbered from 1 as an editor shows it, or why it was unreadable.
pub type Line = (u64, Result<RawAccount, String>);

/// What `read_lines` does with columns it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unknown {
    /// Refuse the file (CSV) or the line (JSON Lines), naming the column.
    #[default]
    Refuse,
    /// Leave them out (`--ignore-unknown`), saying once which were left out.
    Ignore,
}

fn unknown_column_message(name: &str) -> String {
    format!(
        "unknown column {name:?}; the columns are {} (pass --ignore-unknown to leave others out)",
        COLUMNS.join(", ")
    )
}

/// Reads every data line. A CSV header must include `email`; unknown columns (CSV) or
/// keys (JSON Lines) are refused or left out as `unknown` says, and those left out are
/// returned once each, for the report.
pub fn read_lines<R: BufRead>(
    input: R,
    format: Format,
    unknown: Unknown,
) -> Result<(Vec<Line>, Vec<String>), String> {
    let mut ignored: Vec<String> = Vec::new();
    match format {
        Format::JsonLines => {
            let mut lines = Vec::new();
            for (index, line) in input.lines().enumerate() {
                let line = line.map_err(|e| format!("reading the file: {e}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                        .map_err(|e| format!("not a JSON object: {e}"))
                        .and_then(|mut object| {
                            let strangers: Vec<String> = object
                                .keys()
                                .filter(|k| !COLUMNS.contains(&k.as_str()))
                                .cloned()
                                .collect();
                            if let (Some(name), Unknown::Refuse) = (strangers.first(), unknown) {
                                return Err(unknown_column_message(name));
                            }
                            for name in strangers {
                                object.remove(&name);
                                if !ignored.contains(&name) {
                                    ignored.push(name);
                                }
                            }
                            serde_json::from_value::<RawAccount>(serde_json::Value::Object(object))
                                .map_err(|e| format!("a column is not text: {e}"))
                        });
                lines.push((index as u64 + 1, parsed));
            }
            Ok((lines, ignored))
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .trim(csv::Trim::All)
                .from_reader(input);
            let headers = reader
                .headers()
                .map_err(|e| format!("reading the CSV header: {e}"))?
                .clone();
            for name in headers.iter() {
                if !COLUMNS.contains(&name) {
                    match unknown {
                        Unknown::Refuse => return Err(unknown_column_message(name)),
                        Unknown::Ignore => ignored.push(name.to_string()),
                    }
                }
            }
            if !headers.iter().any(|h| h == "email") {
                return Err("the CSV header has no email column".into());
            }
            let mut lines = Vec::new();
            for record in reader.records() {
                let (number, parsed) = match record {
                    Ok(record) => {
                        let number = record.position().map_or(0, |p| p.line());
                        let parsed = record
                            .deserialize::<RawAccount>(Some(&headers))
                            .map_err(|e| format!("unreadable line: {e}"));
                        (number, parsed)
                    }
                    Err(e) => (
                        e.position().map_or(0, |p| p.line()),
                        Err(format!("unreadable line: {e}")),
                    ),
                };
                lines.push((number, parsed));
            }
            Ok((lines, ignored))
        }
    }
}

/// An account as exported; the hash only when asked for.
pub fn export_row(account: &AccountRow, with_hash: bool) -> RawAccount {
    RawAccount {
        email: Some(account.email.clone()),
        display_name: account.display_name.clone(),
        role: Some(account.role.as_str().to_string()),
        status: Some(account.status.as_str().to_string()),
        subscription_plan: account.subscription_plan.clone(),
        subscription_started_at: account.subscription_started_at.map(rfc3339),
        subscription_expires_at: account.subscription_expires_at.map(rfc3339),
        created_at: Some(rfc3339(account.created_at)),
        password_hash: if with_hash {
            account.password_hash.clone()
        } else {
            None
        },
    }
}

/// Writes accounts in `format`; CSV gets a header first.
pub struct Exporter<W: Write> {
    format: Format,
    csv: Option<csv::Writer<W>>,
    plain: Option<W>,
}

impl<W: Write> Exporter<W> {
    pub fn new(output: W, format: Format) -> Self {
        match format {
            Format::Csv => Exporter {
                format,
                csv: Some(csv::Writer::from_writer(output)),
                plain: None,
            },
            Format::JsonLines => Exporter {
                format,
                csv: None,
                plain: Some(output),
            },
        }
    }

    pub fn write(&mut self, row: &RawAccount) -> Result<(), String> {
        match (self.format, &mut self.csv, &mut self.plain) {
            (Format::Csv, Some(writer), _) => writer.serialize(row).map_err(|e| e.to_string()),
            (Format::JsonLines, _, Some(out)) => {
                let line = serde_json::to_string(row).map_err(|e| e.to_string())?;
                writeln!(out, "{line}").map_err(|e| e.to_string())
            }
            _ => Err("exporter is not set up".into()),
        }
    }

    pub fn finish(self) -> Result<(), String> {
        match (self.csv, self.plain) {
            (Some(mut writer), _) => writer.flush().map_err(|e| e.to_string()),
            (_, Some(mut out)) => out.flush().map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_flag_or_extension() {
        assert_eq!(Format::choose(None, "a.CSV").unwrap(), Format::Csv);
        assert_eq!(Format::choose(None, "a.jsonl").unwrap(), Format::JsonLines);
        assert_eq!(Format::choose(Some("csv"), "a.txt").unwrap(), Format::Csv);
        assert!(Format::choose(None, "accounts").is_err());
    }

    #[test]
    fn csv_lines_are_checked_one_by_one() {
        let input = "email,display_name,role,subscription_plan,subscription_expires_at\n\
                     Ada@Example.org,Ada,reader,digital,2030-01-01T00:00:00Z\n\
                     not-an-email,,,,\n\
                     bob@example.org,,boss,,\n\
                     cy@example.org,,,,2030-01-01T00:00:00Z\n\
                     \"zoé@example.org\",\"Zoé, l’autre\",editor,,\n";
        let (lines, _) = read_lines(input.as_bytes(), Format::Csv, Unknown::Refuse).unwrap();
        let checked: Vec<_> = lines
            .into_iter()
            .map(|(n, raw)| (n, raw.and_then(RawAccount::check)))
            .collect();
        assert_eq!(checked.len(), 5);
        let first = checked[0].1.as_ref().unwrap();
        assert_eq!(first.email, "ada@example.org");
        assert_eq!(first.subscription.as_ref().unwrap().plan, "digital");
        assert_eq!(checked[0].0, 2);
        assert!(checked[1].1.as_ref().unwrap_err().starts_with("email:"));
        assert!(checked[2].1.as_ref().unwrap_err().starts_with("role:"));
        assert!(checked[3]
            .1
            .as_ref()
            .unwrap_err()
            .starts_with("subscription_expires_at:"));
        assert_eq!(
            checked[4].1.as_ref().unwrap().display_name.as_deref(),
            Some("Zoé, l’autre")
        );
    }

    #[test]
    fn unknown_columns_stop_the_file_unless_ignored() {
        let csv = "email,password\nx@y.org,secret\n";
        let refused = read_lines(csv.as_bytes(), Format::Csv, Unknown::Refuse).unwrap_err();
        assert!(refused.contains("\"password\"") && refused.contains("--ignore-unknown"));
        assert!(read_lines("name\nx\n".as_bytes(), Format::Csv, Unknown::Refuse).is_err());
        let (lines, ignored) = read_lines(csv.as_bytes(), Format::Csv, Unknown::Ignore).unwrap();
        assert_eq!(ignored, ["password"]);
        let record = lines[0].1.as_ref().unwrap();
        assert_eq!(record.email.as_deref(), Some("x@y.org"));
        assert!(record.password_hash.is_none());
    }

    #[test]
    fn json_lines_refuse_unknown_keys_per_line_unless_ignored() {
        let input = "{\"email\":\"a@example.org\"}\n\n{\"email\":\"b@example.org\",\"password\":\"x\"}\nnot json\n";
        let (lines, _) = read_lines(input.as_bytes(), Format::JsonLines, Unknown::Refuse).unwrap();
        assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(lines[0].1.is_ok());
        assert!(lines[1].1.is_err() && lines[2].1.is_err());
        let (lines, ignored) =
            read_lines(input.as_bytes(), Format::JsonLines, Unknown::Ignore).unwrap();
        assert!(lines[1].1.is_ok());
        assert_eq!(ignored, ["password"]);
    }

    #[test]
    fn dates_alone_roles_of_other_systems_and_statuses() {
        let raw = RawAccount {
            email: Some("a@example.org".into()),
            role: Some("Subscriber".into()),
            status: Some("suspended".into()),
            subscription_plan: Some("digital".into()),
            subscription_started_at: Some("2025-02-01".into()),
            subscription_expires_at: Some("2030-01-31".into()),
            created_at: Some("2024-12-25T08:30:00Z".into()),
            ..Default::default()
        };
        let record = raw.check().unwrap();
        assert_eq!(record.role, Some(Role::Reader));
        assert_eq!(record.status, Some(AccountStatus::Suspended));
        let subscription = record.subscription.unwrap();
        assert_eq!(
            subscription.started_at,
            parse_rfc3339("2025-02-01T00:00:00Z")
        );
        assert_eq!(
            subscription.expires_at,
            parse_rfc3339("2030-02-01T00:00:00Z")
        );
        assert_eq!(record.created_at, parse_rfc3339("2024-12-25T08:30:00Z"));
        for (field, bad) in [
            ("role", "owner"),
            ("status", "gone"),
            ("created_at", "31/01/2030"),
        ] {
            let mut raw = RawAccount {
                email: Some("a@example.org".into()),
                ..Default::default()
            };
            match field {
                "role" => raw.role = Some(bad.into()),
                "status" => raw.status = Some(bad.into()),
                _ => raw.created_at = Some(bad.into()),
            }
            assert!(raw.check().unwrap_err().starts_with(field), "{field}");
        }
    }

    #[test]
    fn hashes_must_be_argon2_or_bcrypt() {
        let raw = RawAccount {
            email: Some("a@example.org".into()),
            password_hash: Some("plaintext-password".into()),
            ..Default::default()
        };
        assert!(raw.check().unwrap_err().starts_with("password_hash:"));
    }
}

/// Counts of what an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub refused: u64,
}

/// Lines written per transaction: large enough to be fast, small enough to keep the
/// write lock short for a server running beside the import.
const BATCH: usize = 1_000;

/// Imports every line of `input`, writing one report line per input line to `report`.
pub async fn import<R: BufRead, W: Write>(
    store: &crate::store::Store,
    input: R,
    format: Format,
    unknown: Unknown,
    report: &mut W,
) -> Result<Summary, String> {
    use crate::store::ImportOutcome;
    let (lines, ignored) = read_lines(input, format, unknown)?;
    if !ignored.is_empty() {
        writeln!(report, "ignored unknown column(s): {}", ignored.join(", "))
            .map_err(|e| e.to_string())?;
    }
    let mut summary = Summary::default();
    // Reported in line order: refusals found while reading wait for their batch.
    let mut pending: Vec<(u64, String)> = Vec::new();
    let mut batch: Vec<(u64, ImportRecord)> = Vec::with_capacity(BATCH);
    let mut lines = lines.into_iter().peekable();
    while lines.peek().is_some() {
        for (number, raw) in lines.by_ref() {
            match raw.and_then(RawAccount::check) {
                Ok(record) => {
                    batch.push((number, record));
                    if batch.len() == BATCH {
                        break;
                    }
                }
                Err(reason) => {
                    summary.refused += 1;
                    pending.push((number, format!("refused: {reason}")));
                }
            }
        }
        if !batch.is_empty() {
            let records: Vec<ImportRecord> = batch.iter().map(|(_, r)| r.clone()).collect();
            let outcomes = store
                .import_accounts(&records, crate::store::now_ts())
                .await
                .map_err(|e| e.to_string())?;
            for ((number, record), outcome) in batch.drain(..).zip(outcomes) {
                let text = match outcome {
                    ImportOutcome::Created => {
                        summary.created += 1;
                        format!("created {}", record.email)
                    }
                    ImportOutcome::Updated => {
                        summary.updated += 1;
                        format!("updated {}", record.email)
                    }
                    ImportOutcome::Refused(reason) => {
                        summary.refused += 1;
                        format!("refused: {reason}")
                    }
                };
                pending.push((number, text));
            }
        }
        pending.sort_by_key(|(number, _)| *number);
        for (number, text) in pending.drain(..) {
            writeln!(report, "line {number}: {text}").map_err(|e| e.to_string())?;
        }
    }
    Ok(summary)
}

/// Writes every account, oldest first, in `format`.
pub async fn export<W: Write>(
    store: &crate::store::Store,
    output: W,
    format: Format,
    with_hashes: bool,
) -> Result<u64, String> {
    let mut exporter = Exporter::new(output, format);
    let mut after: Option<crate::store::Cursor> = None;
    let mut written = 0;
    loop {
        let rows = store
            .accounts_in_creation_order(after.as_ref(), BATCH as u32)
            .await
            .map_err(|e| e.to_string())?;
        for row in &rows {
            exporter.write(&export_row(row, with_hashes))?;
            written += 1;
        }
        match rows.last() {
            Some(last) if rows.len() == BATCH => {
                after = Some(crate::store::Cursor {
                    key: last.created_at,
                    id: last.id.clone(),
                })
            }
            _ => break,
        }
    }
    exporter.finish()?;
    Ok(written)
}
