//! Moving a whole database: a consistent backup of a SQLite file while it is served, and an
//! export to a file any Shipshape of the same schema imports — on either backend, so a team
//! can move from SQLite to PostgreSQL.
//!
//! The export is JSON lines: a header (the format, the schema's latest migration, where it
//! came from), one line per row (`{"table": …, "row": {column: value}}`, values in one form
//! whatever the backend: integers and floats as numbers, booleans as booleans, times as
//! `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC, bytes as hex), and a trailer with the number of rows
//! and the SHA-256 of every line before it. Tables go in an order that puts every row after
//! the rows it refers to.
//!
//! An import goes into an empty database in one transaction, and verifies every run's event
//! chain and the audit chain before committing: a file that is truncated, altered, from a
//! newer schema or with a broken chain leaves the target as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Double, Integer, Nullable, Text, Timestamp};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::db::AnyConnection;
use crate::{Store, StoreError, StoreResult};

/// The format's name and version in the header.
const FORMAT: &str = "shipshape-export";
const FORMAT_VERSION: i64 = 1;

/// Tables that are not exported: the migrations' own record, and what describes only the
/// running instances (their records and leases, sign-in pacing, answers kept for retries).
/// Queued deliveries and mail are exported: they were acknowledged, and go out from the
/// new database.
const NOT_EXPORTED: [&str; 7] = [
    "__diesel_schema_migrations",
    "instances",
    "stream_leases",
    "work_leases",
    "sign_in_guard",
    "idempotency_keys",
    "sqlite_sequence",
];

/// A column's kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    BigInt,
    Bool,
    Time,
    Float,
    Bytes,
}

fn kind_of(declared: &str) -> Kind {
    let d = declared.to_ascii_lowercase();
    if d.starts_with("timestamp") {
        Kind::Time
    } else if d == "bigint" {
        Kind::BigInt
    } else if d.contains("int") {
        Kind::Int
    } else if d.starts_with("bool") {
        Kind::Bool
    } else if d.contains("real") || d.contains("double") || d.contains("float") {
        Kind::Float
    } else if d == "blob" || d == "bytea" {
        Kind::Bytes
    } else {
        Kind::Text
    }
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
}

#[derive(QueryableByName)]
struct EdgeRow {
    #[diesel(sql_type = Text)]
    from_table: String,
    #[diesel(sql_type = Text)]
    to_table: String,
}

#[derive(QueryableByName)]
struct LineRow {
    #[diesel(sql_type = Text)]
    line: String,
}

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::Transfer(message.into())
}

/// The schema's tables with their columns, in an order that puts each after those it refers to.
fn tables(conn: &mut AnyConnection) -> StoreResult<Vec<(String, Vec<Column>)>> {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let names: Vec<String> = if sqlite {
        diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .load::<NameRow>(conn)?
    } else {
        diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
        .load::<NameRow>(conn)?
    }
    .into_iter()
    .map(|r| r.name)
    .filter(|n| !NOT_EXPORTED.contains(&n.as_str()))
    .collect();
    let edges: Vec<EdgeRow> = if sqlite {
        diesel::sql_query(
            "SELECT m.name AS from_table, f.\"table\" AS to_table \
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        )
        .load(conn)?
    } else {
        // From the catalogue: the information schema shows only what the role owns.
        diesel::sql_query(
            "SELECT f.relname::text AS from_table, t.relname::text AS to_table \
             FROM pg_constraint c \
             JOIN pg_class f ON f.oid = c.conrelid \
             JOIN pg_class t ON t.oid = c.confrelid \
             JOIN pg_namespace n ON n.oid = f.relnamespace \
             WHERE c.contype = 'f' AND n.nspname = current_schema()",
        )
        .load(conn)?
    };
    // Kahn's algorithm, alphabetical among equals so that the order is stable.
    let mut needs: BTreeMap<&str, BTreeSet<&str>> = names
        .iter()
        .map(|n| (n.as_str(), BTreeSet::new()))
        .collect();
    for e in &edges {
        if e.from_table != e.to_table
            && names.contains(&e.to_table)
            && let Some(set) = needs.get_mut(e.from_table.as_str())
        {
            set.insert(e.to_table.as_str());
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    while !needs.is_empty() {
        let ready: Vec<&str> = needs
            .iter()
            .filter(|(_, n)| n.iter().all(|t| ordered.iter().any(|o| o == t)))
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            return Err(bad("the tables refer to each other in a cycle"));
        }
        for t in ready {
            needs.remove(t);
            ordered.push(t.to_owned());
        }
    }
    let mut out = Vec::new();
    for table in ordered {
        let columns: Vec<ColumnRow> = if sqlite {
            diesel::sql_query(
                "SELECT name, type AS declared FROM pragma_table_info($1) ORDER BY cid",
            )
            .bind::<Text, _>(&table)
            .load(conn)?
        } else {
            diesel::sql_query(
                "SELECT column_name::text AS name, data_type::text AS declared \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind::<Text, _>(&table)
            .load(conn)?
        };
        let columns = columns
            .into_iter()
            .map(|c| Column {
                kind: kind_of(&c.declared),
                name: c.name,
            })
            .collect();
        out.push((table, columns));
    }
    Ok(out)
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every row of a table as a JSON object text, in the backend's own forms.
fn raw_rows(conn: &mut AnyConnection, table: &str, columns: &[Column]) -> StoreResult<Vec<String>> {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let sql = if sqlite {
        let fields: Vec<String> = columns
            .iter()
            .map(|c| {
                let q = quoted(&c.name);
                let value = match c.kind {
                    Kind::Bytes => {
                        format!("CASE WHEN {q} IS NULL THEN NULL ELSE lower(hex({q})) END")
                    }
                    Kind::Float => {
                        format!("CASE WHEN {q} IS NULL THEN NULL ELSE printf('%.17g', {q}) END")
                    }
                    _ => q,
                };
                format!("'{}', {value}", c.name.replace('\'', "''"))
            })
            .collect();
        format!(
            "SELECT json_object({}) AS line FROM {} ORDER BY rowid",
            fields.join(", "),
            quoted(table)
        )
    } else {
        let fields: Vec<String> = columns
            .iter()
            .map(|c| {
                let q = quoted(&c.name);
                match c.kind {
                    Kind::Bytes => format!("encode({q}, 'hex') AS {q}"),
                    Kind::Float => format!("({q})::text AS {q}"),
                    _ => q,
                }
            })
            .collect();
        format!(
            "SELECT row_to_json(x)::text AS line FROM (SELECT {} FROM {} ORDER BY ctid) x",
            fields.join(", "),
            quoted(table)
        )
    };
    Ok(diesel::sql_query(sql)
        .load::<LineRow>(conn)?
        .into_iter()
        .map(|r| r.line)
        .collect())
}

/// A time as the backend wrote it, in the export's form.
fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().replace(' ', "T");
    let s = s.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

fn format_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A value as the export holds it.
fn normalise(kind: Kind, value: Value) -> StoreResult<Value> {
    Ok(match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Bool, Value::Number(n)) => Value::Bool(n.as_i64().unwrap_or(0) != 0),
        (Kind::Time, Value::String(s)) => Value::String(format_time(
            parse_time(&s).ok_or_else(|| bad(format!("a stored time is not one: {s}")))?,
        )),
        (Kind::Float, Value::String(s)) => json!(
            s.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("a stored number is not one: {s}")))?
        ),
        (_, v) => v,
    })
}

/// The latest migration the database has (the schema's version).
fn schema_version(conn: &mut AnyConnection) -> StoreResult<String> {
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = Nullable<Text>)]
        version: Option<String>,
    }
    let v: V = diesel::sql_query("SELECT MAX(version) AS version FROM __diesel_schema_migrations")
        .get_result(conn)?;
    v.version
        .ok_or_else(|| bad("the database has no migrations applied"))
}

/// Creates a new, empty file only its owner may read and write.
pub fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Checks an export's first line (before anything is touched): a Shipshape export, in a
/// format this build reads, of this build's schema. Its schema version, or why not.
pub fn check_header(header: &Value) -> StoreResult<String> {
    if header["format"] != FORMAT {
        return Err(bad("not a Shipshape export"));
    }
    if header["version"].as_i64() != Some(FORMAT_VERSION) {
        return Err(bad(format!(
            "an export in format version {} (this build reads {FORMAT_VERSION}); import it with the version that made it",
            header["version"]
        )));
    }
    let schema = header["schema"].as_str().unwrap_or("").to_owned();
    let ours = latest_migration();
    if schema > ours {
        return Err(bad(format!(
            "the export is from a newer version of Shipshape (schema {schema}; this one knows up to {ours}): upgrade this one first"
        )));
    }
    if schema != ours {
        return Err(bad(format!(
            "the export is from an older schema ({schema}; this one is {ours}): run `shipshape migrate` on the source with this version, then export again"
        )));
    }
    Ok(schema)
}

/// The latest migration this build knows (the same on both backends).
pub fn latest_migration() -> String {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::sqlite::Sqlite>::migrations(&crate::db::SQLITE_MIGRATIONS)
        .map(|ms| {
            ms.iter()
                .map(|m| m.name().version().to_string())
                .max()
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// What an export or import moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Rows, per table, in the order moved.
    pub tables: Vec<(String, usize)>,
    /// The schema version (latest migration).
    pub schema: String,
}

impl Moved {
    /// Rows in all.
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

struct Digesting<'a> {
    out: &'a mut dyn Write,
    digest: Sha256,
}

impl Digesting<'_> {
    fn line(&mut self, value: &Value) -> StoreResult<()> {
        let mut text = serde_json::to_string(value).map_err(|e| bad(e.to_string()))?;
        text.push('\n');
        self.digest.update(text.as_bytes());
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| bad(format!("cannot write the export: {e}")))
    }
}

impl Store {
    /// Makes a consistent copy of a SQLite database at `path` while it is served (SQLite's
    /// `VACUUM INTO`: one read transaction, so every write committed before it began is in
    /// the copy). Refuses an existing file. PostgreSQL has its own tools (`pg_dump`), or
    /// [`Store::export`].
    pub fn backup_sqlite(&self, path: &std::path::Path) -> StoreResult<()> {
        if path.exists() {
            return Err(bad(format!(
                "{} exists already; name a new file",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| bad("the backup's path is not UTF-8"))?
            .to_owned();
        if matches!(self.url, crate::DbUrl::Postgres(_)) {
            return Err(bad(
                "backup copies a SQLite database; for PostgreSQL use pg_dump, or shipshape export",
            ));
        }
        // The copy holds password hashes and secrets: readable by its owner only. SQLite
        // writes into an empty file it is given.
        private_file(path).map_err(|e| bad(format!("cannot write the backup to {target}: {e}")))?;
        let made = self.with(&self.read, |conn| match conn {
            AnyConnection::Sqlite(_) => {
                diesel::sql_query("VACUUM INTO $1")
                    .bind::<Text, _>(&target)
                    .execute(conn)
                    .map_err(|e| bad(format!("cannot write the backup to {target}: {e}")))?;
                Ok(())
            }
            AnyConnection::Postgresql(_) => Err(bad("not a SQLite database")),
        });
        if made.is_err() {
            let _ = std::fs::remove_file(path);
        }
        made
    }

    /// Writes every table to `out` from one consistent snapshot.
    pub fn export(&self, out: &mut dyn Write, by: &str) -> StoreResult<Moved> {
        // Not retried on a lost connection like other reads: half a file is already written.
        self.snapshot(|conn| {
            let schema = schema_version(conn)?;
            let tables = tables(conn)?;
            let mut w = Digesting {
                out: &mut *out,
                digest: Sha256::new(),
            };
            w.line(&json!({
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "schema": schema,
                "from": self.backend(),
                "by": by,
                "tables": tables.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            }))?;
            let mut moved = Vec::new();
            for (table, columns) in &tables {
                let rows = raw_rows(conn, table, columns)?;
                for raw in &rows {
                    let stored: Map<String, Value> =
                        serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
                    let mut row = Map::new();
                    for c in columns {
                        let v = stored.get(&c.name).cloned().unwrap_or(Value::Null);
                        row.insert(c.name.clone(), normalise(c.kind, v)?);
                    }
                    w.line(&json!({"table": table, "row": row}))?;
                }
                moved.push((table.clone(), rows.len()));
            }
            let total: usize = moved.iter().map(|(_, n)| n).sum();
            let digest = hex::encode(w.digest.clone().finalize());
            w.line(&json!({"end": {"rows": total, "sha256": digest}}))?;
            Ok(Moved {
                tables: moved,
                schema,
            })
        })
    }

    /// Reads an export into this database, which must hold no users, templates or runs
    /// (a new one, migrated): all of it in one transaction, with every chain verified before
    /// it commits.
    pub fn import(&self, input: &mut dyn BufRead) -> StoreResult<Moved> {
        let mut lines = input.lines();
        let mut digest = Sha256::new();
        // Every line but the trailer counts into the digest the trailer states.
        let mut next = |digest: &mut Sha256| -> StoreResult<Option<(String, Value)>> {
            match lines.next() {
                None => Ok(None),
                Some(Err(e)) => Err(bad(format!("cannot read the file: {e}"))),
                Some(Ok(text)) => {
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| bad(format!("not an export: a line is not JSON ({e})")))?;
                    if value.get("end").is_none() {
                        digest.update(text.as_bytes());
                        digest.update(b"\n");
                    }
                    Ok(Some((text, value)))
                }
            }
        };
        let (_, header) = next(&mut digest)?.ok_or_else(|| bad("the file is empty"))?;
        let schema = check_header(&header)?;
        let ours = latest_migration();
        self.write(|conn| {
            let tables = tables(conn)?;
            let found = schema_version(conn)?;
            if found != ours {
                return Err(bad(format!(
                    "the target database is at schema {found}, not {ours}: run `shipshape migrate` on it"
                )));
            }
            for table in ["users", "templates", "runs"] {
                #[derive(QueryableByName)]
                struct N {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                let n: N = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {}", quoted(table)))
                    .get_result(conn)?;
                if n.n > 0 {
                    return Err(bad(format!(
                        "the target database is not empty ({table} has rows): import into a new database"
                    )));
                }
            }
            // Rows a migration seeded are replaced by the export's.
            for (table, _) in tables.iter().rev() {
                diesel::sql_query(format!("DELETE FROM {}", quoted(table))).execute(conn)?;
            }
            let by_name: BTreeMap<&str, &Vec<Column>> =
                tables.iter().map(|(t, c)| (t.as_str(), c)).collect();
            let mut moved: Vec<(String, usize)> = Vec::new();
            let mut ended = None;
            while let Some((_, line)) = next(&mut digest)? {
                if let Some(end) = line.get("end") {
                    ended = Some(end.clone());
                    break;
                }
                let table = line["table"]
                    .as_str()
                    .ok_or_else(|| bad("a line names no table"))?;
                let columns = by_name
                    .get(table)
                    .ok_or_else(|| bad(format!("the export has a table this schema has not: {table}")))?;
                let row = line["row"]
                    .as_object()
                    .ok_or_else(|| bad(format!("a row of {table} is not an object")))?;
                insert(conn, table, columns, row)?;
                match moved.last_mut() {
                    Some((t, n)) if t == table => *n += 1,
                    _ => moved.push((table.to_owned(), 1)),
                }
            }
            let end = ended.ok_or_else(|| bad("the file ends early: it has no trailer"))?;
            if next(&mut digest)?.is_some() {
                return Err(bad("the file goes on after its trailer"));
            }
            let total: usize = moved.iter().map(|(_, n)| n).sum();
            if end["rows"].as_u64() != Some(total as u64) {
                return Err(bad(format!(
                    "the file holds {total} rows but its trailer says {}",
                    end["rows"]
                )));
            }
            if end["sha256"].as_str() != Some(hex::encode(digest.clone().finalize()).as_str()) {
                return Err(bad("the file was changed after it was written: its digest does not match"));
            }
            // The logs must verify as they did where they came from.
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = Text)]
                id: String,
            }
            let runs: Vec<Id> = diesel::sql_query("SELECT id FROM runs ORDER BY id").load(conn)?;
            for run in runs {
                let verdict = crate::runs::verify_run_on(conn, &run.id)?;
                if !verdict.verified {
                    return Err(bad(format!(
                        "run {}'s event log does not verify (at seq {}): {}",
                        run.id,
                        verdict.first_bad_seq.unwrap_or(0),
                        verdict.problem.unwrap_or_default()
                    )));
                }
            }
            let audit = crate::audit::verify_audit_on(conn)?;
            if !audit.verified {
                return Err(bad(format!(
                    "the audit log does not verify (at seq {}): {}",
                    audit.first_bad_seq.unwrap_or(0),
                    audit.problem.unwrap_or_default()
                )));
            }
            Ok(moved)
        })
        .map(|moved| Moved {
            tables: moved,
            schema,
        })
    }
}

/// Inserts one row, each value bound as its column's kind.
fn insert(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[Column],
    row: &Map<String, Value>,
) -> StoreResult<()> {
    for name in row.keys() {
        if !columns.iter().any(|c| &c.name == name) {
            return Err(bad(format!("{table} has no column {name}")));
        }
    }
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quoted(table),
        names.join(", "),
        marks.join(", ")
    );
    let mut q = diesel::sql_query(sql).into_boxed::<<AnyConnection as Connection>::Backend>();
    for c in columns {
        let v = row.get(&c.name).unwrap_or(&Value::Null);
        let wrong = || bad(format!("{table}.{}: {v} is not a {:?}", c.name, c.kind));
        q = match c.kind {
            Kind::Text => q.bind::<Nullable<Text>, _>(match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(wrong()),
            }),
            Kind::Int => q.bind::<Nullable<Integer>, _>(match v {
                Value::Null => None,
                _ => Some(
                    v.as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(wrong)?,
                ),
            }),
            Kind::BigInt => q.bind::<Nullable<BigInt>, _>(match v {
                Value::Null => None,
                _ => Some(v.as_i64().ok_or_else(wrong)?),
            }),
            Kind::Bool => q.bind::<Nullable<Bool>, _>(match v {
                Value::Null => None,
                _ => Some(v.as_bool().ok_or_else(wrong)?),
            }),
            Kind::Float => q.bind::<Nullable<Double>, _>(match v {
                Value::Null => None,
                _ => Some(v.as_f64().ok_or_else(wrong)?),
            }),
            Kind::Time => q.bind::<Nullable<Timestamp>, _>(match v {
                Value::Null => None,
                _ => Some(v.as_str().and_then(parse_time).ok_or_else(wrong)?),
            }),
            Kind::Bytes => q.bind::<Nullable<Binary>, _>(match v {
                Value::Null => None,
                _ => Some(
                    v.as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .ok_or_else(wrong)?,
                ),
            }),
        };
    }
    q.execute(conn)?;
    Ok(())
}
