//! The one text rule: every label, name, note, reason and URL a user or tool sends is checked
//! here, by the types below, so the same mistake gets the same answer wherever it is made,
//! and the OpenAPI document states the same rule ([`TextRule::schema`]).
//!
//! Text is trimmed first (white space at either end is never meaningful), then checked:
//! not empty where required, at most so many characters, and none of the characters no
//! stored text may carry ([`is_forbidden`]). A one-line field refuses line breaks and tabs as
//! well; prose (notes, reasons, rationales) keeps them. Template text is the exception that
//! proves the rule: it is kept verbatim for its Markdown form, so the template module adds
//! its format rules on top of [`TextRule::problem`].

use serde_json::{Value, json};

/// A text field the rules refuse: which field, and what is wrong, in the words every field
/// uses for the same mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TextError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl TextError {
    /// A refusal of `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The shape of a text field: how long it may be and whether it may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    /// The most characters (after trimming).
    pub max: usize,
    /// Whether line breaks and tabs are allowed.
    pub multiline: bool,
}

/// The characters a multi-line field allows that [`is_forbidden`] would otherwise cover.
const LINE_BREAKS: [char; 3] = ['\t', '\n', '\r'];

impl TextRule {
    /// One line of at most `max` characters.
    pub const fn line(max: usize) -> Self {
        Self {
            max,
            multiline: false,
        }
    }

    /// Prose of at most `max` characters: line breaks and tabs allowed.
    pub const fn prose(max: usize) -> Self {
        Self {
            max,
            multiline: true,
        }
    }

    /// What is wrong with `s` as it stands (not trimmed), if anything but emptiness.
    pub fn problem(&self, s: &str) -> Option<String> {
        if s.chars().count() > self.max {
            return Some(format!("must be at most {} characters", self.max));
        }
        let bad = |c: char| {
            is_forbidden(c) || (!self.multiline && (c.is_control() || LINE_BREAKS.contains(&c)))
        };
        if s.chars().any(bad) {
            return Some(if self.multiline {
                "must not contain control or bidirectional-override characters \
                 (line breaks and tabs are allowed)"
                    .into()
            } else {
                "must be one line without control or bidirectional-override characters".into()
            });
        }
        None
    }

    /// `s` trimmed and checked; white space alone is refused.
    pub fn required(&self, field: &'static str, s: &str) -> Result<String, TextError> {
        self.optional(field, s)?
            .ok_or_else(|| TextError::new(field, "must not be empty"))
    }

    /// `s` trimmed and checked; white space alone is no value.
    pub fn optional(&self, field: &'static str, s: &str) -> Result<Option<String>, TextError> {
        let t = s.trim();
        if let Some(message) = self.problem(t) {
            return Err(TextError::new(field, message));
        }
        Ok((!t.is_empty()).then(|| t.to_owned()))
    }

    /// The rule as JSON Schema keywords for the OpenAPI document. The server trims before it
    /// counts, so the document is the stricter of the two: what it allows is accepted.
    pub fn schema(&self, required: bool) -> Value {
        let f = pattern_class(if self.multiline { &LINE_BREAKS } else { &[] });
        let pattern = if required {
            format!("^[^{f}]*[^\\s{f}][^{f}]*$")
        } else {
            format!("^[^{f}]*$")
        };
        let mut v = json!({"maxLength": self.max, "pattern": pattern});
        if required {
            v["minLength"] = json!(1);
        }
        v
    }
}

/// The longest product, release, environment, team role, assignee or token name.
pub const MAX_LABEL_LEN: usize = 200;
/// The longest note, reason or comment.
pub const MAX_NOTE_LEN: usize = 10_000;
/// The longest URL.
pub const MAX_URL_LEN: usize = 2_000;
/// The longest user name.
pub const MAX_USERNAME_LEN: usize = 64;

/// A label: one trimmed line of 1 to [`MAX_LABEL_LEN`] characters (a run's product, release
/// and environment, a team role, a token's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// The rule.
    pub const RULE: TextRule = TextRule::line(MAX_LABEL_LEN);

    /// Checks `s` as the value of `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, TextError> {
        Self::RULE.required(field, s).map(Self)
    }
}

/// A note, reason or comment: trimmed prose of up to [`MAX_NOTE_LEN`] characters; white
/// space alone is no note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Note(String);

impl Note {
    /// The rule.
    pub const RULE: TextRule = TextRule::prose(MAX_NOTE_LEN);

    /// Checks `s` as the value of `field`: `None` when it holds only white space.
    pub fn parse(field: &'static str, s: &str) -> Result<Option<Self>, TextError> {
        Ok(Self::RULE.optional(field, s)?.map(Self))
    }

    /// Checks `s` as the value of a field that must say something.
    pub fn parse_required(field: &'static str, s: &str) -> Result<Self, TextError> {
        Self::RULE.required(field, s).map(Self)
    }
}

/// An absolute `http` or `https` URL with a host, without white space, of at most
/// [`MAX_URL_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Checks `s` (trimmed) as the value of `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, TextError> {
        let s = s.trim();
        let host_and_path = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        match host_and_path {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && s.chars().count() <= MAX_URL_LEN
                    && !s
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || is_forbidden(c)) =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(TextError::new(
                field,
                format!("must be an absolute http(s) URL of at most {MAX_URL_LEN} characters"),
            )),
        }
    }

    /// The rule as JSON Schema keywords.
    pub fn schema() -> Value {
        let f = pattern_class(&[]);
        json!({
            "type": "string",
            "maxLength": MAX_URL_LEN,
            "pattern": format!("^https?://[^\\s/{f}][^\\s{f}]*$"),
        })
    }
}

/// A user name: 1 to [`MAX_USERNAME_LEN`] ASCII letters, digits, `.`, `_`, `-` or `@`
/// (trimmed). Compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Checks `s` as the value of `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, TextError> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_USERNAME_LEN {
            return Err(TextError::new(
                field,
                format!("must be 1 to {MAX_USERNAME_LEN} characters"),
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        {
            return Err(TextError::new(
                field,
                "may hold only letters, digits, `.`, `_`, `-` and `@`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether `s` could be a user name as it stands (untrimmed): a sign-in with any other
    /// name is looked up nowhere.
    pub fn is_valid(s: &str) -> bool {
        s.trim() == s && Self::parse("username", s).is_ok()
    }

    /// The rule as JSON Schema keywords.
    pub fn schema() -> Value {
        json!({"minLength": 1, "maxLength": MAX_USERNAME_LEN, "pattern": "^[A-Za-z0-9._@-]+$"})
    }
}

/// The longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// An e-mail address: `local@domain`, one line of printable ASCII without spaces, angle
/// brackets, quotes, commas or semicolons (so it can stand in a header as it is), at most
/// [`MAX_EMAIL_LEN`] characters, the domain with a dot. Not trimmed: an address with white
/// space around it is refused, as its schema says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks `s` as the value of `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, TextError> {
        let ok = s.len() <= MAX_EMAIL_LEN
            && s.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(
                        b,
                        b'<' | b'>' | b'"' | b',' | b';' | b'(' | b')' | b'\\' | b'[' | b']'
                    )
            })
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TextError::new(
                field,
                format!(
                    "must be an e-mail address (name@example.com) of at most {MAX_EMAIL_LEN} characters"
                ),
            ))
        }
    }

    /// The rule as JSON Schema keywords (the same rule, as a pattern).
    pub fn schema() -> Value {
        let local = r"[!#-'*+\-./0-9:=?A-Z^-~]";
        let label = r"[!#-'*+\-/0-9:=?A-Z^-~]+";
        json!({
            "maxLength": MAX_EMAIL_LEN,
            "pattern": format!(r"^{local}+@{label}(\.{label})+$"),
        })
    }
}

macro_rules! text_newtype {
    ($($t:ident),*) => {$(
        impl $t {
            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The checked text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$t> for String {
            fn from(t: $t) -> String {
                t.0
            }
        }
    )*};
}

text_newtype!(Label, Note, HttpUrl, Username, EmailAddress);

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

    #[test]
    fn an_email_address_is_one_plain_address_and_its_pattern_says_the_same() {
        for good in ["erin@example.com", "a.b+tag@mail.example.co.uk", "x@y.z"] {
            assert!(EmailAddress::parse("email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "erin",
            "erin@localhost",
            "@example.com",
            "a@b@c.d",
            "a@.b.c",
            "a@b.c.",
            "a@b..c",
            " erin@example.com",
            "Erin <erin@example.com>",
            "a,b@example.com",
            "é@example.com",
        ] {
            assert_eq!(
                EmailAddress::parse("email", bad).unwrap_err().to_string(),
                format!(
                    "email: must be an e-mail address (name@example.com) of at most \
                     {MAX_EMAIL_LEN} characters"
                ),
                "{bad}"
            );
        }
        let pattern = EmailAddress::schema()["pattern"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(pattern.starts_with('^') && pattern.ends_with('$'));
    }
    use super::*;

    #[test]
    fn every_rule_trims_then_answers_the_same_mistake_in_the_same_words() {
        assert_eq!(
            Label::parse("product", "  EduLibra ").unwrap().as_str(),
            "EduLibra"
        );
        assert_eq!(
            Label::parse("product", " \t ").unwrap_err().to_string(),
            "product: must not be empty"
        );
        let one_line = Label::parse("environment", "prod\nuction").unwrap_err();
        assert_eq!(one_line.field, "environment");
        let bidi = Label::parse("environment", "prod\u{202e}").unwrap_err();
        assert_eq!(one_line.message, bidi.message);
        assert_eq!(
            Label::parse("product", &"x".repeat(201))
                .unwrap_err()
                .message,
            "must be at most 200 characters"
        );
        assert!(Label::parse("product", &format!(" {} ", "é".repeat(200))).is_ok());

        assert_eq!(
            Note::parse("note", "  two\n\tlines\r\n ")
                .unwrap()
                .unwrap()
                .as_str(),
            "two\n\tlines"
        );
        assert_eq!(Note::parse("note", " \n ").unwrap(), None);
        assert_eq!(
            Note::parse_required("reason", " ").unwrap_err().message,
            "must not be empty"
        );
        let prose = Note::parse("note", "a\u{0}b").unwrap_err();
        assert_eq!(
            prose.message,
            Note::parse("comment", "\u{2066}").unwrap_err().message
        );
        assert_ne!(
            prose.message, bidi.message,
            "prose says line breaks are allowed"
        );
    }

    #[test]
    fn urls_and_user_names_have_their_own_shapes_in_the_same_error() {
        assert_eq!(
            HttpUrl::parse("evidence_url", " https://ci.example/run/1 ")
                .unwrap()
                .as_str(),
            "https://ci.example/run/1"
        );
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://a b",
            "http://x\u{202e}",
        ] {
            let e = HttpUrl::parse("evidence_url", bad).unwrap_err();
            assert_eq!(e.field, "evidence_url", "{bad}");
        }
        assert!(HttpUrl::parse("u", &format!("https://x/{}", "a".repeat(MAX_URL_LEN))).is_err());
        assert_eq!(
            Username::parse("username", " carol ").unwrap().as_str(),
            "carol"
        );
        assert!(Username::parse("username", "carol smith").is_err());
        assert!(
            !Username::is_valid(" carol"),
            "a sign-in name is taken as it is"
        );
        assert!(Username::is_valid("carol@example"));
    }

    #[test]
    fn the_documented_pattern_accepts_what_the_rule_accepts() {
        let schema = Label::RULE.schema(true);
        assert_eq!(schema["maxLength"], MAX_LABEL_LEN);
        assert_eq!(schema["minLength"], 1);
        let prose = Note::RULE.schema(false);
        assert!(prose.get("minLength").is_none());
        assert!(
            prose["pattern"]
                .as_str()
                .unwrap()
                .starts_with("^[^\\u0000-\\u0008\\u000b-\\u000c"),
            "{prose}"
        );
    }

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
