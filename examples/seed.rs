//! Seeds a database for the benchmarks through the store, without HTTP: articles of
//! every access level (a few kilobytes each), reader and subscriber accounts, and signed
//! meter ids, and writes the lists the load scripts read.
//!
//! cargo run --release --example seed -- DATABASE_URL SECRET OUT_DIR [ARTICLES] [ACCOUNTS] [METER_IDS]

use std::io::Write;

use paywall::domain::{AccessLevel, ArticleStatus};
use paywall::paywall::meter::MeterIds;
use paywall::paywall::teaser;
use paywall::store::{ArticleFields, ArticleRecord, NewAccount, Store};

const LEVELS: [&str; 4] = ["free", "registered", "metered", "subscribers"];
const PASSWORD: &str = "bench-passphrase-Ravel-1875";

fn body(i: usize) -> String {
    let paragraph = |k: usize| {
        format!(
            "Paragraph {k} of article {i}: the council’s budget — “a careful one”, said the mayor — \
             funds schools, tramways and flood defences in équipes across the city. Readers asked \
             how each euro is spent, and this report follows the money line by line."
        )
    };
    (1..=12).map(paragraph).collect::<Vec<_>>().join("\n\n")
}

/// Articles per transaction.
const SEED_BATCH: usize = 2_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, secret, out) = match args.as_slice() {
        [_, url, secret, out, ..] => (url.clone(), secret.clone(), std::path::PathBuf::from(out)),
        _ => {
            return Err(
                "usage: seed DATABASE_URL SECRET OUT_DIR [ARTICLES] [ACCOUNTS] [METER_IDS]".into(),
            )
        }
    };
    let articles: usize = args.get(4).map_or(Ok(10_000), |a| a.parse())?;
    let accounts: usize = args.get(5).map_or(Ok(100), |a| a.parse())?;
    // Each id is good for three charged reads (the default anonymous limit).
    let meter_ids: usize = args.get(6).map_or(Ok(200_000), |a| a.parse())?;
    std::fs::create_dir_all(&out)?;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut lists: Vec<std::io::BufWriter<std::fs::File>> = LEVELS
        .iter()
        .map(|level| {
            std::fs::File::create(out.join(format!("{level}.txt"))).map(std::io::BufWriter::new)
        })
        .collect::<Result<_, _>>()?;
    let mut pending = Vec::with_capacity(SEED_BATCH);
    for i in 0..articles {
        let level = LEVELS[i % LEVELS.len()];
        let prepared = teaser::prepare(&body(i), 0.4)?;
        let slug = format!("bench-article-{i}");
        let fields = ArticleFields {
            slug: slug.clone(),
            title: format!("Bench article {i}"),
            standfirst: Some("A standfirst of a sentence or two.".into()),
            section: ["politics", "culture", "world"][i % 3].into(),
            author: Some("Bench".into()),
            access: AccessLevel::parse(level).ok_or("an access level")?,
            status: ArticleStatus::Published,
            teaser_ratio: None,
            // Newest last: article i was published (articles - i) seconds ago.
            published_at: Some(now - i64::try_from(articles - i)?),
        };
        pending.push(ArticleRecord::new(fields, 0.4, prepared));
        if pending.len() == SEED_BATCH {
            store.insert_articles(&pending, now).await?;
            pending.clear();
        }
        writeln!(lists[i % LEVELS.len()], "{slug}")?;
    }
    store.insert_articles(&pending, now).await?;
    for list in &mut lists {
        list.flush()?;
    }
    // `digital` reads on any number of devices (the `subscriber` scenario's reads need
    // no seat); `solo`, on one at a time: subscriber2's plan, read by the `seated`
    // scenario, every read seat-checked.
    for (id, seats) in [("digital", 0), ("solo", 1)] {
        let fields = paywall::store::billing::PlanFields {
            name: id.to_string(),
            seats,
            checkout_url: None,
            active: true,
            price_ids: Vec::new(),
        };
        let audit = paywall::store::AuditEntry::new(None, "plan.create", "plan", Some(id));
        store
            .create_plan(id, &fields, &audit, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    let hash = paywall::auth::password::hash_blocking(PASSWORD).map_err(|e| e.to_string())?;
    let mut logins = std::fs::File::create(out.join("accounts.txt"))?;
    let mut account_ids = std::fs::File::create(out.join("account_ids.txt"))?;
    // The editor of the `hooks` scenario, whose edits of readers are webhook events.
    store
        .insert_account(&NewAccount {
            email: "admin@bench.example",
            display_name: None,
            password_hash: Some(&hash),
            role: paywall::domain::Role::Admin,
            now,
        })
        .await?;
    for i in 0..accounts {
        let subscribed = i % 2 == 0;
        let email = format!(
            "{}{i}@bench.example",
            if subscribed { "subscriber" } else { "reader" }
        );
        let account = store
            .insert_account(&NewAccount {
                email: &email,
                display_name: None,
                password_hash: Some(&hash),
                role: paywall::domain::Role::Reader,
                now,
            })
            .await?;
        if subscribed {
            store
                .set_subscription(
                    &account.id,
                    if i == 2 { "solo" } else { "digital" },
                    now,
                    None,
                )
                .await?;
        }
        writeln!(logins, "{email}")?;
        writeln!(account_ids, "{}", account.id)?;
    }
    let ids = MeterIds::new(&[secret.as_bytes()]);
    let mut ids_file = std::io::BufWriter::new(std::fs::File::create(out.join("meter_ids.txt"))?);
    for _ in 0..meter_ids {
        writeln!(ids_file, "{}", ids.issue())?;
    }
    ids_file.flush()?;
    let file = store.sqlite_file();
    store.close().await;
    drop(store);
    if let Some(path) = file {
        // The server starts as after a clean stop, with the log copied into the file and
        // emptied: a run should not measure the copying of what the seed wrote (8 GB of
        // log at 1,000,000 articles).
        rusqlite::Connection::open(path)?.query_row(
            "PRAGMA wal_checkpoint(TRUNCATE)",
            [],
            |_| Ok(()),
        )?;
    }
    println!("seeded {articles} articles and {accounts} accounts into {url}");
    Ok(())
}
