//! Body normalization, the teaser cut and the share left to read. Pure functions: the
//! results are computed once when an article is written and stored with it.

/// A body that has been normalized and measured, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBody {
    /// The normalized body as written, paywall marker included (for editors).
    pub source: String,
    /// The full text readers may receive: the source without any marker block.
    pub text: String,
    /// `text[..teaser_bytes]` is the teaser; always a char boundary.
    pub teaser_bytes: usize,
    /// The teaser's length in Unicode scalar values.
    pub teaser_chars: usize,
    /// The full text's length in Unicode scalar values.
    pub total_chars: usize,
    /// `percent_left` in hundredths of a percent (6064 means 60.64%).
    pub percent_left_hundredths: u32,
    pub word_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("must contain text (a body of blank lines or only a paywall marker is empty)")]
    Empty,
    /// A teaser cut inside HTML could leave an element open, so bodies are Markdown
    /// only; `paywall import-articles` converts HTML.
    #[error("holds raw HTML ({found:?}); bodies are Markdown (write **bold**, not <strong>bold</strong>; `paywall import-articles` converts HTML to Markdown)")]
    RawHtml { found: String },
}

/// Line ends become `\n`; trailing white space of each line, leading and trailing blank
/// lines are dropped; runs of blank lines become one blank line. Idempotent.
pub fn normalize(raw: &str) -> String {
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    let mut pending_blank = false;
    for line in unified.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            pending_blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if pending_blank { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        pending_blank = false;
    }
    out
}

/// `<!-- paywall -->` in any case, with any spacing inside the comment.
pub fn is_marker(block: &str) -> bool {
    let block = block.trim();
    block
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
        .is_some_and(|inner| inner.trim().eq_ignore_ascii_case("paywall"))
}

const BLOCK_SEPARATOR: &str = "\n\n";

/// The first raw HTML in a Markdown text (a block or an inline tag or comment, as
/// CommonMark reads them; `<` in prose and HTML inside code are not HTML), shortened.
pub fn raw_html(text: &str) -> Option<String> {
    use pulldown_cmark::{Event, Parser};
    Parser::new(text).find_map(|event| match event {
        // The marker's own syntax, where it is not a block of its own, is left as text.
        Event::Html(html) | Event::InlineHtml(html) if is_marker(&html) => None,
        Event::Html(html) | Event::InlineHtml(html) => {
            let first = html.trim().lines().next().unwrap_or("").to_string();
            Some(if first.chars().count() > 40 {
                format!("{}…", first.chars().take(40).collect::<String>())
            } else {
                first
            })
        }
        _ => None,
    })
}

/// Normalizes `raw`, removes marker blocks and finds the teaser cut for `ratio` (0, 1).
pub fn prepare(raw: &str, ratio: f64) -> Result<PreparedBody, BodyError> {
    let source = normalize(raw);
    let blocks: Vec<&str> = if source.is_empty() {
        Vec::new()
    } else {
        source.split(BLOCK_SEPARATOR).collect()
    };
    let marker_at = blocks.iter().position(|b| is_marker(b));
    let kept: Vec<&str> = blocks.iter().copied().filter(|b| !is_marker(b)).collect();
    if kept.is_empty() {
        return Err(BodyError::Empty);
    }
    let text = kept.join(BLOCK_SEPARATOR);
    if let Some(found) = raw_html(&text) {
        return Err(BodyError::RawHtml { found });
    }
    let total_chars = text.chars().count();

    // A marker counts only when some text follows it; otherwise the ratio decides.
    let teaser_bytes = match marker_at {
        Some(at) if at < kept.len() => {
            let before = &kept[..at];
            before.iter().map(|b| b.len()).sum::<usize>()
                + BLOCK_SEPARATOR.len() * before.len().saturating_sub(1)
        }
        _ => cut_by_ratio(&kept, total_chars, ratio),
    };
    let teaser_chars = text[..teaser_bytes].chars().count();
    Ok(PreparedBody {
        percent_left_hundredths: percent_left_hundredths(total_chars, teaser_chars),
        word_count: text.split_whitespace().count(),
        source,
        text,
        teaser_bytes,
        teaser_chars,
        total_chars,
    })
}

/// The largest teaser length allowed: at most `ratio` of the whole, never all of it.
fn char_limit(total_chars: usize, ratio: f64) -> usize {
    let limit = (ratio * total_chars as f64 + 1e-9).floor();
    (limit.max(0.0) as usize).min(total_chars.saturating_sub(1))
}

/// The byte length of the teaser cut from `blocks` (the full text's blocks).
fn cut_by_ratio(blocks: &[&str], total_chars: usize, ratio: f64) -> usize {
    let limit = char_limit(total_chars, ratio);
    let mut chars = 0;
    let mut bytes = 0;
    for (i, block) in blocks.iter().enumerate() {
        let separator = if i == 0 { 0 } else { BLOCK_SEPARATOR.len() };
        let next_chars = chars + separator + block.chars().count();
        if next_chars > limit {
            break;
        }
        chars = next_chars;
        bytes += separator + block.len();
    }
    if bytes > 0 {
        return bytes;
    }
    cut_inside(blocks[0], limit)
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closing_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | '»')
}

/// Cuts a block longer than `limit` characters: after the last sentence end that fits,
/// else at the last word boundary that fits, else nothing (a single long word).
fn cut_inside(block: &str, limit: usize) -> usize {
    let chars: Vec<(usize, char)> = block.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(block.len(), |&(b, _)| b);
    let followed_by_space = |i: usize| chars.get(i).is_some_and(|&(_, c)| c.is_whitespace());

    let mut sentence_end = None;
    let mut word_end = None;
    // `end` is a length in characters: the teaser would be chars[..end].
    for end in 1..=limit.min(chars.len()) {
        let last = chars[end - 1].1;
        if last.is_whitespace() || !followed_by_space(end) {
            continue;
        }
        word_end = Some(end);
        let before_quote = if is_closing_quote(last) && end >= 2 {
            chars[end - 2].1
        } else {
            last
        };
        if is_sentence_end(last) || (is_closing_quote(last) && is_sentence_end(before_quote)) {
            sentence_end = Some(end);
        }
    }
    sentence_end.or(word_end).map_or(0, byte_at)
}

/// `round(100 × (total − shown) / total, 2)` in exact integer arithmetic, in hundredths.
pub fn percent_left_hundredths(total_chars: usize, shown_chars: usize) -> u32 {
    if total_chars == 0 {
        return 0;
    }
    let total = total_chars as u64;
    let left = total.saturating_sub(shown_chars as u64);
    // Round half up: (2 × 10000 × left + total) / (2 × total).
    ((20_000 * left + total) / (2 * total)) as u32
}

/// Prints hundredths of a percent with exactly two decimals: 6064 -> "60.64".
pub fn format_percent(hundredths: u32) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The percent as the JSON number the contract shows (60.64).
pub fn percent_value(hundredths: u32) -> f64 {
    f64::from(hundredths) / 100.0
}

/// Minutes at 230 words a minute, at least one.
pub fn reading_time_minutes(word_count: usize) -> usize {
    word_count.div_ceil(230).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn teaser(p: &PreparedBody) -> &str {
        &p.text[..p.teaser_bytes]
    }

    #[test]
    fn normalization_rules() {
        assert_eq!(normalize("a  \r\nb\t\r\n\r\n\r\n\r\nc\n\n\n"), "a\nb\n\nc");
        assert_eq!(normalize("\n\n  \nfirst\rsecond"), "first\nsecond");
        assert_eq!(normalize("x\n   \n \t \ny"), "x\n\ny");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \n\t\n"), "");
        // Leading indentation is content (Markdown code blocks, nested lists).
        assert_eq!(normalize("    code\n\n- item"), "    code\n\n- item");
    }

    #[test]
    fn raw_html_is_refused_and_prose_and_code_are_not_html() {
        for body in [
            "<p>One.</p>\n\n<p>Two <strong>late.</strong></p>",
            "One.\n\nTwo <strong>late.</strong> Three.",
            "One.\n\n<!-- wp:paragraph -->\n\nTwo.",
            "<div class=\"x\">\nOne.\n</div>\n\nTwo.",
        ] {
            assert!(
                matches!(prepare(body, 0.4), Err(BodyError::RawHtml { .. })),
                "{body}"
            );
        }
        for body in [
            "If a < b and b > c, then a < c.\n\nTwo.",
            "Write `<strong>` in code.\n\nTwo.",
            "```\n<div>inside a fence</div>\n```\n\nTwo.",
            "One.\n\n<!-- paywall -->\n\nTwo.",
            "I <3 Paris.\n\nTwo.",
        ] {
            assert!(prepare(body, 0.4).is_ok(), "{body}");
        }
    }

    #[test]
    fn markers_in_any_case_and_spacing() {
        for marker in [
            "<!-- paywall -->",
            "<!--paywall-->",
            "<!--   PayWall\t-->",
            "  <!-- PAYWALL -->",
        ] {
            assert!(is_marker(marker), "{marker}");
        }
        for other in [
            "<!-- pay wall -->",
            "<!-- paywall",
            "paywall",
            "<!-- paywall --> more",
        ] {
            assert!(!is_marker(other), "{other}");
        }
    }

    #[test]
    fn the_marker_decides_the_cut_and_disappears() {
        let p = prepare(
            "Intro one.\n\nIntro two.\n\n<!-- PAYWALL -->\n\nSecret part.",
            0.1,
        )
        .unwrap();
        assert_eq!(p.text, "Intro one.\n\nIntro two.\n\nSecret part.");
        assert_eq!(teaser(&p), "Intro one.\n\nIntro two.");
        assert!(p.source.contains("<!-- PAYWALL -->"));
        assert_eq!(p.total_chars, 36);
        assert_eq!(p.teaser_chars, 22);
        // (36 - 22) / 36 = 38.888...%
        assert_eq!(p.percent_left_hundredths, 3889);
        assert_eq!(p.word_count, 6);
    }

    #[test]
    fn a_marker_first_gives_an_empty_teaser() {
        let p = prepare("<!-- paywall -->\n\nAll of it is gated.", 0.4).unwrap();
        assert_eq!(teaser(&p), "");
        assert_eq!(p.percent_left_hundredths, 10_000);
    }

    #[test]
    fn a_marker_with_nothing_after_it_falls_back_to_the_ratio() {
        let p = prepare("One block.\n\nTwo block here.\n\n<!-- paywall -->", 0.5).unwrap();
        assert_eq!(p.text, "One block.\n\nTwo block here.");
        assert_eq!(teaser(&p), "One block.");
    }

    #[test]
    fn only_markers_or_blank_is_empty() {
        assert_eq!(prepare("", 0.4), Err(BodyError::Empty));
        assert_eq!(prepare("\r\n  \n", 0.4), Err(BodyError::Empty));
        assert_eq!(prepare("<!-- paywall -->", 0.4), Err(BodyError::Empty));
    }

    #[test]
    fn whole_blocks_up_to_the_ratio() {
        // Blocks of 10, 10 and 10 chars: total 34 with separators; 0.7 -> 23 chars.
        let body = "aaaa aaaaa\n\nbbbb bbbbb\n\ncccc ccccc";
        let p = prepare(body, 0.7).unwrap();
        assert_eq!(teaser(&p), "aaaa aaaaa\n\nbbbb bbbbb");
        // 0.6 -> 20 chars: only the first block (22 would be too many).
        let p = prepare(body, 0.6).unwrap();
        assert_eq!(teaser(&p), "aaaa aaaaa");
    }

    #[test]
    fn a_long_first_block_is_cut_at_a_sentence_end() {
        let body = "Il a dit « oui ». Puis il est parti. Le reste de l’histoire est bien plus long que cela, vraiment.";
        let p = prepare(body, 0.45).unwrap();
        assert_eq!(teaser(&p), "Il a dit « oui ». Puis il est parti.");
    }

    #[test]
    fn a_sentence_end_may_carry_a_closing_quote() {
        let body =
            "He said “stop.” Then nothing more happened for a very long while after that day.";
        let p = prepare(body, 0.3).unwrap();
        assert_eq!(teaser(&p), "He said “stop.”");
    }

    #[test]
    fn numbers_and_abbreviated_dots_are_not_sentence_ends() {
        let body = "Pi is 3.14159 and that is all we will say about the matter here today friends";
        let p = prepare(body, 0.3).unwrap();
        assert_eq!(teaser(&p), "Pi is 3.14159 and that");
    }

    #[test]
    fn without_a_sentence_end_the_cut_is_at_a_word_boundary() {
        let body = "one two three four five six seven eight nine ten";
        let p = prepare(body, 0.4).unwrap(); // 48 chars -> 19
        assert_eq!(teaser(&p), "one two three four");
        assert_eq!(p.teaser_chars, 18);
    }

    #[test]
    fn a_one_word_body_has_an_empty_teaser() {
        let p = prepare("Supercalifragilistic", 0.9).unwrap();
        assert_eq!(teaser(&p), "");
        assert_eq!(p.percent_left_hundredths, 10_000);
    }

    #[test]
    fn counts_are_in_characters_not_bytes() {
        // 10 chars of emoji and CJK, many more bytes.
        let body = "😀😀 東京 éé\n\n漢字かな交じり文のテキスト";
        let p = prepare(body, 0.5).unwrap();
        assert_eq!(teaser(&p), "😀😀 東京 éé");
        assert_eq!(p.teaser_chars, 8);
        assert_eq!(p.total_chars, 8 + 2 + 13);
    }

    #[test]
    fn percent_rounding_matches_the_formula() {
        assert_eq!(percent_left_hundredths(1000, 394), 6060);
        assert_eq!(percent_left_hundredths(3, 1), 6667); // 66.666..
        assert_eq!(percent_left_hundredths(8, 1), 8750);
        assert_eq!(percent_left_hundredths(80_000, 31_488), 6064);
        assert_eq!(percent_left_hundredths(10, 0), 10_000);
        assert_eq!(format_percent(6064), "60.64");
        assert_eq!(format_percent(700), "7.00");
        assert_eq!(format_percent(5), "0.05");
        assert_eq!(percent_value(6064), 60.64);
    }

    #[test]
    fn reading_time() {
        assert_eq!(reading_time_minutes(0), 1);
        assert_eq!(reading_time_minutes(230), 1);
        assert_eq!(reading_time_minutes(231), 2);
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z]{1,12}",
            "[àéèçœÉÀü]{1,6}",
            "[東京漢字かな]{1,4}",
            "[😀🎉📰]{1,3}",
            Just("—".to_string()),
            Just("“quoted”".to_string()),
            Just("l’été".to_string()),
            Just("end.".to_string()),
            Just("what?!".to_string()),
            Just("wait…".to_string()),
            Just("3.14".to_string()),
            Just("<!-- paywall -->".to_string()),
        ]
    }

    fn separator() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            8 => Just(" "),
            2 => Just("\n"),
            2 => Just("\r\n\r\n"),
            1 => Just("  \n\n\n"),
            1 => Just("\n\n<!-- paywall -->\n\n"),
            1 => Just("\t\r"),
        ]
    }

    fn body() -> impl Strategy<Value = String> {
        prop::collection::vec((word(), separator()), 1..80).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(w, s)| format!("{w}{s}"))
                .collect::<String>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn normalization_is_idempotent(raw in body(), extra in "[ \t\r\n]{0,5}") {
            let once = normalize(&format!("{extra}{raw}{extra}"));
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(!once.contains('\r'));
            prop_assert!(!once.contains("\n\n\n"));
        }

        #[test]
        fn teaser_properties(raw in body(), ratio in 0.01f64..0.99) {
            let Ok(p) = prepare(&raw, ratio) else {
                return Ok(());
            };
            let teaser = &p.text[..p.teaser_bytes];
            // A prefix of the full text, cut on a character boundary, never all of it.
            prop_assert!(p.text.is_char_boundary(p.teaser_bytes));
            prop_assert!(p.text.starts_with(teaser));
            prop_assert!(p.teaser_chars < p.total_chars);
            prop_assert_eq!(p.teaser_chars, teaser.chars().count());
            prop_assert_eq!(p.total_chars, p.text.chars().count());
            // Never ends inside a word: what follows a non-empty teaser is white space.
            if !teaser.is_empty() {
                let next = p.text[p.teaser_bytes..].chars().next();
                prop_assert!(next.is_some_and(char::is_whitespace), "teaser {:?} then {:?}", teaser, next);
                prop_assert!(!teaser.ends_with(char::is_whitespace));
            }
            // The marker never survives, in the text or the teaser.
            prop_assert!(!p.text.split("\n\n").any(is_marker));
            // Without a marker, the teaser is within the ratio.
            if !p.source.split("\n\n").any(is_marker) {
                prop_assert!(p.teaser_chars as f64 <= ratio * p.total_chars as f64 + 1e-6);
            }
            // Percent matches the formula to two decimals.
            let exact = 100.0 * (p.total_chars - p.teaser_chars) as f64 / p.total_chars as f64;
            prop_assert!((percent_value(p.percent_left_hundredths) - exact).abs() <= 0.005 + 1e-9);
        }

        #[test]
        fn a_single_long_block_is_cut_inside_it(words in prop::collection::vec("[a-zé]{1,9}", 20..60), ratio in 0.05f64..0.5) {
            let raw = words.join(" ");
            let p = prepare(&raw, ratio).unwrap();
            let teaser = &p.text[..p.teaser_bytes];
            prop_assert!(p.teaser_chars as f64 <= ratio * p.total_chars as f64 + 1e-6);
            if !teaser.is_empty() {
                prop_assert!(p.text[p.teaser_bytes..].starts_with(' '));
            }
        }
    }
}
