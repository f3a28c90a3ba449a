//! Account import and export for publishers moving from another system: CSV (with a
//! header row) or JSON Lines, with the columns `email`, `display_name`, `role`,
//! `subscription_plan`, `subscription_expires_at` and `password_hash`.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::auth::password::is_supported_hash;
use crate::domain::{Email, Role};
use crate::routes::auth::parse_display_name;
use crate::routes::views::{parse_rfc3339, rfc3339};
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

pub const COLUMNS: [&str; 6] = [
    "email",
    "display_name",
    "role",
    "subscription_plan",
    "subscription_expires_at",
    "password_hash",
];

/// One line as written in the file; blank values count as absent.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub subscription_plan: Option<String>,
    #[serde(default)]
    pub subscription_expires_at: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
}

/// A line that passed every check, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub email: String,
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `Some((plan, expires_at))` sets the subscription.
    pub subscription: Option<(String, Option<i64>)>,
    pub password_hash: Option<String>,
}

fn blank_to_none(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
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
                Role::parse(&r).ok_or_else(|| format!("role: {r:?} is not reader, editor or admin"))
            })
            .transpose()?;
        let plan = blank_to_none(self.subscription_plan);
        let expires = blank_to_none(self.subscription_expires_at)
            .map(|t| {
                parse_rfc3339(&t).ok_or_else(|| {
                    format!("subscription_expires_at: {t:?} is not an RFC 3339 date and time")
                })
            })
            .transpose()?;
        let subscription = match (plan, expires) {
            (Some(plan), expires) if plan.chars().count() <= 64 => Some((plan, expires)),
            (Some(_), _) => return Err("subscription_plan: must be at most 64 characters".into()),
            (None, Some(_)) => {
                return Err("subscription_expires_at: given without a subscription_plan".into())
            }
            (None, None) => None,
        };
        let password_hash = blank_to_none(self.password_hash);
        if let Some(hash) = &password_hash {
            if !is_supported_hash(hash) {
                return Err("password_hash: not an Argon2 PHC string or a bcrypt hash".into());
            }
        }
        Ok(ImportRecord {
            email: email.as_str().to_string(),
            display_name,
            role,
            subscription,
            password_hash,
        })
    }
}

/// A line of the input, numbered from 1 as an editor shows it, or why it was unreadable.
pub type Line = (u64, Result<RawAccount, String>);

/// Reads every data line. A CSV header must name only known columns and include `email`.
pub fn read_lines<R: BufRead>(input: R, format: Format) -> Result<Vec<Line>, String> {
    match format {
        Format::JsonLines => {
            let mut lines = Vec::new();
            for (index, line) in input.lines().enumerate() {
                let line = line.map_err(|e| format!("reading the file: {e}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<RawAccount>(&line)
                    .map_err(|e| format!("not a JSON object of the known columns: {e}"));
                lines.push((index as u64 + 1, parsed));
            }
            Ok(lines)
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
                    return Err(format!(
                        "unknown CSV column {name:?}; the columns are {}",
                        COLUMNS.join(", ")
                    ));
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
            Ok(lines)
        }
    }
}

/// An account as exported; the hash only when asked for.
pub fn export_row(account: &AccountRow, with_hash: bool) -> RawAccount {
    RawAccount {
        email: Some(account.email.clone()),
        display_name: account.display_name.clone(),
        role: Some(account.role.clone()),
        subscription_plan: account.subscription_plan.clone(),
        subscription_expires_at: account.subscription_expires_at.map(rfc3339),
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
        let lines = read_lines(input.as_bytes(), Format::Csv).unwrap();
        let checked: Vec<_> = lines
            .into_iter()
            .map(|(n, raw)| (n, raw.and_then(RawAccount::check)))
            .collect();
        assert_eq!(checked.len(), 5);
        let first = checked[0].1.as_ref().unwrap();
        assert_eq!(first.email, "ada@example.org");
        assert_eq!(first.subscription.as_ref().unwrap().0, "digital");
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
    fn unknown_columns_stop_the_file() {
        assert!(read_lines("email,password\nx@y.org,secret\n".as_bytes(), Format::Csv).is_err());
        assert!(read_lines("name\nx\n".as_bytes(), Format::Csv).is_err());
    }

    #[test]
    fn json_lines_refuse_unknown_keys_per_line() {
        let input = "{\"email\":\"a@example.org\"}\n\n{\"email\":\"b@example.org\",\"password\":\"x\"}\nnot json\n";
        let lines = read_lines(input.as_bytes(), Format::JsonLines).unwrap();
        assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(lines[0].1.is_ok());
        assert!(lines[1].1.is_err() && lines[2].1.is_err());
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
    report: &mut W,
) -> Result<Summary, String> {
    use crate::store::ImportOutcome;
    let lines = read_lines(input, format)?;
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
