//! `shipshape audit verify`: checks the hash chains of the stored logs from the command line
//! and prints one verdict per log, for operators and auditors with database access.

use shipshape_domain::wire::ChainVerdict;
use shipshape_store::Store;

use crate::config::Config;
use crate::server::StartError;

/// One verdict as a line: what was checked, intact or where it breaks, and the head hash.
pub fn line(what: &str, v: &ChainVerdict) -> String {
    let head = v.head_hash.as_deref().unwrap_or("-");
    match (v.first_bad_seq, &v.problem) {
        (Some(seq), problem) => format!(
            "{what}: BROKEN at seq {seq}: {} ({} entries, last good head {head})",
            problem.as_deref().unwrap_or("broken"),
            v.count
        ),
        (None, _) => format!("{what}: verified, {} entries, head {head}", v.count),
    }
}

/// Verifies one run's event log, or every run's and the audit log; prints each verdict.
/// `Ok(false)` when any chain is broken.
pub fn verify(config: &Config, run: Option<&str>) -> Result<bool, StartError> {
    let store = Store::connect(config.database_url.expose(), 1)?;
    store.migrate()?;
    let mut intact = true;
    let mut report = |what: String, v: ChainVerdict| {
        intact &= v.verified;
        println!("{}", line(&what, &v));
    };
    match run {
        Some(id) => report(format!("run {id}"), store.verify_run(id)?),
        None => {
            for id in store.run_ids()? {
                let verdict = store.verify_run(&id)?;
                report(format!("run {id}"), verdict);
            }
            report("audit log".into(), store.verify_audit_log()?);
        }
    }
    Ok(intact)
}
