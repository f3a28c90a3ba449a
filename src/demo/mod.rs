//! `paywall demo`: a fresh database with sample articles of every access level and
//! three ready logins, for trying the service in a minute.

use crate::config::Settings;
use crate::domain::{AccessLevel, ArticleStatus, Role};
use crate::paywall::teaser;
use crate::startup::{self, StartupError};
use crate::store::{now_ts, ArticleFields, ArticleRecord, NewAccount, Store};

pub struct DemoLogin {
    pub label: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub role: Role,
    pub subscribed: bool,
}

/// Demo-only credentials for a throwaway database on the loopback interface.
pub const LOGINS: &[DemoLogin] = &[
    DemoLogin {
        label: "admin",
        email: "admin@demo.example",
        password: "demo-admin-Ravel-1875",
        role: Role::Admin,
        subscribed: false,
    },
    DemoLogin {
        label: "subscriber",
        email: "subscriber@demo.example",
        password: "demo-subscriber-Satie-1866",
        role: Role::Reader,
        subscribed: true,
    },
    DemoLogin {
        label: "reader",
        email: "reader@demo.example",
        password: "demo-reader-Bizet-1838",
        role: Role::Reader,
        subscribed: false,
    },
];

pub struct SampleArticle {
    pub slug: &'static str,
    pub title: &'static str,
    pub standfirst: &'static str,
    pub section: &'static str,
    pub author: &'static str,
    pub access: AccessLevel,
    pub status: ArticleStatus,
    pub body: &'static str,
}

pub const ARTICLES: &[SampleArticle] = &[
    SampleArticle {
        slug: "night-trains-return",
        title: "The night trains are back, and the sleeper cars are full",
        standfirst: "Eight years after the last couchette left, the overnight line to the coast reopens to a waiting list.",
        section: "transport",
        author: "Inès Moreau",
        access: AccessLevel::Free,
        status: ArticleStatus::Published,
        body: include_str!("articles/night-trains.md"),
    },
    SampleArticle {
        slug: "marche-de-noel-ouvre",
        title: "Le marché de Noël ouvre ses portes sous la neige",
        standfirst: "Deux cents chalets, un sapin de trente mètres et, pour la première fois, une allée réservée aux artisans du quartier.",
        section: "ville",
        author: "Zoé Lefèvre",
        access: AccessLevel::Registered,
        status: ArticleStatus::Published,
        body: include_str!("articles/marche-de-noel.md"),
    },
    SampleArticle {
        slug: "library-late-fees-abolished",
        title: "The library abolishes late fees — and the books come back",
        standfirst: "Six months after fines ended, returns are up and the overdue list has shrunk by a third.",
        section: "culture",
        author: "Tomás Ibáñez",
        access: AccessLevel::Metered,
        status: ArticleStatus::Published,
        body: include_str!("articles/library-fees.md"),
    },
    SampleArticle {
        slug: "budget-2027-where-the-money-goes",
        title: "Budget 2027: where every euro of the city’s money goes",
        standfirst: "Schools, tramways and a surprise line for flood defences: our reading of the 412-page draft budget.",
        section: "politics",
        author: "Françoise Ndiaye",
        access: AccessLevel::Subscribers,
        status: ArticleStatus::Published,
        body: include_str!("articles/budget-2027.md"),
    },
    SampleArticle {
        slug: "tokyo-to-zurich-notebook",
        title: "From Tōkyō to Zürich: a correspondent’s notebook",
        standfirst: "Twelve cities, four alphabets and one stubborn umbrella: notes from a year on the road.",
        section: "world",
        author: "Søren Åkesson",
        access: AccessLevel::Subscribers,
        status: ArticleStatus::Published,
        body: include_str!("articles/notebook.md"),
    },
    SampleArticle {
        slug: "unpublished-draft-harbour-plan",
        title: "Draft: the harbour plan nobody has seen yet",
        standfirst: "An unpublished draft; it appears only in the editors’ list.",
        section: "politics",
        author: "Françoise Ndiaye",
        access: AccessLevel::Subscribers,
        status: ArticleStatus::Draft,
        body: "This draft is not published, so readers cannot see it.\n\nEditors can, through the admin API.",
    },
];

/// Seeds `store` with the sample articles and the demo logins.
pub async fn seed(
    store: &Store,
    default_ratio: f64,
    hasher: &crate::auth::PasswordHasher,
) -> Result<(), StartupError> {
    let now = now_ts();
    for (age, article) in ARTICLES.iter().enumerate() {
        let prepared = teaser::prepare(article.body, default_ratio)
            .map_err(|e| StartupError::Other(format!("sample article {}: {e}", article.slug)))?;
        // Newest first in the list, an hour apart.
        let hours_ago = i64::try_from(age + 1).unwrap_or(1);
        let published_at =
            (article.status == ArticleStatus::Published).then_some(now - 3_600 * hours_ago);
        let fields = ArticleFields {
            slug: article.slug.to_string(),
            title: article.title.to_string(),
            standfirst: Some(article.standfirst.to_string()),
            section: article.section.to_string(),
            author: Some(article.author.to_string()),
            access: article.access,
            status: article.status,
            teaser_ratio: None,
            published_at,
        };
        let record = ArticleRecord::new(fields, default_ratio, prepared);
        store.insert_article(&record, None, now).await?;
    }
    for login in LOGINS {
        let password = crate::domain::Password::parse_given(login.password)
            .map_err(|m| StartupError::Other(format!("demo password {m}")))?;
        let hash = hasher
            .hash(password)
            .await
            .map_err(|_| StartupError::Other("could not hash a demo password".into()))?;
        let account = store
            .insert_account(&NewAccount {
                email: login.email,
                display_name: Some(login.label),
                password_hash: Some(&hash),
                role: login.role,
                now,
            })
            .await?;
        if login.subscribed {
            store
                .set_subscription(&account.id, "digital", now, None)
                .await?;
        }
    }
    Ok(())
}

/// Makes a fresh demo database in a new temporary folder, seeds it, prints the logins,
/// and returns the settings to serve it with.
/// The demo's temporary folder, removed with everything in it when this is dropped:
/// when the demo server stops (Ctrl-C or SIGTERM), or when preparing it fails.
pub struct DemoFolder(std::path::PathBuf);

impl DemoFolder {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for DemoFolder {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            eprintln!(
                "paywall: could not remove the demo folder {}: {error}",
                self.0.display()
            );
        }
    }
}

pub async fn prepare(mut settings: Settings) -> Result<(Settings, DemoFolder), StartupError> {
    let path =
        std::env::temp_dir().join(format!("paywall-demo-{}-{}", std::process::id(), now_ts()));
    std::fs::create_dir_all(&path)
        .map_err(|e| StartupError::Other(format!("{}: {e}", path.display())))?;
    let folder = DemoFolder(path);
    let db = folder.path().join("paywall.db");
    settings.database_url = format!("sqlite://{}", db.display());
    // The demo shows the reader's website too.
    settings.site = true;
    // The demo's own logins replace any configured bootstrap admin.
    settings.admin_email = None;
    settings.admin_password = None;
    let store = startup::open_store(&settings).await?;
    let hasher = startup::hasher_for(&settings)?;
    seed(&store, settings.teaser_ratio, &hasher).await?;
    store.close().await;

    println!("Paywall demo database: {}", db.display());
    println!("Sample logins (demo only):");
    for login in LOGINS {
        println!(
            "  {:<11} {:<26} password: {}",
            login.label, login.email, login.password
        );
    }
    println!(
        "Try: curl -s http://{}/v1/articles/budget-2027-where-the-money-goes",
        settings.bind
    );
    println!(
        "The reader's website: http://{}/ (sign in with a sample login)",
        settings.bind
    );
    println!("The demo folder is removed when the demo stops (Ctrl-C).");
    Ok((settings, folder))
}
