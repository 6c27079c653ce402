//! Characters no text of Shipshape's may carry, whatever field it is in.

/// The characters forbidden in stored text, as inclusive ranges: control characters (C0,
/// DEL, C1 — NUL among them, which PostgreSQL refuses and SQLite keeps), and the invisible
/// bidirectional controls that make text display in another order than it reads (the "Trojan
/// Source" characters): a URL or a note that shows one thing and says another has no place in
/// an audit record. Line breaks and tabs are decided by each field ([`is_forbidden`] lets
/// them through; [`pattern_class`] takes the ones a field allows).
const FORBIDDEN: [(char, char); 7] = [
    ('\u{0}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{200e}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2066}', '\u{2069}'),
    // Kept apart so that a field can allow none of the three below.
    ('\u{feff}', '\u{feff}'),
];

/// Whether a character may not appear in stored text (line breaks and tabs aside: see the
/// module docs).
pub fn is_forbidden(c: char) -> bool {
    !matches!(c, '\n' | '\r' | '\t') && FORBIDDEN.iter().any(|(a, b)| (*a..=*b).contains(&c))
}

/// The forbidden characters, less those in `allowed`, as the inside of a regular-expression
/// character class (`\u0000-\u0008…`), for the JSON Schema patterns of the OpenAPI document.
/// ECMA-262 and Python read it alike.
pub fn pattern_class(allowed: &[char]) -> String {
    let mut out = String::new();
    let mut push = |a: u32, b: u32| {
        if a == b {
            out.push_str(&format!("\\u{a:04x}"));
        } else {
            out.push_str(&format!("\\u{a:04x}-\\u{b:04x}"));
        }
    };
    for (a, b) in FORBIDDEN {
        let (mut start, end) = (a as u32, b as u32);
        let mut cuts: Vec<u32> = allowed
            .iter()
            .map(|c| *c as u32)
            .filter(|c| (start..=end).contains(c))
            .collect();
        cuts.sort_unstable();
        for cut in cuts {
            if cut > start {
                push(start, cut - 1);
            }
            start = cut + 1;
        }
        if start <= end {
            push(start, end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidirectional_overrides_are_forbidden_ordinary_text_is_not() {
        for c in [
            '\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{202E}', '\u{2066}', '\u{200F}',
            '\u{061C}', '\u{FEFF}',
        ] {
            assert!(is_forbidden(c), "{c:?}");
        }
        for c in ['a', 'é', '中', '😀', '\u{200D}', ' ', '\n', '\t', '\r'] {
            assert!(!is_forbidden(c), "{c:?}");
        }
    }

    #[test]
    fn the_pattern_class_carves_out_what_a_field_allows() {
        assert!(pattern_class(&[]).starts_with("\\u0000-\\u001f\\u007f-\\u009f"));
        assert!(
            pattern_class(&['\t', '\n', '\r'])
                .starts_with("\\u0000-\\u0008\\u000b-\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u061c")
        );
        assert!(pattern_class(&['\n']).starts_with("\\u0000-\\u0009\\u000b-\\u001f"));
    }
}
