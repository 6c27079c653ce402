//! Environments' settings: the base URL probe items write `{base_url}` with.

use diesel::prelude::*;
use serde_json::json;
use shipshape_domain::wire::{AuditAction, Environment};

use crate::schema::environments as env;
use crate::{Store, StoreResult, now, utc};

impl Store {
    /// Every environment with settings, by name.
    pub fn environments(&self) -> StoreResult<Vec<Environment>> {
        self.read(|conn| {
            let rows: Vec<(String, Option<String>, String, chrono::NaiveDateTime)> = env::table
                .order(env::name.asc())
                .select((env::name, env::base_url, env::updated_by, env::updated_at))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(name, base_url, updated_by, updated_at)| Environment {
                    name,
                    base_url,
                    updated_by,
                    updated_at: utc(updated_at),
                })
                .collect())
        })
    }

    /// Stores an environment's settings (`base_url` checked by the caller), as an audit-log
    /// entry.
    pub fn put_environment(
        &self,
        name: &str,
        base_url: Option<&str>,
        by: &crate::audit::Auditor,
    ) -> StoreResult<Environment> {
        let username = by.actor.clone().unwrap_or_default();
        self.write(|conn| {
            // Two first PUTs of one name (two admins, two instances) take turns.
            crate::lock_named(conn, "environments")?;
            let at = now();
            let before: Option<Option<String>> = env::table
                .find(name)
                .select(env::base_url)
                .first(conn)
                .optional()?;
            if before.is_some() {
                diesel::update(env::table.find(name))
                    .set((
                        env::base_url.eq(base_url),
                        env::updated_by.eq(&username),
                        env::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            } else {
                diesel::insert_into(env::table)
                    .values((
                        env::name.eq(name),
                        env::base_url.eq(base_url),
                        env::updated_by.eq(&username),
                        env::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            crate::audit::append_audit(
                conn,
                crate::audit::NewAuditEntry {
                    by,
                    action: AuditAction::EnvironmentUpdated,
                    subject: name,
                    details: json!({
                        "environment": name,
                        "base_url": {"from": before.flatten(), "to": base_url},
                    }),
                },
            )?;
            Ok(Environment {
                name: name.to_owned(),
                base_url: base_url.map(str::to_owned),
                updated_by: username.clone(),
                updated_at: utc(at),
            })
        })
    }
}
