//! Probe items: checklist items the server checks for itself with an HTTP request, keeping
//! each result as the item's evidence.
//!
//! A [`ProbeSpec`] is what a template declares: the request (method and a URL that may use
//! the run's fields), what a passing answer looks like (status, an optional JSON Pointer with
//! an expected value or a regular expression), a latency limit, how long a result stays
//! fresh, and how often it is repeated while the run is in the stage the item gates. The
//! rules here are pure: the API makes the request and hands the answer to [`evaluate`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The HTTP method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum ProbeMethod {
    /// `GET`: the answer's body can be checked.
    #[default]
    Get,
    /// `HEAD`: status and latency only.
    Head,
}

impl ProbeMethod {
    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeMethod::Get => "GET",
            ProbeMethod::Head => "HEAD",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [ProbeMethod::Get, ProbeMethod::Head]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The default expected status.
pub const DEFAULT_STATUS: u16 = 200;
/// How long a result stays fresh unless the template says otherwise (15 minutes).
pub const DEFAULT_TTL_SECS: u32 = 15 * 60;
/// The shortest freshness limit and schedule accepted.
pub const MIN_INTERVAL_SECS: u32 = 10;
/// The longest freshness limit accepted (a week).
pub const MAX_TTL_SECS: u32 = 7 * 24 * 3600;
/// The highest latency limit accepted (the request is abandoned after it anyway).
pub const MAX_LATENCY_MS: u32 = 60_000;
/// The longest regular expression or expected value accepted.
pub const MAX_PATTERN_LEN: usize = 500;
/// The most of an answer's body read: a larger answer fails a check that reads the body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest excerpt of an answer kept with a result.
pub const EXCERPT_CHARS: usize = 300;

/// The placeholders a probe's URL (and expected value) may use.
pub const PLACEHOLDERS: [&str; 4] = ["base_url", "environment", "product", "version"];

/// An HTTP check declared by a template item (`kind=probe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// The request's method.
    #[serde(default)]
    pub method: ProbeMethod,
    /// The URL, absolute http(s), or starting with `{base_url}` (the run's environment's base
    /// URL). May use `{environment}`, `{product}` and `{version}` (the run's fields,
    /// percent-encoded).
    pub url: String,
    /// The status a passing answer has.
    #[serde(default = "default_status")]
    pub status: u16,
    /// A JSON Pointer (RFC 6901) into the answer's body, which must then be JSON and hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The value expected at `pointer` (or the whole body): a JSON string compares by its
    /// text, any other value by its JSON form. May use the URL's placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// A regular expression the value at `pointer` (or the whole body) must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// The slowest passing answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u32>,
    /// How long a passing result counts, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u32,
    /// How often the server repeats the check while the run is in the stage the item gates,
    /// in seconds (default: half the freshness limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u32>,
}

impl Default for ProbeSpec {
    /// A GET of no URL: what the web app holds in place of a check it does not read.
    fn default() -> Self {
        ProbeSpec::get(String::new())
    }
}

fn default_status() -> u16 {
    DEFAULT_STATUS
}

fn default_ttl() -> u32 {
    DEFAULT_TTL_SECS
}

/// The run's fields a probe's URL is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeVars<'a> {
    /// The base URL set for the run's environment, if any.
    pub base_url: Option<&'a str>,
    /// The run's environment.
    pub environment: &'a str,
    /// The run's product.
    pub product: &'a str,
    /// The run's release version.
    pub version: &'a str,
}

impl ProbeSpec {
    /// A GET probe of `url` expecting 200, with the default freshness.
    pub fn get(url: impl Into<String>) -> Self {
        ProbeSpec {
            method: ProbeMethod::Get,
            url: url.into(),
            status: DEFAULT_STATUS,
            pointer: None,
            equals: None,
            matches: None,
            max_latency_ms: None,
            ttl_secs: DEFAULT_TTL_SECS,
            every_secs: None,
        }
    }

    /// How often the check is repeated on schedule, in seconds.
    pub fn interval_secs(&self) -> u32 {
        self.every_secs
            .unwrap_or((self.ttl_secs / 2).max(MIN_INTERVAL_SECS))
    }

    /// Whether the check reads the answer's body.
    pub fn reads_body(&self) -> bool {
        self.pointer.is_some() || self.equals.is_some() || self.matches.is_some()
    }

    /// Checks the declaration; the message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let sample = ProbeVars {
            base_url: Some("https://base.example"),
            environment: "production",
            product: "product",
            version: "1.0.0",
        };
        for (name, value) in [
            ("url", Some(&self.url)),
            ("pointer", self.pointer.as_ref()),
            ("equals", self.equals.as_ref()),
            ("matches", self.matches.as_ref()),
        ] {
            if let Some(v) = value
                && (v.contains("<!--") || v.contains("-->") || v.chars().any(char::is_control))
            {
                return Err(format!(
                    "probe {name} must not contain `<!--`, `-->` or control characters"
                ));
            }
        }
        if let Some(p) = &self.pointer
            && p.contains(|c: char| c.is_whitespace() || c == '"')
        {
            return Err(format!(
                "probe pointer `{p}` must not contain spaces or `\"`"
            ));
        }
        if !(self.url.starts_with("{base_url}")
            || self.url.starts_with("https://")
            || self.url.starts_with("http://"))
        {
            return Err(format!(
                "probe url `{}` must start with http://, https:// or {{base_url}}",
                self.url
            ));
        }
        let url = expand(&self.url, &sample, true)?;
        crate::text::HttpUrl::parse("url", &url)
            .map_err(|e| format!("probe url: {}", e.message))?;
        if !(100..=599).contains(&self.status) {
            return Err(format!(
                "probe status {} is not an HTTP status (100 to 599)",
                self.status
            ));
        }
        if let Some(p) = &self.pointer
            && !(p.is_empty() || p.starts_with('/'))
        {
            return Err(format!(
                "probe pointer `{p}` is not a JSON Pointer: it is empty or starts with `/`"
            ));
        }
        if self.equals.is_some() && self.matches.is_some() {
            return Err("a probe takes `equals` or `matches`, not both".into());
        }
        if self.method == ProbeMethod::Head && self.reads_body() {
            return Err(
                "a HEAD probe has no body to check: use GET with pointer, equals or matches".into(),
            );
        }
        if let Some(e) = &self.equals {
            if e.chars().count() > MAX_PATTERN_LEN {
                return Err(format!(
                    "probe equals: at most {MAX_PATTERN_LEN} characters"
                ));
            }
            expand(e, &sample, false)?;
        }
        if let Some(m) = &self.matches {
            if m.chars().count() > MAX_PATTERN_LEN {
                return Err(format!(
                    "probe matches: at most {MAX_PATTERN_LEN} characters"
                ));
            }
            if let Err(e) = matches(m, "")
                && cfg!(feature = "regex")
            {
                return Err(e);
            }
        }
        if let Some(l) = self.max_latency_ms
            && !(1..=MAX_LATENCY_MS).contains(&l)
        {
            return Err(format!(
                "probe latency limit must be between 1 ms and {} s",
                MAX_LATENCY_MS / 1000
            ));
        }
        if !(MIN_INTERVAL_SECS..=MAX_TTL_SECS).contains(&self.ttl_secs) {
            return Err(format!(
                "probe ttl must be between {MIN_INTERVAL_SECS} s and {} days",
                MAX_TTL_SECS / 86_400
            ));
        }
        if let Some(e) = self.every_secs
            && !(MIN_INTERVAL_SECS..self.ttl_secs).contains(&e)
        {
            return Err(format!(
                "probe every must be at least {MIN_INTERVAL_SECS} s and shorter than its ttl \
                 ({}), or a result goes stale before the next check",
                format_duration(self.ttl_secs)
            ));
        }
        Ok(())
    }

    /// The URL to request for a run.
    pub fn url_for(&self, vars: &ProbeVars<'_>) -> Result<String, String> {
        expand(&self.url, vars, true)
    }

    /// The expected value for a run, if any.
    pub fn equals_for(&self, vars: &ProbeVars<'_>) -> Result<Option<String>, String> {
        self.equals
            .as_deref()
            .map(|e| expand(e, vars, false))
            .transpose()
    }
}

/// A regular expression of a probe, compiled with a size limit.
#[cfg(feature = "regex")]
fn compile(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let first = e.to_string();
            let first = first.lines().last().unwrap_or("invalid").trim().to_owned();
            format!("probe matches `{pattern}` is not a valid regular expression: {first}")
        })
}

/// Whether `value` matches `pattern`; an error saying why the pattern is not valid.
#[cfg(feature = "regex")]
fn matches(pattern: &str, value: &str) -> Result<bool, String> {
    compile(pattern).map(|re| re.is_match(value))
}

/// Without the `regex` feature (the web app) patterns are the server's to judge.
#[cfg(not(feature = "regex"))]
fn matches(_pattern: &str, _value: &str) -> Result<bool, String> {
    Err("regular expressions are judged by the server".into())
}

/// Writes `template` with the run's fields. In a URL (`encode`), `{environment}`,
/// `{product}` and `{version}` are percent-encoded and `{base_url}` loses a trailing `/`.
fn expand(template: &str, vars: &ProbeVars<'_>, encode: bool) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("`{template}`: `{{` is never closed"));
        };
        let name = &after[..close];
        let value: String = match name {
            "base_url" => match vars.base_url {
                Some(b) => b.trim_end_matches('/').to_owned(),
                None => {
                    return Err(format!(
                        "environment `{}` has no base URL: an administrator sets it under \
                         Environments",
                        vars.environment
                    ));
                }
            },
            "environment" => field(vars.environment, encode),
            "product" => field(vars.product, encode),
            "version" => field(vars.version, encode),
            other => {
                return Err(format!(
                    "`{{{other}}}` is not a placeholder; use {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`{template}`: `}}` without `{{`"));
    }
    out.push_str(rest);
    Ok(out)
}

fn field(value: &str, encode: bool) -> String {
    if !encode {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An answer to a probe's request, as the API received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    /// The HTTP status.
    pub status: u16,
    /// How long the answer took, in milliseconds.
    pub latency_ms: u64,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: &'a [u8],
    /// Whether the body was longer than what was read.
    pub truncated: bool,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the answer is what the probe expects.
    pub passed: bool,
    /// What matched or did not, in a sentence ("expected 200, got 503").
    pub summary: String,
    /// The observed value a decision criterion reads: the value at the pointer, or the
    /// status and latency.
    pub observed: String,
}

/// Judges an answer. `equals` is the expected value written for the run
/// ([`ProbeSpec::equals_for`]).
pub fn evaluate(spec: &ProbeSpec, equals: Option<&str>, answer: &Observation<'_>) -> Verdict {
    let timing = format!("HTTP {} in {} ms", answer.status, answer.latency_ms);
    let fail = |summary: String, observed: String| Verdict {
        passed: false,
        summary,
        observed,
    };
    if answer.status != spec.status {
        let summary = if (300..400).contains(&answer.status) {
            format!(
                "expected {}, got {} (redirects are not followed)",
                spec.status, answer.status
            )
        } else {
            format!("expected {}, got {}", spec.status, answer.status)
        };
        return fail(summary, timing);
    }
    if let Some(limit) = spec.max_latency_ms
        && answer.latency_ms > u64::from(limit)
    {
        return fail(
            format!("took {} ms, limit {limit} ms", answer.latency_ms),
            format!("{} ms", answer.latency_ms),
        );
    }
    if !spec.reads_body() {
        return Verdict {
            passed: true,
            summary: timing.clone(),
            observed: timing,
        };
    }
    if answer.truncated {
        return fail(
            format!(
                "the answer is larger than {} KiB, more than a check reads",
                MAX_BODY_BYTES / 1024
            ),
            timing,
        );
    }
    let text = String::from_utf8_lossy(answer.body);
    let (what, value) = match &spec.pointer {
        None => ("the answer".to_owned(), text.trim().to_owned()),
        Some(pointer) => {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                return fail(
                    format!("the answer is not JSON, so `{pointer}` cannot be read"),
                    timing,
                );
            };
            let Some(found) = json.pointer(pointer) else {
                return fail(format!("`{pointer}` is not in the answer"), timing);
            };
            let value = match found {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("`{pointer}`"), value)
        }
    };
    let shown = excerpt(&value, 80);
    if let Some(expected) = equals
        && value != expected
    {
        return fail(
            format!("{what} is \"{shown}\", expected \"{expected}\""),
            shown,
        );
    }
    if let Some(pattern) = &spec.matches {
        match matches(pattern, &value) {
            Ok(true) => {}
            Ok(false) => {
                return fail(format!("{what} does not match `{pattern}`"), shown);
            }
            Err(e) => return fail(e, shown),
        }
    }
    let summary = match &spec.pointer {
        Some(_) => format!("{timing}, {what} is \"{shown}\""),
        None => timing,
    };
    Verdict {
        passed: true,
        summary,
        observed: shown,
    }
}

/// The first `chars` characters of `text` on one line, control characters replaced, `…`
/// marking a cut.
pub fn excerpt(text: &str, chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(chars).is_some() {
        out.push('…');
    }
    out
}

/// Why a passing result no longer counts, if it does not: "last check 20 min ago, limit
/// 15 min".
pub fn staleness(checked_at: DateTime<Utc>, ttl_secs: u32, now: DateTime<Utc>) -> Option<String> {
    let age = (now - checked_at).num_seconds().max(0);
    (age > i64::from(ttl_secs)).then(|| {
        format!(
            "last check {} ago, limit {}",
            format_age(age),
            format_age(i64::from(ttl_secs))
        )
    })
}

/// An age in words: "40 s", "20 min", "3 h 5 min".
pub fn format_age(secs: i64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    }
}

/// Reads a duration in the Markdown form, `30s`, `15m`, `2h` or `1d`, as seconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(unit_at);
    let n: u32 = n.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Writes seconds in the Markdown form, with the largest unit that is exact.
pub fn format_duration(secs: u32) -> String {
    for (scale, unit) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if secs >= scale && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

/// Reads a latency limit, `800ms` or `2s`, as milliseconds.
pub fn parse_latency(s: &str) -> Option<u32> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms
            .parse()
            .ok()
            .filter(|_| ms.bytes().all(|b| b.is_ascii_digit()));
    }
    let secs = s.strip_suffix('s')?;
    if !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    secs.parse::<u32>().ok()?.checked_mul(1000)
}

/// Writes a latency limit in the Markdown form.
pub fn format_latency(ms: u32) -> String {
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(base: Option<&'static str>) -> ProbeVars<'static> {
        ProbeVars {
            base_url: base,
            environment: "prod eu",
            product: "EduLibra",
            version: "4.2.0",
        }
    }

    fn answer(status: u16, latency_ms: u64, body: &str) -> Observation<'_> {
        Observation {
            status,
            latency_ms,
            body: body.as_bytes(),
            truncated: false,
        }
    }

    #[test]
    fn urls_are_written_with_the_runs_fields_and_the_environments_base_url() {
        let spec = ProbeSpec::get("{base_url}/v/{version}/{environment}");
        assert_eq!(
            spec.url_for(&vars(Some("https://edu.example/"))).unwrap(),
            "https://edu.example/v/4.2.0/prod%20eu"
        );
        let e = spec.url_for(&vars(None)).unwrap_err();
        assert!(e.contains("environment `prod eu` has no base URL"), "{e}");
        let bad = ProbeSpec::get("https://x.example/{nope}");
        assert!(
            bad.check()
                .unwrap_err()
                .contains("`{nope}` is not a placeholder")
        );
        assert!(ProbeSpec::get("ftp://x").check().is_err());
        assert!(
            ProbeSpec::get("https://x.example/{version")
                .check()
                .is_err()
        );
        assert!(spec.check().is_ok());
    }

    #[test]
    fn a_check_reads_status_latency_pointer_value_and_pattern() {
        let mut spec = ProbeSpec::get("https://x.example/health");
        assert!(evaluate(&spec, None, &answer(200, 12, "")).passed);
        let v = evaluate(&spec, None, &answer(503, 12, ""));
        assert_eq!(
            (v.passed, v.summary.as_str()),
            (false, "expected 200, got 503")
        );
        let v = evaluate(&spec, None, &answer(302, 12, ""));
        assert!(
            v.summary.contains("redirects are not followed"),
            "{}",
            v.summary
        );
        spec.max_latency_ms = Some(800);
        let v = evaluate(&spec, None, &answer(200, 1200, ""));
        assert_eq!(v.summary, "took 1200 ms, limit 800 ms");
        spec.pointer = Some("/status".into());
        spec.equals = Some("ok".into());
        let v = evaluate(&spec, Some("ok"), &answer(200, 5, r#"{"status":"ok"}"#));
        assert!(v.passed, "{}", v.summary);
        assert_eq!(v.observed, "ok");
        let v = evaluate(&spec, Some("ok"), &answer(200, 5, r#"{"status":"down"}"#));
        assert_eq!(v.summary, "`/status` is \"down\", expected \"ok\"");
        let v = evaluate(&spec, Some("ok"), &answer(200, 5, "<html>"));
        assert!(v.summary.contains("not JSON"), "{}", v.summary);
        let v = evaluate(&spec, Some("ok"), &answer(200, 5, "{}"));
        assert_eq!(v.summary, "`/status` is not in the answer");
        spec.pointer = Some("/count".into());
        spec.equals = Some("3".into());
        assert!(evaluate(&spec, Some("3"), &answer(200, 5, r#"{"count":3}"#)).passed);
        spec.pointer = None;
        spec.equals = None;
        spec.matches = Some("^OK( |$)".into());
        assert!(evaluate(&spec, None, &answer(200, 5, "OK all good")).passed);
        assert!(!evaluate(&spec, None, &answer(200, 5, "NOT OK")).passed);
        let huge = Observation {
            truncated: true,
            ..answer(200, 5, "OK")
        };
        assert!(evaluate(&spec, None, &huge).summary.contains("larger than"));
    }

    #[test]
    fn declarations_are_checked() {
        let mut spec = ProbeSpec::get("{base_url}/healthz");
        spec.matches = Some("(unclosed".into());
        assert!(
            spec.check()
                .unwrap_err()
                .contains("not a valid regular expression")
        );
        spec.matches = Some("ok".into());
        spec.equals = Some("ok".into());
        assert!(spec.check().unwrap_err().contains("not both"));
        spec.equals = None;
        spec.method = ProbeMethod::Head;
        assert!(spec.check().is_err());
        spec.method = ProbeMethod::Get;
        spec.ttl_secs = 5;
        assert!(spec.check().is_err());
        spec.ttl_secs = 600;
        spec.every_secs = Some(900);
        assert!(
            spec.check()
                .unwrap_err()
                .contains("shorter than its ttl (10m)")
        );
        spec.every_secs = Some(600);
        assert!(
            spec.check().is_err(),
            "as long as the ttl: stale before the next check"
        );
        spec.every_secs = Some(60);
        spec.status = 42;
        assert!(spec.check().is_err());
        spec.status = 204;
        assert!(spec.check().is_ok());
        assert_eq!(spec.interval_secs(), 60);
    }

    #[test]
    fn durations_and_ages_read_and_write() {
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(format_duration(900), "15m");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(86_400), "1d");
        assert_eq!(parse_latency("800ms"), Some(800));
        assert_eq!(parse_latency("2s"), Some(2000));
        assert_eq!(parse_latency("2"), None);
        assert_eq!(format_latency(2000), "2s");
        assert_eq!(format_latency(800), "800ms");
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(staleness(t, 900, t + chrono::Duration::minutes(10)), None);
        assert_eq!(
            staleness(t, 900, t + chrono::Duration::minutes(20)).as_deref(),
            Some("last check 20 min ago, limit 15 min")
        );
    }
}
