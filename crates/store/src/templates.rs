//! Templates and their immutable versions. A version's content is the validated template as
//! JSON; runs pin (template, version).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use diesel::prelude::*;
use serde_json::json;
use shipshape_domain::template::{Template, TemplateDraft};
use shipshape_domain::wire::AuditAction;
use shipshape_domain::wire::{TemplateDetail, TemplateSource, TemplateSummary};

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::schema::{template_versions as tv, templates as t};
use crate::{AnyConnection, Store, StoreError, StoreResult, is_unique_violation, new_id, now, utc};

/// The id of the built-in EduLibra template: fixed, so every database names it alike.
pub const EDULIBRA_TEMPLATE_ID: &str = "5d0c3c1e-7f0b-4c52-9a57-3f6f0e2d1a01";

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tv)]
pub(crate) struct VersionRow {
    pub template_id: String,
    pub version: i32,
    pub name: String,
    pub content: String,
    pub created_at: chrono::NaiveDateTime,
    pub source_run_id: Option<String>,
    pub source_proposal_id: Option<String>,
}

impl VersionRow {
    pub(crate) fn template(&self) -> StoreResult<Template> {
        serde_json::from_str(&self.content).map_err(|e| {
            StoreError::Corrupt(format!(
                "template {} v{}: {e}",
                self.template_id, self.version
            ))
        })
    }
}

/// Parsed template versions by (template, version). Versions never change once written, so
/// an entry never goes stale; it saves a query, a JSON parse and a validation on every run
/// read and write.
#[derive(Debug, Default)]
pub(crate) struct TemplateCache(RwLock<HashMap<(String, i32), Arc<Template>>>);

impl TemplateCache {
    /// The template version, from memory or from the database.
    pub(crate) fn get(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        version: i32,
    ) -> StoreResult<Arc<Template>> {
        let key = (id.to_owned(), version);
        if let Some(t) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let template = Arc::new(version_row(conn, id, version)?.template()?);
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, template.clone());
        Ok(template)
    }
}

fn content_json(template: &Template) -> StoreResult<String> {
    serde_json::to_string(template).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn insert_version(
    conn: &mut AnyConnection,
    id: &str,
    version: i32,
    template: &Template,
    created_by: &str,
) -> StoreResult<()> {
    insert_version_from(conn, id, version, template, created_by, None)
}

/// Stores a version; `source` is the (run, proposal) it came from.
pub(crate) fn insert_version_from(
    conn: &mut AnyConnection,
    id: &str,
    version: i32,
    template: &Template,
    created_by: &str,
    source: Option<(&str, &str)>,
) -> StoreResult<()> {
    diesel::insert_into(tv::table)
        .values((
            tv::source_run_id.eq(source.map(|s| s.0)),
            tv::source_proposal_id.eq(source.map(|s| s.1)),
            tv::template_id.eq(id),
            tv::version.eq(version),
            tv::name.eq(template.name()),
            tv::content.eq(content_json(template)?),
            tv::item_count.eq(i32::try_from(template.item_count()).unwrap_or(i32::MAX)),
            tv::created_by.eq(created_by),
            tv::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub(crate) fn load_version(
    conn: &mut AnyConnection,
    id: &str,
    version: Option<i32>,
) -> StoreResult<(bool, VersionRow)> {
    let (builtin, latest) = template_head(conn, id)?;
    Ok((builtin, version_row(conn, id, version.unwrap_or(latest))?))
}

/// Whether a template is built in, and its latest version.
pub(crate) fn template_head(conn: &mut AnyConnection, id: &str) -> StoreResult<(bool, i32)> {
    t::table
        .find(id)
        .select((t::builtin, t::latest_version))
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("template"))
}

pub(crate) fn version_row(
    conn: &mut AnyConnection,
    id: &str,
    version: i32,
) -> StoreResult<VersionRow> {
    tv::table
        .find((id, version))
        .select(VersionRow::as_select())
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("template version"))
}

impl Store {
    /// Stores a new template as version 1.
    pub fn create_template(
        &self,
        template: &Template,
        created_by: &str,
        by: &Auditor,
    ) -> StoreResult<TemplateDetail> {
        let id = new_id();
        self.write(|conn| {
            diesel::insert_into(t::table)
                .values((
                    t::id.eq(&id),
                    t::name.eq(template.name()),
                    t::builtin.eq(false),
                    t::latest_version.eq(1),
                    t::created_at.eq(now()),
                ))
                .execute(conn)?;
            insert_version(conn, &id, 1, template, created_by)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::TemplateImported,
                    subject: &id,
                    details: json!({"template_id": id, "name": template.name(), "version": 1}),
                },
            )?;
            Ok(())
        })?;
        self.template(&id, None)
    }

    /// Stores an edit of a template as its next version; runs keep the version they pinned.
    /// The built-in template is Shipshape's own and is not edited (import a copy instead).
    /// `expected_version`, when given, must be the latest version (else `PreconditionFailed`).
    pub fn add_template_version(
        &self,
        id: &str,
        template: &Template,
        expected_version: Option<&shipshape_domain::precondition::Versions>,
        created_by: &str,
        by: &Auditor,
    ) -> StoreResult<TemplateDetail> {
        self.write(|conn| {
            crate::lock_named(conn, &format!("template:{id}"))?;
            let (builtin, latest) = template_head(conn, id)?;
            if builtin {
                return Err(StoreError::Invalid {
                    field: "template_id",
                    message: "the built-in template is maintained by Shipshape; import a copy \
                              (export it as Markdown, then create a template) to change it"
                        .into(),
                });
            }
            if let Some(v) = expected_version
                && !v.admits(i64::from(latest))
            {
                return Err(StoreError::PreconditionFailed {
                    what: "template",
                    current: i64::from(latest),
                });
            }
            insert_version(conn, id, latest + 1, template, created_by)?;
            diesel::update(t::table.find(id))
                .set((
                    t::latest_version.eq(latest + 1),
                    t::name.eq(template.name()),
                ))
                .execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::TemplateVersionCreated,
                    subject: id,
                    details: json!({
                        "template_id": id,
                        "name": template.name(),
                        "version": {"from": latest, "to": latest + 1},
                    }),
                },
            )?;
            Ok(())
        })?;
        self.template(id, None)
    }

    /// Makes sure the built-in template is present and current: created on a fresh database,
    /// given a new version when the shipped content changed. Idempotent.
    pub fn ensure_builtin_template(&self, id: &str, template: &Template) -> StoreResult<()> {
        let result = self.write(|conn| {
            let latest: Option<i32> = t::table
                .find(id)
                .select(t::latest_version)
                .get_result(conn)
                .optional()?;
            match latest {
                None => {
                    diesel::insert_into(t::table)
                        .values((
                            t::id.eq(id),
                            t::name.eq(template.name()),
                            t::builtin.eq(true),
                            t::latest_version.eq(1),
                            t::created_at.eq(now()),
                        ))
                        .execute(conn)?;
                    insert_version(conn, id, 1, template, "system")
                }
                Some(v) => {
                    // Compared with what Shipshape last shipped: once the team has accepted
                    // a proposal into it, the template is theirs, and a new shipped version
                    // never silently replaces their change.
                    let shipped: Option<i32> = tv::table
                        .filter(tv::template_id.eq(id).and(tv::created_by.eq("system")))
                        .select(diesel::dsl::max(tv::version))
                        .first(conn)?;
                    let Some(shipped) = shipped else {
                        return Ok(());
                    };
                    let (_, row) = load_version(conn, id, Some(shipped))?;
                    if row.template().ok().as_ref() == Some(template) || shipped != v {
                        return Ok(());
                    }
                    insert_version(conn, id, v + 1, template, "system")?;
                    diesel::update(t::table.find(id))
                        .set((t::latest_version.eq(v + 1), t::name.eq(template.name())))
                        .execute(conn)?;
                    Ok(())
                }
            }
        });
        match result {
            // Another instance starting on the same database stored it first.
            Err(StoreError::Database(e)) if is_unique_violation(&e) => Ok(()),
            other => other,
        }
    }

    /// Every template at its latest version, by name.
    pub fn list_templates(&self) -> StoreResult<Vec<TemplateSummary>> {
        self.read(|conn| {
            let rows: Vec<(String, bool, i32, String, i32, chrono::NaiveDateTime)> = t::table
                .inner_join(
                    tv::table.on(tv::template_id
                        .eq(t::id)
                        .and(tv::version.eq(t::latest_version))),
                )
                .order((tv::name.asc(), t::id.asc()))
                .select((
                    t::id,
                    t::builtin,
                    tv::version,
                    tv::name,
                    tv::item_count,
                    tv::created_at,
                ))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(id, builtin, version, name, count, at)| TemplateSummary {
                    id,
                    name,
                    version,
                    builtin,
                    item_count: usize::try_from(count).unwrap_or(0),
                    created_at: utc(at),
                })
                .collect())
        })
    }

    /// One template version (the latest when `version` is `None`).
    pub fn template(&self, id: &str, version: Option<i32>) -> StoreResult<TemplateDetail> {
        self.read(|conn| {
            let (builtin, row) = load_version(conn, id, version)?;
            Ok(TemplateDetail {
                id: row.template_id.clone(),
                version: row.version,
                builtin,
                created_at: utc(row.created_at),
                content: TemplateDraft::from(row.template()?),
                source: match (&row.source_run_id, &row.source_proposal_id) {
                    (Some(run_id), Some(proposal_id)) => Some(TemplateSource {
                        run_id: run_id.clone(),
                        proposal_id: proposal_id.clone(),
                    }),
                    _ => None,
                },
            })
        })
    }
}
