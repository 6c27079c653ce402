//! Characters no text of Shipshape's may carry, whatever field it is in.

/// Whether a character may not appear in stored text: control characters (NUL among them,
/// which PostgreSQL refuses and SQLite keeps), and the invisible bidirectional controls that
/// make text display in another order than it reads (U+202A–U+202E, U+2066–U+2069, U+200E,
/// U+200F, U+061C — the "Trojan Source" characters): a URL or a note that shows one thing and
/// says another has no place in an audit record. Line breaks and tabs are decided by each
/// field, so they are not judged here.
pub fn is_forbidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidirectional_overrides_are_forbidden_ordinary_text_is_not() {
        for c in [
            '\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{202E}', '\u{2066}', '\u{200F}',
            '\u{061C}',
        ] {
            assert!(is_forbidden(c), "{:?}", c);
        }
        for c in ['a', 'é', '中', '😀', '\u{200D}', ' ', '\n', '\t', '\r'] {
            assert!(!is_forbidden(c), "{:?}", c);
        }
    }
}
