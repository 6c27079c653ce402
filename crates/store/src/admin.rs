//! Database administration that is not part of serving: creating and dropping whole
//! PostgreSQL databases (used by the test suites and the benchmark harness, which give every
//! run a fresh database), and dumping a schema to compare migrations.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::{AnyConnection, StoreError, StoreResult};

/// Replaces the database name in a PostgreSQL URL.
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Config(format!("bad database name `{name}`")));
    }
    Ok(())
}

/// Creates database `name` on the server of `server_url`; returns the new database's URL.
pub fn create_postgres_database(server_url: &str, name: &str) -> StoreResult<String> {
    check_name(name)?;
    let mut conn = PgConnection::establish(&with_database(server_url, "postgres"))
        .map_err(|e| StoreError::Connect(e.to_string()))?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
    Ok(with_database(server_url, name))
}

/// Drops database `name` on the server of `server_url`, closing its connections.
pub fn drop_postgres_database(server_url: &str, name: &str) -> StoreResult<()> {
    check_name(name)?;
    let mut conn = PgConnection::establish(&with_database(server_url, "postgres"))
        .map_err(|e| StoreError::Connect(e.to_string()))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// A textual dump of the schema (tables, columns, indexes), for comparing before and after a
/// migration round trip.
pub fn schema_dump(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let query = match conn {
        AnyConnection::Sqlite(_) => {
            "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') AS line FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' ORDER BY type, name"
        }
        AnyConnection::Postgresql(_) => {
            "SELECT line FROM ( \
               SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
                 || ' ' || COALESCE(column_default, '') AS line \
               FROM information_schema.columns WHERE table_schema = 'public' \
                 AND table_name != '__diesel_schema_migrations' \
               UNION ALL \
               SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes \
               WHERE schemaname = 'public' AND tablename != '__diesel_schema_migrations' \
               UNION ALL \
               SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
               WHERE connamespace = 'public'::regnamespace AND conname NOT LIKE '__diesel%' \
             ) s ORDER BY line"
        }
    };
    Ok(diesel::sql_query(query)
        .load::<Line>(conn)?
        .into_iter()
        .map(|l| l.line)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_keeping_credentials_and_options() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/old?sslmode=disable", "new"),
            "postgres://u:p@h:5432/new?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "new"), "postgres://h/new");
    }
}
