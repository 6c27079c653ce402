//! `shipshape backup`, `export` and `import`: a SQLite copy made while serving, and a whole
//! database moved through a file, between backends too. Each refuses clearly and exits
//! non-zero on bad input, leaving the target as it was.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use shipshape_store::Store;

use crate::config::Config;
use crate::server::StartError;

fn refuse(message: impl Into<String>) -> StartError {
    StartError::Other(message.into())
}

/// A file beside `path` to write first, renamed into place once complete.
fn partial(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// `shipshape backup FILE`.
pub fn backup(config: &Config, path: &Path) -> Result<(), StartError> {
    let store = Store::connect(config.database_url.expose(), 1)?;
    store.backup_sqlite(path)?;
    println!("Backed up the database to {}.", path.display());
    Ok(())
}

/// `shipshape export FILE`.
pub fn export(config: &Config, path: &Path) -> Result<(), StartError> {
    if path.exists() {
        return Err(refuse(format!(
            "{} exists already; name a new file",
            path.display()
        )));
    }
    let store = Store::connect(config.database_url.expose(), 1)?;
    let temp = partial(path);
    // The export holds password hashes and secrets: readable by its owner only.
    let _ = std::fs::remove_file(&temp);
    let file = shipshape_store::private_file(&temp)
        .map_err(|e| refuse(format!("cannot write {}: {e}", temp.display())))?;
    let mut out = BufWriter::new(file);
    let written = store
        .export(&mut out, crate::config::VERSION)
        .and_then(|moved| {
            out.flush()
                .and_then(|()| out.get_ref().sync_all())
                .map_err(|e| {
                    shipshape_store::StoreError::Transfer(format!("cannot write the export: {e}"))
                })?;
            Ok(moved)
        });
    let moved = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e.into());
        }
    };
    std::fs::rename(&temp, path)
        .map_err(|e| refuse(format!("cannot name the export {}: {e}", path.display())))?;
    println!(
        "Exported {} rows of {} tables (schema {}) to {}.",
        moved.rows(),
        moved.tables.len(),
        moved.schema,
        path.display()
    );
    Ok(())
}

/// `shipshape import FILE`.
pub fn import(config: &Config, path: &Path) -> Result<(), StartError> {
    let open = || {
        std::fs::File::open(path)
            .map(BufReader::new)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))
    };
    // The header is checked before the target is touched (not even migrated).
    let mut first = String::new();
    open()?
        .read_line(&mut first)
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
    let header: serde_json::Value = serde_json::from_str(&first)
        .map_err(|_| refuse(format!("{} is not a Shipshape export", path.display())))?;
    shipshape_store::check_header(&header)?;
    let store = Store::connect(config.database_url.expose(), 1)?;
    store.migrate()?;
    let moved = store.import(&mut open()?)?;
    println!(
        "Imported {} rows of {} tables (schema {}); every log verified.",
        moved.rows(),
        moved.tables.len(),
        moved.schema
    );
    Ok(())
}
