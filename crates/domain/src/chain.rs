//! Hash chains: how a run's event log and the global audit log show they were not changed
//! after the fact.
//!
//! Each entry stores `prev_hash` (the previous entry's `hash`; [`GENESIS`] for the first)
//! and `hash` = hex SHA-256 of `prev_hash`, one line feed, and the entry's canonical encoding:
//! its JSON without `prev_hash` and `hash`, object keys sorted at every level, no white space,
//! non-ASCII characters as they are (UTF-8), strings escaped as JSON requires and no more.
//! It is what Python's `json.dumps(body, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` writes, so an auditor can recompute a chain from the API's JSON with
//! a few lines of their own (the README shows them).
//!
//! [`Verifier`] walks stored entries in order and names the first one that does not hold.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::wire::ChainVerdict;

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical encoding of a JSON value (see the module documentation).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            write_scalar(value, out);
        }
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    // serde_json writes scalars exactly as the canonical form asks: minimal escapes (`\"`,
    // `\\`, `\b \f \n \r \t`, other controls as lower-case `\u00xx`), UTF-8 otherwise.
    out.push_str(&value.to_string());
}

/// The part of an entry its hash covers: its JSON as the API serves it, without `prev_hash`
/// and `hash`.
pub fn chained_body<T: Serialize>(entry: &T) -> Result<Value, serde_json::Error> {
    let mut body = serde_json::to_value(entry)?;
    if let Some(map) = body.as_object_mut() {
        map.remove("prev_hash");
        map.remove("hash");
    }
    Ok(body)
}

/// The hash of an entry whose body (its JSON without `prev_hash` and `hash`) is `body`.
pub fn link_hash(prev_hash: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(body).as_bytes());
    hex::encode(hasher.finalize())
}

/// The links to store for entries written before their log was chained: for each unchained
/// entry of `entries` (stored in `seq` order), its `(seq, prev_hash, hash)`, continuing from
/// the entries before it. Stops at an entry whose body does not decode, leaving it and what
/// follows unchained for verification to report.
pub fn missing_links<E>(
    entries: &[E],
    seq: impl Fn(&E) -> i64,
    stored_hash: impl Fn(&E) -> Option<&str>,
    body: impl Fn(&E) -> Result<Value, String>,
) -> Vec<(i64, String, String)> {
    let mut prev = GENESIS.to_owned();
    let mut links = Vec::new();
    for entry in entries {
        if let Some(hash) = stored_hash(entry) {
            prev = hash.to_owned();
            continue;
        }
        let Ok(body) = body(entry) else {
            break;
        };
        let hash = link_hash(&prev, &body);
        links.push((seq(entry), prev, hash.clone()));
        prev = hash;
    }
    links
}

/// Walks a chain's stored entries in `seq` order; the first entry that does not hold breaks
/// the chain there, and what follows is not judged.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    head_hash: Option<String>,
    broken: Option<(i64, String)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier at the start of a chain.
    pub fn new() -> Self {
        Verifier {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
            head_hash: None,
            broken: None,
        }
    }

    /// Whether a break has been found (later entries need not be read).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    fn fail(&mut self, seq: i64, problem: String) {
        if self.broken.is_none() {
            self.broken = Some((seq, problem));
        }
    }

    /// Judges the next stored entry: its `seq`, its body (or why it could not be decoded),
    /// and the hashes stored with it (`None` when it was never chained).
    pub fn entry(
        &mut self,
        seq: i64,
        body: Result<Value, String>,
        stored_prev: Option<&str>,
        stored_hash: Option<&str>,
    ) {
        if self.broken.is_some() {
            return;
        }
        if seq != self.expected_seq {
            let problem = if seq > self.expected_seq {
                format!("entry {} is missing", self.expected_seq)
            } else {
                format!("entry {seq} is out of order")
            };
            let at = self.expected_seq;
            return self.fail(at, problem);
        }
        let body = match body {
            Ok(body) => body,
            Err(problem) => return self.fail(seq, format!("entry {seq} is malformed: {problem}")),
        };
        let (Some(stored_prev), Some(stored_hash)) = (stored_prev, stored_hash) else {
            return self.fail(seq, format!("entry {seq} was never chained"));
        };
        if stored_prev != self.prev_hash {
            return self.fail(
                seq,
                format!("entry {seq} does not link to the entry before it"),
            );
        }
        let hash = link_hash(&self.prev_hash, &body);
        if hash != stored_hash {
            return self.fail(
                seq,
                format!("entry {seq} was changed: its content does not match its hash"),
            );
        }
        self.prev_hash = hash;
        self.head_hash = Some(stored_hash.to_owned());
        self.expected_seq += 1;
    }

    /// The verdict, given how many entries the chain should hold (a run's last `seq`, or
    /// `None` to trust the entries read).
    pub fn finish(mut self, expected_count: Option<i64>) -> ChainVerdict {
        let read = self.expected_seq - 1;
        let count = expected_count.unwrap_or(read).max(read);
        if self.broken.is_none() && read < count {
            let at = self.expected_seq;
            self.fail(at, format!("entry {at} is missing"));
        }
        let (first_bad_seq, problem) = match self.broken {
            Some((seq, problem)) => (Some(seq), Some(problem)),
            None => (None, None),
        };
        ChainVerdict {
            verified: first_bad_seq.is_none(),
            count,
            head_hash: self.head_hash,
            first_bad_seq,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(bodies: &[Value]) -> Vec<(i64, Value, String, String)> {
        let mut prev = GENESIS.to_owned();
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let hash = link_hash(&prev, b);
                let entry = (i as i64 + 1, b.clone(), prev.clone(), hash.clone());
                prev = hash;
                entry
            })
            .collect()
    }

    fn verify(entries: &[(i64, Value, String, String)], count: Option<i64>) -> ChainVerdict {
        let mut v = Verifier::new();
        for (seq, body, prev, hash) in entries {
            v.entry(*seq, Ok(body.clone()), Some(prev), Some(hash));
        }
        v.finish(count)
    }

    fn bodies() -> Vec<Value> {
        (1..=5)
            .map(|i| json!({"seq": i, "payload": {"n": i, "text": "ü\n\"x\""}}))
            .collect()
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_white_space() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "é\u{1}\t/"});
        assert_eq!(
            canonical_json(&v),
            "{\"a\":\"é\\u0001\\t/\",\"b\":[1,{\"a\":true,\"z\":null}]}"
        );
    }

    #[test]
    fn the_hash_is_sha256_of_the_previous_hash_a_line_feed_and_the_body() {
        // python3 -c 'import hashlib; print(hashlib.sha256(("0"*64 + "\n" + "{\"a\":1}").encode()).hexdigest())'
        assert_eq!(
            link_hash(GENESIS, &json!({"a": 1})),
            "f21735afd2cd6af4fc5804b0045cebfd545aef8396d29d030c39cb8880b45b7f"
        );
        let mut hasher = Sha256::new();
        hasher.update(format!("{GENESIS}\n{{\"a\":1}}"));
        assert_eq!(
            link_hash(GENESIS, &json!({"a": 1})),
            hex::encode(hasher.finalize())
        );
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let entries = chain(&bodies());
        let report = verify(&entries, Some(5));
        assert!(report.verified, "{report:?}");
        assert_eq!(report.count, 5);
        assert_eq!(report.head_hash.as_deref(), Some(entries[4].3.as_str()));
        assert_eq!(verify(&[], Some(0)).head_hash, None);
    }

    #[test]
    fn a_changed_entry_breaks_the_chain_at_that_entry() {
        let mut entries = chain(&bodies());
        entries[2].1["payload"]["n"] = json!(99);
        let report = verify(&entries, Some(5));
        assert_eq!(report.first_bad_seq, Some(3));
        assert!(report.problem.unwrap().contains("changed"));
    }

    #[test]
    fn a_rehashed_change_still_breaks_the_link_after_it() {
        let mut entries = chain(&bodies());
        entries[2].1["payload"]["n"] = json!(99);
        entries[2].3 = link_hash(&entries[2].2, &entries[2].1);
        assert_eq!(verify(&entries, Some(5)).first_bad_seq, Some(4));
    }

    #[test]
    fn a_deleted_entry_is_missing_at_its_seq_even_the_last() {
        let mut entries = chain(&bodies());
        entries.remove(1);
        let report = verify(&entries, Some(5));
        assert_eq!(report.first_bad_seq, Some(2));
        assert!(report.problem.unwrap().contains("missing"));
        let mut entries = chain(&bodies());
        entries.pop();
        assert_eq!(verify(&entries, Some(5)).first_bad_seq, Some(5));
    }

    #[test]
    fn swapped_entries_break_at_the_first_of_them() {
        let mut entries = chain(&bodies());
        let (a, b) = (entries[1].1.clone(), entries[3].1.clone());
        entries[1].1 = b;
        entries[3].1 = a;
        assert_eq!(verify(&entries, Some(5)).first_bad_seq, Some(2));
    }

    #[test]
    fn missing_links_continue_the_chain_and_stop_at_what_does_not_decode() {
        let entries = chain(&bodies());
        // The first two chained, the rest written before the chain.
        let stored: Vec<(i64, Option<String>, Value)> = entries
            .iter()
            .map(|(seq, body, _, hash)| (*seq, (*seq <= 2).then(|| hash.clone()), body.clone()))
            .collect();
        let links = missing_links(&stored, |e| e.0, |e| e.1.as_deref(), |e| Ok(e.2.clone()));
        let expected: Vec<_> = entries[2..]
            .iter()
            .map(|(seq, _, prev, hash)| (*seq, prev.clone(), hash.clone()))
            .collect();
        assert_eq!(links, expected);
        let links = missing_links(
            &stored,
            |e| e.0,
            |e| e.1.as_deref(),
            |e| {
                if e.0 == 4 {
                    Err("bad".into())
                } else {
                    Ok(e.2.clone())
                }
            },
        );
        assert_eq!(links.iter().map(|l| l.0).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn a_malformed_or_unchained_entry_is_reported_not_panicked_on() {
        let entries = chain(&bodies());
        let mut v = Verifier::new();
        v.entry(
            1,
            Ok(entries[0].1.clone()),
            Some(&entries[0].2),
            Some(&entries[0].3),
        );
        v.entry(2, Err("unknown type `x`".into()), None, None);
        let report = v.finish(Some(5));
        assert_eq!(report.first_bad_seq, Some(2));
        assert!(report.problem.unwrap().contains("unknown type"));
        let mut v = Verifier::new();
        v.entry(1, Ok(entries[0].1.clone()), None, None);
        assert!(v.finish(None).problem.unwrap().contains("never chained"));
    }
}
