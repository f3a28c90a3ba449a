//! Article text to HTML: the Markdown `visible_text` gives, rendered by pulldown-cmark
//! and sanitized by ammonia (no script, no handler, no style; links kept, made safe),
//! and the page's JSON-LD.

use pulldown_cmark::{html, Options, Parser};

/// Markdown to HTML that is safe to put in a page whatever the text held.
pub fn markdown(text: &str) -> String {
    let mut raw = String::with_capacity(text.len() * 3 / 2);
    html::push_html(
        &mut raw,
        Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH),
    );
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&raw)
        .to_string()
}

/// JSON for a `<script type="application/ld+json">`: `<`, `>` and `&` written as
/// escapes, so no text in it can close the element.
pub fn json_in_script(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_what_runs_is_removed() {
        let html = markdown("A **bold** claim.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://example.org)");
        assert!(html.contains("<strong>bold</strong>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("javascript:"));
        assert!(html.contains(r#"href="https://example.org""#));
        let html = markdown("<img src=x onerror=alert(1)>");
        assert!(!html.contains("onerror"));
    }

    #[test]
    fn json_ld_cannot_close_its_element() {
        let text = json_in_script(&serde_json::json!({"headline": "</script><b>&"}));
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["headline"], "</script><b>&");
    }
}
