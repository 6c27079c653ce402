//! `If-Match` preconditions (RFC 9110 §13.1.1): a list of entity tags, compared strongly
//! with the current version's tag (`"3"`). A weak tag (`W/"3"`) never matches under strong
//! comparison, and neither does a tag that names no version.

/// The versions an `If-Match` list admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions(Vec<i64>);

/// An `If-Match` value that is not a list of entity tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Versions {
    /// Admits exactly these versions.
    pub fn of(versions: impl IntoIterator<Item = i64>) -> Self {
        Versions(versions.into_iter().collect())
    }

    /// Whether the current version matches one of the listed tags.
    pub fn admits(&self, current: i64) -> bool {
        self.0.contains(&current)
    }

    /// Reads an `If-Match` value: `None` for `*` or an empty value (any current version
    /// matches), otherwise the versions its strong tags name.
    pub fn parse(value: &str) -> Result<Option<Versions>, Malformed> {
        Self::parse_list(value, false)
    }

    /// Reads an `If-None-Match` value, whose tags are compared weakly (`W/"3"` names
    /// version 3 too): `None` for `*` (any current version matches).
    pub fn parse_weak(value: &str) -> Result<Option<Versions>, Malformed> {
        if value.trim_matches([' ', '\t']).is_empty() {
            return Err(Malformed);
        }
        Self::parse_list(value, true)
    }

    fn parse_list(value: &str, weak_matches: bool) -> Result<Option<Versions>, Malformed> {
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() || value == "*" {
            return Ok(None);
        }
        let mut versions = Vec::new();
        // Empty list elements (`, "1",`) are allowed by the list rule.
        let mut rest = value.trim_start_matches([' ', '\t', ',']);
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            let (weak, tag) = match rest.strip_prefix("W/") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let tag = tag.strip_prefix('"').ok_or(Malformed)?;
            let end = tag.find('"').ok_or(Malformed)?;
            let opaque = &tag[..end];
            if !opaque
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
            {
                return Err(Malformed);
            }
            // Only the tag this API writes for a version (`"4"`, not `"04"` or `"+4"`) is it.
            if (!weak || weak_matches)
                && let Ok(v) = opaque.parse::<i64>()
                && v.to_string() == opaque
            {
                versions.push(v);
            }
            rest = tag[end + 1..].trim_start_matches([' ', '\t']);
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix(',').ok_or(Malformed)?;
            while let Some(r) = rest.trim_start_matches([' ', '\t']).strip_prefix(',') {
                rest = r;
            }
            if rest.trim_start_matches([' ', '\t']).is_empty() {
                break;
            }
        }
        Ok(Some(Versions(versions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_strong_tags_admit_each_version_they_name() {
        let v = Versions::parse(r#""3", "5""#).unwrap().unwrap();
        assert!(v.admits(3) && v.admits(5) && !v.admits(4));
        let v = Versions::parse(r#""7""#).unwrap().unwrap();
        assert!(v.admits(7));
        let v = Versions::parse(r#""1",,  "2" "#).unwrap().unwrap();
        assert!(v.admits(1) && v.admits(2));
        let v = Versions::parse(r#", "1","#).unwrap().unwrap();
        assert!(v.admits(1));
    }

    #[test]
    fn any_version_for_a_star_or_nothing() {
        assert_eq!(Versions::parse("*"), Ok(None));
        assert_eq!(Versions::parse(""), Ok(None));
    }

    #[test]
    fn weak_and_foreign_tags_never_match_under_strong_comparison() {
        let v = Versions::parse(r#"W/"3""#).unwrap().unwrap();
        assert!(!v.admits(3));
        let v = Versions::parse(r#""abc", W/"4", "+4", "04""#)
            .unwrap()
            .unwrap();
        assert!(!v.admits(4));
        let v = Versions::parse(r#""a,b", "9""#).unwrap().unwrap();
        assert!(v.admits(9), "a comma inside a tag is part of it");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let v = Versions::parse_weak(r#"W/"3", "4""#).unwrap().unwrap();
        assert!(v.admits(3) && v.admits(4));
        assert_eq!(Versions::parse_weak("*"), Ok(None));
        assert_eq!(Versions::parse_weak(""), Err(Malformed));
    }

    #[test]
    fn what_is_not_a_list_of_tags_is_malformed() {
        for bad in [
            "3",
            "null",
            r#""3"x"#,
            r#""3" "4""#,
            r#""unterminated"#,
            "\"a\"b\"",
            "W/3",
        ] {
            assert_eq!(Versions::parse(bad), Err(Malformed), "{bad}");
        }
    }
}
