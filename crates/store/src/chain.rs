//! What the two chained logs (run events, the audit log) share in the store: reading a
//! chain's stored entries through the domain's verifier, a batch at a time, and chaining
//! entries written before their log was chained. The rules are `shipshape_domain::chain`.

use serde_json::Value;
use shipshape_domain::chain::{Verifier, missing_links};
use shipshape_domain::wire::ChainVerdict;

use crate::StoreResult;

/// How many entries a verification reads at once.
const BATCH: i64 = 500;

/// A stored entry of a chained log.
pub(crate) trait ChainEntry {
    /// Its place in the log.
    fn seq(&self) -> i64;
    /// The part of it the hash covers, or why it does not decode.
    fn body(&self) -> Result<Value, String>;
    /// The previous entry's hash, as stored (`None`: never chained).
    fn prev_hash(&self) -> Option<&str>;
    /// Its hash, as stored (`None`: never chained).
    fn hash(&self) -> Option<&str>;
}

/// Verifies a chain that should hold `expected_count` entries, reading them with `load(after,
/// limit)` in `seq` order until the end or the first break.
pub(crate) fn verify<E: ChainEntry>(
    expected_count: i64,
    mut load: impl FnMut(i64, i64) -> StoreResult<Vec<E>>,
) -> StoreResult<ChainVerdict> {
    let mut verifier = Verifier::new();
    let mut after = 0;
    loop {
        let entries = load(after, BATCH)?;
        for e in &entries {
            verifier.entry(e.seq(), e.body(), e.prev_hash(), e.hash());
        }
        match entries.last() {
            Some(last) if !verifier.is_broken() && entries.len() as i64 == BATCH => {
                after = last.seq();
            }
            _ => break,
        }
    }
    Ok(verifier.finish(Some(expected_count)))
}

/// The `(seq, prev_hash, hash)` to store for the entries of `entries` (a whole log, in `seq`
/// order) that were never chained. One that does not decode, and those after it, stay
/// unchained for verification to report; `log` names the log in the warning.
pub(crate) fn links_to_store<E: ChainEntry>(
    entries: &[E],
    log: &str,
) -> Vec<(i64, String, String)> {
    let links = missing_links(entries, E::seq, E::hash, E::body);
    if links.len() < entries.iter().filter(|e| e.hash().is_none()).count() {
        tracing::warn!(
            log,
            "an entry does not decode; it and those after it stay unchained"
        );
    }
    links
}
