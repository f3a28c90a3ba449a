//! `paywall import-articles`: an archive of articles from JSON Lines (the create fields
//! of `POST /v1/admin/articles`, plus `external_id`, `canonical_url` and optionally
//! `body_html`), a WordPress export (WXR) or a Ghost export.
//!
//! Every item goes through the same rules as an editor's article (`app::articles`).
//! HTML is converted to Markdown (htmd), so the teaser is cut on whole blocks; the
//! "more" mark of WordPress and Ghost's `members-only` mark become the paywall marker.
//! An item with an `external_id` already imported updates that article; one that
//! cannot be imported is reported with its position and the others are kept. Items
//! are written in batches, one transaction each, every item in its own savepoint.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use serde::Deserialize;

use super::articles::{describe, merge, record, slug_candidates, ArticleInput, Draft};
use crate::domain::{AccessLevel, ArticleStatus, Slug};
use crate::store::{ArticleRecord, ArticleRow, Store, StoreError};

/// The file formats `import-articles` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    WordPress,
    Ghost,
}

impl Format {
    /// The format asked for, else the one the file's extension says.
    pub fn choose(given: Option<&str>, path: &str) -> Result<Format, String> {
        let named = match given {
            Some(name) => name.to_ascii_lowercase(),
            None => {
                let lower = path.to_ascii_lowercase();
                if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
                    "jsonl".into()
                } else if lower.ends_with(".xml") || lower.ends_with(".wxr") {
                    "wordpress".into()
                } else if lower.ends_with(".json") {
                    "ghost".into()
                } else {
                    return Err(format!(
                        "{path}: cannot tell the format from the file name; give --format jsonl, wordpress or ghost"
                    ));
                }
            }
        };
        match named.as_str() {
            "jsonl" => Ok(Format::Jsonl),
            "wordpress" | "wxr" => Ok(Format::WordPress),
            "ghost" => Ok(Format::Ghost),
            other => Err(format!(
                "--format {other:?} is not one of jsonl, wordpress, ghost"
            )),
        }
    }
}

/// What an item without them gets, and the teaser ratio of the service.
#[derive(Debug, Clone)]
pub struct Options {
    pub access: AccessLevel,
    pub section: String,
    pub default_ratio: f64,
}

/// An article read from the file, before the rules are applied.
#[derive(Debug)]
pub struct Incoming {
    pub input: ArticleInput,
    pub external_id: Option<String>,
    pub canonical_url: Option<String>,
}

#[derive(Debug)]
pub enum Parsed {
    Article(Box<Incoming>),
    /// Not an article (a WordPress page or attachment, a Ghost page, a post in the
    /// trash): counted, not reported.
    Skipped,
    Refused(String),
}

/// One item of the file, with where it is (`line 12`, `item 3`).
#[derive(Debug)]
pub struct Item {
    pub position: String,
    pub parsed: Parsed,
}

/// What a file's import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub refused: u64,
    pub skipped: u64,
}

/// Items read one at a time from a file.
pub trait Source {
    /// The next item; an error ends the file (what was read before it is kept).
    fn next_item(&mut self) -> Option<Result<Item, String>>;
}

const MAX_EXTERNAL_ID: usize = 200;
const MAX_URL: usize = 2_048;

/// The paywall marker of Paywall's Markdown, and a stand-in that survives the HTML
/// conversion where the source marked its teaser's end.
const PAYWALL_MARKER: &str = "<!-- paywall -->";
const MARKER_STAND_IN: &str = "PAYWALLMARKERSTANDIN";

fn converter() -> &'static htmd::HtmlToMarkdown {
    static CONVERTER: std::sync::OnceLock<htmd::HtmlToMarkdown> = std::sync::OnceLock::new();
    CONVERTER.get_or_init(|| {
        htmd::HtmlToMarkdown::builder()
            // What is not text: scripts, styles, embeds and forms are left out.
            .skip_tags(vec![
                "script", "style", "noscript", "iframe", "object", "embed", "form", "svg", "head",
            ])
            .build()
    })
}

/// Whether an HTML body is WordPress's classic kind, whose paragraphs are blank lines
/// (`wpautop` adds the `<p>` only when a page is shown).
fn needs_paragraphs(html: &str) -> bool {
    html.contains("\n\n") && !html.contains("<p") && !html.contains("<P")
}

/// Wraps each blank-line-separated run of text in `<p>`, unless it is a block already.
fn add_paragraphs(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "<h1",
        "<h2",
        "<h3",
        "<h4",
        "<h5",
        "<h6",
        "<ul",
        "<ol",
        "<blockquote",
        "<pre",
        "<table",
        "<figure",
        "<div",
        "<hr",
        "<!--",
    ];
    html.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|chunk| !chunk.is_empty())
        .map(|chunk| {
            let lower = chunk.to_ascii_lowercase();
            if BLOCKS.iter().any(|tag| lower.starts_with(tag)) {
                chunk.to_string()
            } else {
                format!("<p>{}</p>", chunk.replace('\n', "<br>\n"))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An HTML body as Markdown. WordPress's `<!--more-->` and Ghost's
/// `<!--members-only-->` become the paywall marker.
pub fn html_to_markdown(html: &str) -> Result<String, String> {
    let mut html = if needs_paragraphs(html) {
        add_paragraphs(html)
    } else {
        html.to_string()
    };
    let mut marked = false;
    for mark in ["<!--more-->", "<!--members-only-->"] {
        if let Some(at) = html.find(mark) {
            if !marked {
                html.replace_range(at..at + mark.len(), &format!("<p>{MARKER_STAND_IN}</p>"));
                marked = true;
            }
        }
    }
    let markdown = converter()
        .convert(&html)
        .map_err(|e| format!("body: the HTML could not be read: {e}"))?;
    let markdown = if marked {
        markdown.replacen(MARKER_STAND_IN, PAYWALL_MARKER, 1)
    } else {
        markdown
    };
    Ok(markdown.trim().to_string())
}

/// A short text from HTML (an excerpt): its words, without tags.
fn plain_text(html: &str) -> String {
    converter()
        .convert(html)
        .map(|text| {
            text.replace(['*', '_', '#', '>', '`'], "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn checked_external_id(value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_EXTERNAL_ID || value.chars().any(char::is_control) {
        return Err(format!(
            "external_id: must be at most {MAX_EXTERNAL_ID} characters, without control characters"
        ));
    }
    Ok(Some(value.to_string()))
}

fn checked_url(value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && value.len() <= MAX_URL => {
            Ok(Some(url.to_string()))
        }
        _ => Err("canonical_url: must be an http or https URL".into()),
    }
}

/// One line of JSON Lines: an object of the create fields.
fn jsonl_item(line: &str) -> Parsed {
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(error) => return Parsed::Refused(format!("not valid JSON: {error}")),
    };
    let serde_json::Value::Object(mut object) = value else {
        return Parsed::Refused("must be a JSON object of article fields".into());
    };
    fn text_field(
        object: &mut serde_json::Map<String, serde_json::Value>,
        name: &str,
    ) -> Result<Option<String>, String> {
        match object.remove(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(format!("{name}: must be a string")),
        }
    }
    let parsed = (|| {
        let external_id = text_field(&mut object, "external_id")?
            .map(|v| checked_external_id(&v))
            .transpose()?
            .flatten();
        let canonical_url = text_field(&mut object, "canonical_url")?
            .map(|v| checked_url(&v))
            .transpose()?
            .flatten();
        let body_html = text_field(&mut object, "body_html")?;
        if let Some(html) = body_html {
            if object.contains_key("body") {
                return Err("give body (Markdown) or body_html, not both".to_string());
            }
            object.insert(
                "body".into(),
                serde_json::Value::String(html_to_markdown(&html)?),
            );
        }
        let input: ArticleInput = serde_path_to_error::deserialize(serde_json::Value::Object(
            object,
        ))
        .map_err(|error| {
            let path = error.path().to_string();
            if path == "." {
                error.inner().to_string()
            } else {
                format!("{path}: {}", error.inner())
            }
        })?;
        Ok(Incoming {
            input,
            external_id,
            canonical_url,
        })
    })();
    match parsed {
        Ok(incoming) => Parsed::Article(Box::new(incoming)),
        Err(why) => Parsed::Refused(why),
    }
}

/// JSON Lines, one item per line that is not blank.
pub struct JsonLines<R> {
    reader: R,
    line: u64,
    buffer: String,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(reader: R) -> Self {
        JsonLines {
            reader,
            line: 0,
            buffer: String::new(),
        }
    }
}

impl<R: BufRead> Source for JsonLines<R> {
    fn next_item(&mut self) -> Option<Result<Item, String>> {
        loop {
            self.buffer.clear();
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => {
                    return Some(Err(format!("line {}: {error}", self.line + 1)));
                }
            }
            self.line += 1;
            let line = self.buffer.trim();
            if line.is_empty() {
                continue;
            }
            return Some(Ok(Item {
                position: format!("line {}", self.line),
                parsed: jsonl_item(line),
            }));
        }
    }
}

/// A slug as the source gave it, if it can be one: WordPress keeps accented slugs
/// percent-encoded (`%c3%a9lys%c3%a9e`), which become their ASCII form.
fn source_slug(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(slug) = Slug::parse(raw) {
        return Some(slug.as_str().to_string());
    }
    let decoded = url::form_urlencoded::parse(format!("s={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())?;
    Slug::from_title(&decoded).map(|slug| slug.as_str().to_string())
}

fn some(value: Option<String>) -> Option<Option<String>> {
    value.map(Some)
}

/// A WordPress export (WXR 1.2), read as a stream of `<item>`s. Only posts are
/// articles; pages, attachments, menus and posts in the trash are skipped.
pub struct Wxr<R> {
    reader: quick_xml::Reader<R>,
    buffer: Vec<u8>,
    /// Author logins and their display names, from the channel's `<wp:author>`s.
    authors: HashMap<String, String>,
    items: u64,
}

impl<R: BufRead> Wxr<R> {
    pub fn new(reader: R) -> Self {
        let reader = quick_xml::Reader::from_reader(reader);
        Wxr {
            reader,
            buffer: Vec::new(),
            authors: HashMap::new(),
            items: 0,
        }
    }

    fn error(&self, error: impl std::fmt::Display) -> String {
        format!(
            "the file is not a readable WordPress export near byte {}: {error}",
            self.reader.buffer_position()
        )
    }

    /// The children of the element just opened, as (name, text, domain attribute),
    /// until it closes; deeper elements' text goes to their child of this one.
    fn children(&mut self, end: &[u8]) -> Result<Vec<(String, String, Option<String>)>, String> {
        use quick_xml::events::Event;
        let mut fields: Vec<(String, String, Option<String>)> = Vec::new();
        let mut depth = 0usize;
        loop {
            self.buffer.clear();
            let event = self
                .reader
                .read_event_into(&mut self.buffer)
                .map_err(|e| format!("{e}"));
            let event = match event {
                Ok(event) => event.into_owned(),
                Err(error) => return Err(self.error(error)),
            };
            match event {
                Event::Start(start) => {
                    if depth == 0 {
                        let domain = start
                            .try_get_attribute("domain")
                            .ok()
                            .flatten()
                            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                        fields.push((name, String::new(), domain));
                    }
                    depth += 1;
                }
                Event::End(close) => {
                    if depth == 0 {
                        if close.name().as_ref() == end {
                            return Ok(fields);
                        }
                        return Err(self.error("an element closes that was not opened"));
                    }
                    depth -= 1;
                }
                Event::Text(text) if depth == 1 => {
                    let text = text.decode().map_err(|e| self.error(e))?;
                    if let Some(field) = fields.last_mut() {
                        field.1.push_str(&text);
                    }
                }
                Event::CData(data) if depth == 1 => {
                    let text = data.decode().map_err(|e| self.error(e))?;
                    if let Some(field) = fields.last_mut() {
                        field.1.push_str(&text);
                    }
                }
                Event::GeneralRef(reference) if depth == 1 => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(ch)) => ch.to_string(),
                        _ => {
                            let name = reference.decode().map_err(|e| self.error(e))?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .map(str::to_string)
                                .ok_or_else(|| self.error(format!("unknown entity &{name};")))?
                        }
                    };
                    if let Some(field) = fields.last_mut() {
                        field.1.push_str(&resolved);
                    }
                }
                Event::Eof => return Err(self.error("the file ends inside an element")),
                _ => {}
            }
        }
    }

    fn item(&self, fields: Vec<(String, String, Option<String>)>) -> Parsed {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, text, _)| text.trim().to_string())
                .filter(|text| !text.is_empty())
        };
        match field("wp:post_type").as_deref() {
            Some("post") | None => {}
            Some(_) => return Parsed::Skipped,
        }
        let status = match field("wp:status").as_deref() {
            Some("publish") | Some("future") => ArticleStatus::Published,
            Some("trash") | Some("auto-draft") | Some("inherit") => return Parsed::Skipped,
            _ => ArticleStatus::Draft,
        };
        let body = match field("content:encoded") {
            Some(html) => match html_to_markdown(&html) {
                Ok(markdown) => markdown,
                Err(why) => return Parsed::Refused(why),
            },
            None => String::new(),
        };
        let published_at = field("wp:post_date_gmt")
            .filter(|date| !date.starts_with("0000"))
            .and_then(|date| {
                let (day, clock) = date.split_once(' ')?;
                Some(format!("{day}T{clock}Z"))
            });
        let section = fields
            .iter()
            .find(|(name, text, domain)| {
                name == "category"
                    && domain.as_deref() == Some("category")
                    && !text.trim().is_empty()
            })
            .map(|(_, text, _)| text.trim().to_string());
        let author =
            field("dc:creator").map(|login| self.authors.get(&login).cloned().unwrap_or(login));
        let external_id = match field("guid")
            .or_else(|| field("wp:post_id").map(|id| format!("wordpress:{id}")))
        {
            Some(id) => match checked_external_id(&id) {
                Ok(id) => id,
                Err(why) => return Parsed::Refused(why),
            },
            None => None,
        };
        let canonical_url = field("link").and_then(|link| checked_url(&link).ok().flatten());
        let input = ArticleInput {
            title: some(field("title")),
            body: Some(Some(body)),
            section: some(section),
            slug: some(field("wp:post_name").and_then(|name| source_slug(&name))),
            standfirst: some(
                field("excerpt:encoded")
                    .map(|html| plain_text(&html))
                    .filter(|t| !t.is_empty()),
            ),
            author: some(author),
            status: Some(Some(status)),
            published_at: some(published_at),
            ..ArticleInput::default()
        };
        Parsed::Article(Box::new(Incoming {
            input,
            external_id,
            canonical_url,
        }))
    }
}

impl<R: BufRead> Source for Wxr<R> {
    fn next_item(&mut self) -> Option<Result<Item, String>> {
        use quick_xml::events::Event;
        loop {
            self.buffer.clear();
            let event = match self.reader.read_event_into(&mut self.buffer) {
                Ok(event) => event.into_owned(),
                Err(error) => return Some(Err(self.error(error))),
            };
            match event {
                Event::Start(start) if start.name().as_ref() == b"item" => {
                    self.items += 1;
                    let position = format!("item {}", self.items);
                    return Some(self.children(b"item").map(|fields| Item {
                        position,
                        parsed: self.item(fields),
                    }));
                }
                Event::Start(start) if start.name().as_ref() == b"wp:author" => {
                    match self.children(b"wp:author") {
                        Ok(fields) => {
                            let get = |name: &str| {
                                fields
                                    .iter()
                                    .find(|(n, _, _)| n == name)
                                    .map(|(_, t, _)| t.trim().to_string())
                            };
                            if let (Some(login), Some(name)) =
                                (get("wp:author_login"), get("wp:author_display_name"))
                            {
                                self.authors.insert(login, name);
                            }
                        }
                        Err(error) => return Some(Err(error)),
                    }
                }
                Event::Eof => {
                    if self.items == 0 {
                        return Some(Err(
                            "the file holds no <item>: it is not a WordPress export (Tools > Export)".into(),
                        ));
                    }
                    return None;
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct GhostExport {
    #[serde(default)]
    db: Vec<GhostDb>,
    data: Option<GhostData>,
}

#[derive(Debug, Deserialize)]
struct GhostDb {
    data: GhostData,
}

#[derive(Debug, Default, Deserialize)]
struct GhostData {
    #[serde(default)]
    posts: Vec<GhostPost>,
    #[serde(default)]
    tags: Vec<GhostTag>,
    #[serde(default)]
    posts_tags: Vec<GhostLink>,
    #[serde(default)]
    users: Vec<GhostUser>,
    #[serde(default)]
    posts_authors: Vec<GhostAuthorLink>,
}

#[derive(Debug, Deserialize)]
struct GhostPost {
    id: String,
    title: Option<String>,
    slug: Option<String>,
    html: Option<String>,
    custom_excerpt: Option<String>,
    status: Option<String>,
    visibility: Option<String>,
    published_at: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    canonical_url: Option<String>,
    /// Older exports name one author on the post itself.
    author_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GhostTag {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct GhostLink {
    post_id: String,
    tag_id: String,
    #[serde(default)]
    sort_order: i64,
}

#[derive(Debug, Deserialize)]
struct GhostUser {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct GhostAuthorLink {
    post_id: String,
    author_id: String,
    #[serde(default)]
    sort_order: i64,
}

/// A Ghost export (Settings > Labs > Export), read whole: its posts refer to tags and
/// authors elsewhere in the file. The primary tag is the section; pages are skipped.
pub struct Ghost {
    items: std::vec::IntoIter<Item>,
}

impl Ghost {
    pub fn read(reader: impl std::io::Read) -> Result<Ghost, String> {
        let export: GhostExport = serde_json::from_reader(reader).map_err(|e| {
            format!("the file is not a Ghost export (JSON with db[0].data.posts): {e}")
        })?;
        let data = match (export.db.into_iter().next(), export.data) {
            (Some(db), _) => db.data,
            (None, Some(data)) => data,
            (None, None) => {
                return Err("the file is not a Ghost export: it has no db[0].data".into())
            }
        };
        let tags: HashMap<&str, &str> = data
            .tags
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str()))
            .collect();
        let users: HashMap<&str, &str> = data
            .users
            .iter()
            .map(|u| (u.id.as_str(), u.name.as_str()))
            .collect();
        let mut primary_tag: HashMap<&str, (i64, &str)> = HashMap::new();
        for link in &data.posts_tags {
            if let Some(name) = tags.get(link.tag_id.as_str()) {
                let entry = primary_tag
                    .entry(link.post_id.as_str())
                    .or_insert((link.sort_order, name));
                if link.sort_order < entry.0 {
                    *entry = (link.sort_order, name);
                }
            }
        }
        let mut primary_author: HashMap<&str, (i64, &str)> = HashMap::new();
        for link in &data.posts_authors {
            if let Some(name) = users.get(link.author_id.as_str()) {
                let entry = primary_author
                    .entry(link.post_id.as_str())
                    .or_insert((link.sort_order, name));
                if link.sort_order < entry.0 {
                    *entry = (link.sort_order, name);
                }
            }
        }
        let items: Vec<Item> = data
            .posts
            .iter()
            .enumerate()
            .map(|(at, post)| {
                let position = format!(
                    "post {} ({})",
                    at + 1,
                    post.slug.as_deref().unwrap_or(&post.id)
                );
                let parsed = ghost_post(post, &primary_tag, &primary_author, &users);
                Item { position, parsed }
            })
            .collect();
        Ok(Ghost {
            items: items.into_iter(),
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }
}

fn ghost_post(
    post: &GhostPost,
    tags: &HashMap<&str, (i64, &str)>,
    authors: &HashMap<&str, (i64, &str)>,
    users: &HashMap<&str, &str>,
) -> Parsed {
    if post.kind.as_deref().is_some_and(|kind| kind != "post") {
        return Parsed::Skipped;
    }
    let status = match post.status.as_deref() {
        Some("published") | Some("scheduled") | Some("sent") => ArticleStatus::Published,
        _ => ArticleStatus::Draft,
    };
    let access = match post.visibility.as_deref() {
        Some("public") => Some(AccessLevel::Free),
        Some("members") => Some(AccessLevel::Registered),
        Some("paid") | Some("tiers") => Some(AccessLevel::Subscribers),
        _ => None,
    };
    let body = match post.html.as_deref() {
        Some(html) => match html_to_markdown(html) {
            Ok(markdown) => markdown,
            Err(why) => return Parsed::Refused(why),
        },
        None => return Parsed::Refused("body: the post has no html in the export".into()),
    };
    let author = authors
        .get(post.id.as_str())
        .map(|(_, name)| name.to_string())
        .or_else(|| {
            post.author_id
                .as_deref()
                .and_then(|id| users.get(id))
                .map(|n| n.to_string())
        });
    let canonical_url = match post.canonical_url.as_deref().map(checked_url).transpose() {
        Ok(url) => url.flatten(),
        Err(why) => return Parsed::Refused(why),
    };
    let input = ArticleInput {
        title: some(post.title.clone()),
        body: Some(Some(body)),
        section: some(tags.get(post.id.as_str()).map(|(_, name)| name.to_string())),
        access: access.map(Some),
        slug: some(post.slug.as_deref().and_then(source_slug)),
        standfirst: some(post.custom_excerpt.clone().filter(|t| !t.trim().is_empty())),
        author: some(author),
        status: Some(Some(status)),
        published_at: some(post.published_at.clone()),
        ..ArticleInput::default()
    };
    Parsed::Article(Box::new(Incoming {
        input,
        external_id: Some(format!("ghost:{}", post.id)),
        canonical_url,
    }))
}

impl Source for Ghost {
    fn next_item(&mut self) -> Option<Result<Item, String>> {
        self.items.next().map(Ok)
    }
}

/// Items per transaction.
const BATCH: usize = 500;
/// Slugs from a title (its own, then numbered variants) looked up at once for an item
/// without a slug.
const SLUG_VARIANTS: usize = 20;

fn candidates(draft: &Draft) -> impl Iterator<Item = Slug> {
    slug_candidates(&draft.title).take(SLUG_VARIANTS)
}

/// An item ready to write, or why it cannot be.
struct Prepared {
    position: String,
    existing: Option<String>,
    record: ArticleRecord,
}

/// Imports every item of `source`, reporting each refused one on `report` and calling
/// `progress` with the number of items read after each batch. An error reading the
/// file stops there; what was read before it is kept.
pub async fn import(
    store: &Store,
    options: &Options,
    source: &mut dyn Source,
    report: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let mut read = 0u64;
    let mut held: Option<Item> = None;
    loop {
        let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
        let mut ids: HashSet<String> = HashSet::new();
        let mut failure = None;
        while batch.len() < BATCH {
            let item = match held.take() {
                Some(item) => item,
                None => match source.next_item() {
                    None => break,
                    Some(Err(error)) => {
                        failure = Some(error);
                        break;
                    }
                    Some(Ok(item)) => {
                        read += 1;
                        item
                    }
                },
            };
            // The same external id twice in a batch: the second waits for the next
            // batch, where it updates what the first created.
            if let Parsed::Article(incoming) = &item.parsed {
                if let Some(id) = &incoming.external_id {
                    if !ids.insert(id.clone()) {
                        held = Some(item);
                        break;
                    }
                }
            }
            batch.push(item);
        }
        if batch.is_empty() && held.is_none() {
            if let Some(error) = failure {
                return Err(error);
            }
            return Ok(summary);
        }
        write_batch(store, options, batch, report, &mut summary).await?;
        progress(read);
        if let Some(error) = failure {
            return Err(error);
        }
    }
}

fn refuse(
    report: &mut dyn Write,
    summary: &mut Summary,
    position: &str,
    why: &str,
) -> Result<(), String> {
    summary.refused += 1;
    writeln!(report, "{position}: refused: {why}").map_err(|e| format!("writing the report: {e}"))
}

async fn write_batch(
    store: &Store,
    options: &Options,
    batch: Vec<Item>,
    report: &mut dyn Write,
    summary: &mut Summary,
) -> Result<(), String> {
    let now = crate::store::now_ts();
    let database = |e: StoreError| format!("the database failed: {e}");
    let external_ids: Vec<String> = batch
        .iter()
        .filter_map(|item| match &item.parsed {
            Parsed::Article(incoming) => incoming.external_id.clone(),
            _ => None,
        })
        .collect();
    let existing: HashMap<String, ArticleRow> = store
        .articles_by_external_ids(&external_ids)
        .await
        .map_err(database)?
        .into_iter()
        .filter_map(|row| Some((row.external_id.clone()?, row)))
        .collect();

    // The rules of an editor's article, every item in turn.
    let mut drafts: Vec<(String, Option<String>, Draft, &Incoming)> = Vec::new();
    for item in &batch {
        let incoming = match &item.parsed {
            Parsed::Skipped => {
                summary.skipped += 1;
                continue;
            }
            Parsed::Refused(why) => {
                refuse(report, summary, &item.position, why)?;
                continue;
            }
            Parsed::Article(incoming) => incoming,
        };
        let current = incoming
            .external_id
            .as_ref()
            .and_then(|id| existing.get(id));
        let current_draft = current.and_then(Draft::of);
        let mut input = incoming.input.clone();
        if current.is_none() {
            if input.access.is_none() {
                input.access = Some(Some(options.access));
            }
            if input.section.is_none() {
                input.section = Some(Some(options.section.clone()));
            }
        }
        match merge(input, current_draft.as_ref(), now) {
            Ok(draft) => drafts.push((
                item.position.clone(),
                current.map(|row| row.meta.id.clone()),
                draft,
                incoming,
            )),
            Err(errors) => {
                let why = describe(&errors);
                refuse(report, summary, &item.position, &why)?;
            }
        }
    }

    // Slugs: the one given (or kept), else one made from the title, numbered while
    // taken by another article or by an earlier item of this batch.
    // First the slug each item wants (given, kept, or its title's); then, for titles
    // whose slug is taken, their numbered variants.
    let wanted: Vec<String> = drafts
        .iter()
        .map(|(_, _, draft, _)| match &draft.slug {
            Some(slug) => slug.as_str().to_string(),
            None => candidates(draft)
                .next()
                .unwrap_or_else(Slug::fallback)
                .as_str()
                .to_string(),
        })
        .collect();
    let mut owners = store.slug_owners(&wanted).await.map_err(database)?;
    let mut seen: HashSet<&str> = HashSet::new();
    let variants: Vec<String> = drafts
        .iter()
        .zip(&wanted)
        .filter(|((_, _, draft, _), slug)| {
            draft.slug.is_none()
                && (owners.contains_key(slug.as_str()) || !seen.insert(slug.as_str()))
        })
        .flat_map(|((_, _, draft, _), _)| candidates(draft).skip(1).map(|s| s.as_str().to_string()))
        .collect();
    owners.extend(store.slug_owners(&variants).await.map_err(database)?);
    let mut claimed: HashSet<String> = HashSet::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    for (position, existing_id, draft, incoming) in drafts {
        let free = |slug: &str, claimed: &HashSet<String>| {
            !claimed.contains(slug)
                && owners
                    .get(slug)
                    .is_none_or(|owner| Some(owner) == existing_id.as_ref())
        };
        let slug = match &draft.slug {
            Some(slug) if free(slug.as_str(), &claimed) => slug.clone(),
            Some(_) => {
                refuse(
                    report,
                    summary,
                    &position,
                    "slug: slug_taken: another article has this slug",
                )?;
                continue;
            }
            None => {
                let found = candidates(&draft).find(|slug| free(slug.as_str(), &claimed));
                match found {
                    Some(slug) => slug,
                    None => {
                        refuse(
                            report,
                            summary,
                            &position,
                            "slug: could not be made from the title; give one",
                        )?;
                        continue;
                    }
                }
            }
        };
        let mut article = match record(&draft, &slug, options.default_ratio) {
            Ok(article) => article,
            Err(crate::error::ApiError::Validation(errors)) => {
                let why = describe(&errors);
                refuse(report, summary, &position, &why)?;
                continue;
            }
            Err(other) => {
                refuse(report, summary, &position, &other.to_string())?;
                continue;
            }
        };
        claimed.insert(slug.as_str().to_string());
        article.external_id = incoming.external_id.clone();
        article.canonical_url = incoming.canonical_url.clone();
        prepared.push(Prepared {
            position,
            existing: existing_id,
            record: article,
        });
    }
    type Writes = Vec<(Option<String>, ArticleRecord)>;
    let (positions, writes): (Vec<(String, bool)>, Writes) = prepared
        .into_iter()
        .map(|p| ((p.position, p.existing.is_some()), (p.existing, p.record)))
        .unzip();
    let outcomes = store
        .import_articles(&writes, now)
        .await
        .map_err(database)?;
    for ((position, updated), outcome) in positions.iter().zip(outcomes) {
        match outcome {
            Ok(_) if *updated => summary.updated += 1,
            Ok(_) => summary.created += 1,
            Err(StoreError::Conflict) => refuse(
                report,
                summary,
                position,
                "slug: slug_taken: another article took this slug during the import",
            )?,
            Err(error) => refuse(
                report,
                summary,
                position,
                &format!("could not be written: {error}"),
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_markdown_with_the_teaser_mark() {
        let markdown = html_to_markdown(
            "<h2>Le titre</h2><p>Un <strong>premier</strong> paragraphe.</p><!--more--><p>La suite, <a href=\"https://example.com/\">un lien</a>.</p><script>alert(1)</script>",
        )
        .unwrap();
        assert!(markdown.contains("## Le titre"), "{markdown}");
        assert!(markdown.contains("**premier**"), "{markdown}");
        assert!(markdown.contains("\n<!-- paywall -->\n"), "{markdown}");
        assert!(
            markdown.contains("[un lien](https://example.com/)"),
            "{markdown}"
        );
        assert!(!markdown.contains("alert"), "{markdown}");
        assert!(crate::paywall::teaser::prepare(&markdown, 0.4).is_ok());
    }

    #[test]
    fn classic_wordpress_paragraphs_are_kept() {
        let markdown = html_to_markdown(
            "First paragraph\nsame one.\n\nSecond paragraph.\n\n<ul><li>a</li></ul>",
        )
        .unwrap();
        let blocks: Vec<&str> = markdown.split("\n\n").collect();
        assert_eq!(blocks.len(), 3, "{markdown}");
        assert!(blocks[0].starts_with("First paragraph"));
        assert!(
            blocks[2].starts_with(['-', '*']) && blocks[2].ends_with('a'),
            "{markdown}"
        );
    }

    #[test]
    fn jsonl_lines_are_checked_field_by_field() {
        let Parsed::Article(ok) = jsonl_item(
            r#"{"title":"T","body":"B","section":"s","access":"free","external_id":"cms-1","canonical_url":"https://old.example.com/t"}"#,
        ) else {
            panic!("a good line is an article");
        };
        assert_eq!(ok.external_id.as_deref(), Some("cms-1"));
        assert_eq!(
            ok.canonical_url.as_deref(),
            Some("https://old.example.com/t")
        );
        for (line, expected) in [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"title":"T","colour":"red"}"#, "unknown field `colour`"),
            (r#"{"title":5}"#, "title:"),
            (r#"{"external_id":7}"#, "external_id: must be a string"),
            (
                r#"{"canonical_url":"ftp://x"}"#,
                "canonical_url: must be an http",
            ),
            (r#"{"body":"a","body_html":"<p>b</p>"}"#, "not both"),
        ] {
            match jsonl_item(line) {
                Parsed::Refused(why) => assert!(why.contains(expected), "{line}: {why}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn wordpress_slugs_are_decoded() {
        assert_eq!(source_slug("le-budget").as_deref(), Some("le-budget"));
        assert_eq!(
            source_slug("%c3%a9lys%c3%a9e-2026").as_deref(),
            Some("elysee-2026")
        );
        assert_eq!(source_slug(""), None);
    }

    #[test]
    fn formats_come_from_the_flag_or_the_extension() {
        assert_eq!(Format::choose(None, "a.jsonl"), Ok(Format::Jsonl));
        assert_eq!(
            Format::choose(None, "site.WordPress.2026-01-01.xml"),
            Ok(Format::WordPress)
        );
        assert_eq!(Format::choose(None, "ghost.json"), Ok(Format::Ghost));
        assert_eq!(Format::choose(Some("ghost"), "x.txt"), Ok(Format::Ghost));
        assert!(Format::choose(None, "x.txt").is_err());
        assert!(Format::choose(Some("csv"), "x.jsonl").is_err());
    }
}
