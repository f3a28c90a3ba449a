//! A reader's display name.

/// The most characters a display name may have.
pub const MAX_DISPLAY_NAME: usize = 100;

/// Trimmed; blank means none. At most 100 characters, no control characters.
pub fn parse_display_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(format!("must be at most {MAX_DISPLAY_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(name.to_string()))
}
