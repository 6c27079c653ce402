//! A run's records after the deploy: its issues log, its retrospective and the
//! retrospective's action items. Each change takes the run's lock, asks the domain
//! (`shipshape_domain::records`), writes, and appends its event, in one transaction.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use shipshape_domain::event::*;
use shipshape_domain::item::{EvidenceLink, ItemStatus};
use shipshape_domain::records::{
    ActionItem, ActionState, ActionStatus, CreateActionItemRequest, CreateIssueRequest, Issue,
    IssueAcceptance, IssueContext, IssueState, IssueStatus, PutRetrospectiveRequest, RecordActor,
    RetroStatus, Retrospective, Severity, UpdateActionItemRequest, UpdateIssueRequest,
    check_new_action, check_new_issue, check_retrospective, is_overdue, issue_blocks,
    plan_action_update, plan_issue_update,
};
use shipshape_domain::run::{IssueFacts, item_applies};
use shipshape_domain::template::RecordKind;
use shipshape_domain::wire::PendingAction;

use crate::schema::{
    action_items as ai, retrospectives as rs, run_issues as iss, run_items as ri, runs as r,
    users as u,
};
use crate::{AnyConnection, Store, StoreError, StoreResult, new_id, now, utc};

use super::Actor;
use super::events::append_event;
use super::items::evidence_column;
use super::rows::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = iss)]
pub(crate) struct IssueRow {
    id: String,
    run_id: String,
    number: i32,
    title: String,
    severity: String,
    status: String,
    owner: Option<String>,
    item_ids: String,
    notes: Option<String>,
    accepted_reason: Option<String>,
    accepted_by: Option<String>,
    accepted_at: Option<NaiveDateTime>,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    resolved_at: Option<NaiveDateTime>,
    version: i64,
}

impl IssueRow {
    fn severity(&self) -> StoreResult<Severity> {
        Severity::parse(&self.severity).ok_or_else(|| corrupt("severity", &self.severity))
    }
    fn status(&self) -> StoreResult<IssueStatus> {
        IssueStatus::parse(&self.status).ok_or_else(|| corrupt("issue status", &self.status))
    }
    fn item_ids(&self) -> StoreResult<Vec<String>> {
        serde_json::from_str(&self.item_ids)
            .map_err(|e| StoreError::Corrupt(format!("issue {} items: {e}", self.id)))
    }
    fn state(&self) -> StoreResult<IssueState> {
        Ok(IssueState {
            title: self.title.clone(),
            severity: self.severity()?,
            status: self.status()?,
            owner: self.owner.clone(),
            item_ids: self.item_ids()?,
            notes: self.notes.clone(),
            accepted_reason: self.accepted_reason.clone(),
        })
    }
    pub(crate) fn to_wire(&self) -> StoreResult<Issue> {
        let (severity, status) = (self.severity()?, self.status()?);
        let acceptance = match (&self.accepted_reason, &self.accepted_by, self.accepted_at) {
            (Some(reason), Some(by), Some(at)) => Some(IssueAcceptance {
                by: by.clone(),
                reason: reason.clone(),
                at: utc(at),
            }),
            _ => None,
        };
        Ok(Issue {
            id: self.id.clone(),
            run_id: self.run_id.clone(),
            number: self.number,
            title: self.title.clone(),
            severity,
            status,
            owner: self.owner.clone(),
            item_ids: self.item_ids()?,
            notes: self.notes.clone(),
            blocks_completion: issue_blocks(severity, status, acceptance.is_some()),
            acceptance,
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            resolved_at: self.resolved_at.map(utc),
            version: self.version,
        })
    }
}

/// The run's issues that stop it completing (the query is [`issue_blocks`], in SQL).
pub(super) fn blocking_issues(
    conn: &mut AnyConnection,
    run_id: &str,
) -> StoreResult<Vec<IssueFacts>> {
    let rows: Vec<IssueRow> = iss::table
        .filter(iss::run_id.eq(run_id))
        .filter(iss::severity.eq_any([Severity::Sev1.as_str(), Severity::Sev2.as_str()]))
        .filter(iss::status.ne(IssueStatus::Resolved.as_str()))
        .filter(iss::accepted_reason.is_null())
        .order(iss::number.asc())
        .select(IssueRow::as_select())
        .load(conn)?;
    rows.iter()
        .map(|i| {
            Ok(IssueFacts {
                id: i.id.clone(),
                number: i.number,
                title: i.title.clone(),
                severity: i.severity()?,
                status: i.status()?,
            })
        })
        .collect()
}

pub(crate) fn load_issues(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<Issue>> {
    iss::table
        .filter(iss::run_id.eq(run_id))
        .order(iss::number.asc())
        .select(IssueRow::as_select())
        .load(conn)?
        .iter()
        .map(IssueRow::to_wire)
        .collect()
}

fn load_issue(conn: &mut AnyConnection, run_id: &str, issue_id: &str) -> StoreResult<IssueRow> {
    iss::table
        .filter(iss::id.eq(issue_id).and(iss::run_id.eq(run_id)))
        .select(IssueRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("issue"))
}

fn ids_json(ids: &[String]) -> StoreResult<String> {
    serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Who is acting, as the record rules see them.
fn record_actor(conn: &mut AnyConnection, run_id: &str, actor: &Actor) -> StoreResult<RecordActor> {
    let members = load_members(conn, run_id)?;
    Ok(RecordActor {
        role: actor.role,
        is_member: members.iter().any(|m| m.user_id == actor.id),
    })
}

fn text_change(from: &Option<String>, to: &Option<String>) -> Option<TextChange> {
    (from != to).then(|| TextChange {
        from: from.clone(),
        to: to.clone(),
    })
}

/// What an issue's fields are checked against: the run, its team and items, and who acts.
struct IssueFactsOfRun {
    run_closed: bool,
    names: Vec<String>,
    item_ids: Vec<String>,
    who: RecordActor,
}

impl IssueFactsOfRun {
    fn load(conn: &mut AnyConnection, run_id: &str, actor: &Actor) -> StoreResult<Self> {
        let run = load_run(conn, run_id)?;
        let members = load_members(conn, run_id)?;
        let item_ids: Vec<String> = ri::table
            .filter(ri::run_id.eq(run_id))
            .select(ri::id)
            .load(conn)?;
        Ok(IssueFactsOfRun {
            run_closed: run.closed_at.is_some(),
            who: RecordActor {
                role: actor.role,
                is_member: members.iter().any(|m| m.user_id == actor.id),
            },
            names: members.into_iter().map(|m| m.username).collect(),
            item_ids,
        })
    }

    fn ctx(&self) -> IssueContext<'_> {
        IssueContext {
            run_closed: self.run_closed,
            members: &self.names,
            item_ids: &self.item_ids,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ai)]
pub(crate) struct ActionRow {
    id: String,
    run_id: String,
    title: String,
    assignee: String,
    due_on: String,
    status: String,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
}

fn today() -> chrono::NaiveDate {
    Utc::now().date_naive()
}

impl ActionRow {
    fn state(&self) -> StoreResult<ActionState> {
        Ok(ActionState {
            title: self.title.clone(),
            assignee: self.assignee.clone(),
            due_on: self
                .due_on
                .parse()
                .map_err(|_| corrupt("due date", &self.due_on))?,
            status: ActionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("action status", &self.status))?,
        })
    }
    pub(crate) fn to_wire(&self) -> StoreResult<ActionItem> {
        let s = self.state()?;
        Ok(ActionItem {
            id: self.id.clone(),
            run_id: self.run_id.clone(),
            overdue: is_overdue(s.status, s.due_on, today()),
            title: s.title,
            assignee: s.assignee,
            due_on: s.due_on,
            status: s.status,
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            version: self.version,
        })
    }
    fn changed(&self, s: &ActionState, previous_assignee: Option<String>) -> ActionItemChanged {
        ActionItemChanged {
            action_id: self.id.clone(),
            title: s.title.clone(),
            assignee: s.assignee.clone(),
            due_on: s.due_on,
            status: s.status,
            previous_assignee,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rs)]
pub(crate) struct RetroRow {
    run_id: String,
    status: String,
    held_at: Option<NaiveDateTime>,
    went_well: Option<String>,
    went_badly: Option<String>,
    root_cause: Option<String>,
    lessons: Option<String>,
    updated_by: String,
    updated_at: NaiveDateTime,
    published_at: Option<NaiveDateTime>,
    version: i64,
}

impl RetroRow {
    fn status(&self) -> StoreResult<RetroStatus> {
        RetroStatus::parse(&self.status)
            .ok_or_else(|| corrupt("retrospective status", &self.status))
    }
}

/// The run's retrospective with its action items (an empty draft, version 0, before anyone
/// wrote it).
pub(crate) fn load_retrospective(
    conn: &mut AnyConnection,
    run_id: &str,
) -> StoreResult<Retrospective> {
    let row: Option<RetroRow> = rs::table
        .find(run_id)
        .select(RetroRow::as_select())
        .get_result(conn)
        .optional()?;
    let action_items = ai::table
        .filter(ai::run_id.eq(run_id))
        .order((ai::created_at.asc(), ai::id.asc()))
        .select(ActionRow::as_select())
        .load(conn)?
        .iter()
        .map(ActionRow::to_wire)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(match row {
        None => Retrospective {
            run_id: run_id.to_owned(),
            status: RetroStatus::Draft,
            held_at: None,
            went_well: None,
            went_badly: None,
            root_cause: None,
            lessons: None,
            action_items,
            updated_by: None,
            updated_at: None,
            published_at: None,
            version: 0,
        },
        Some(row) => Retrospective {
            run_id: row.run_id.clone(),
            status: row.status()?,
            held_at: row.held_at.map(utc),
            went_well: row.went_well.clone(),
            went_badly: row.went_badly.clone(),
            root_cause: row.root_cause.clone(),
            lessons: row.lessons.clone(),
            action_items,
            updated_by: Some(row.updated_by.clone()),
            updated_at: Some(utc(row.updated_at)),
            published_at: row.published_at.map(utc),
            version: row.version,
        },
    })
}

/// The open action items assigned to a user, soonest due first.
pub(crate) fn pending_actions(
    conn: &mut AnyConnection,
    username: &str,
) -> StoreResult<Vec<PendingAction>> {
    let rows: Vec<(ActionRow, (String, String, String))> = ai::table
        .inner_join(r::table.on(r::id.eq(ai::run_id)))
        .filter(ai::assignee.eq(username))
        .filter(ai::status.eq(ActionStatus::Open.as_str()))
        .order((ai::due_on.asc(), ai::created_at.asc()))
        .select((
            ActionRow::as_select(),
            (r::product, r::release_version, r::environment),
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(row, (product, release, environment))| {
            Ok(PendingAction {
                run_id: row.run_id.clone(),
                run_label: format!("{product} {release} → {environment}"),
                action: row.to_wire()?,
            })
        })
        .collect()
}

impl Store {
    /// The run's issues log, by number.
    pub fn issues(&self, run_id: &str) -> StoreResult<Vec<Issue>> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            load_issues(conn, run_id)
        })
    }

    /// One issue.
    pub fn issue(&self, run_id: &str, issue_id: &str) -> StoreResult<Issue> {
        self.read(|conn| load_issue(conn, run_id, issue_id)?.to_wire())
    }

    /// Logs an issue: anyone on the run's team, while the run is not closed.
    pub fn create_issue(
        &self,
        run_id: &str,
        req: CreateIssueRequest,
        actor: &Actor,
    ) -> StoreResult<Issue> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let facts = IssueFactsOfRun::load(conn, run_id, actor)?;
            let state = check_new_issue(&facts.ctx(), facts.who, req)?;
            let number: Option<i32> = iss::table
                .filter(iss::run_id.eq(run_id))
                .select(diesel::dsl::max(iss::number))
                .first(conn)?;
            let number = number.unwrap_or(0) + 1;
            let (id, at) = (new_id(), now());
            diesel::insert_into(iss::table)
                .values((
                    iss::id.eq(&id),
                    iss::run_id.eq(run_id),
                    iss::number.eq(number),
                    iss::title.eq(&state.title),
                    iss::severity.eq(state.severity.as_str()),
                    iss::status.eq(state.status.as_str()),
                    iss::owner.eq(&state.owner),
                    iss::item_ids.eq(ids_json(&state.item_ids)?),
                    iss::notes.eq(&state.notes),
                    iss::created_by.eq(&actor.username),
                    iss::created_at.eq(at),
                    iss::updated_at.eq(at),
                    iss::resolved_at.eq((state.status == IssueStatus::Resolved).then_some(at)),
                    iss::version.eq(1_i64),
                ))
                .execute(conn)?;
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::IssueLogged(IssueLogged {
                    issue_id: id.clone(),
                    number,
                    title: state.title.clone(),
                    severity: state.severity,
                    status: state.status,
                    owner: state.owner.clone(),
                    item_ids: state.item_ids.clone(),
                }),
            )?;
            load_issue(conn, run_id, &id)?.to_wire()
        })
    }

    /// Changes an issue (a release manager also accepts it, or withdraws the acceptance).
    pub fn update_issue(
        &self,
        run_id: &str,
        issue_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        req: UpdateIssueRequest,
        actor: &Actor,
    ) -> StoreResult<Issue> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let row = load_issue(conn, run_id, issue_id)?;
            check_if_match("issue", if_match, row.version)?;
            let facts = IssueFactsOfRun::load(conn, run_id, actor)?;
            let current = row.state()?;
            let Some(next) = plan_issue_update(&facts.ctx(), facts.who, &current, req)? else {
                return row.to_wire();
            };
            let at = now();
            let accepted_changed = next.accepted_reason != current.accepted_reason;
            let version = row.version + 1;
            diesel::update(iss::table.find(issue_id))
                .set((
                    iss::title.eq(&next.title),
                    iss::severity.eq(next.severity.as_str()),
                    iss::status.eq(next.status.as_str()),
                    iss::owner.eq(&next.owner),
                    iss::item_ids.eq(ids_json(&next.item_ids)?),
                    iss::notes.eq(&next.notes),
                    iss::accepted_reason.eq(&next.accepted_reason),
                    iss::accepted_by.eq(if accepted_changed {
                        next.accepted_reason
                            .as_ref()
                            .map(|_| actor.username.clone())
                    } else {
                        row.accepted_by.clone()
                    }),
                    iss::accepted_at.eq(if accepted_changed {
                        next.accepted_reason.as_ref().map(|_| at)
                    } else {
                        row.accepted_at
                    }),
                    iss::updated_at.eq(at),
                    iss::resolved_at.eq(match (current.status, next.status) {
                        (_, IssueStatus::Open | IssueStatus::Mitigated) => None,
                        (IssueStatus::Resolved, IssueStatus::Resolved) => row.resolved_at,
                        (_, IssueStatus::Resolved) => Some(at),
                    }),
                    iss::version.eq(version),
                ))
                .execute(conn)?;
            let changes = IssueChanges {
                title: (next.title != current.title).then(|| TextChange {
                    from: Some(current.title.clone()),
                    to: Some(next.title.clone()),
                }),
                severity: (next.severity != current.severity).then_some(SeverityChange {
                    from: current.severity,
                    to: next.severity,
                }),
                status: (next.status != current.status).then_some(IssueStatusChange {
                    from: current.status,
                    to: next.status,
                }),
                owner: text_change(&current.owner, &next.owner),
                item_ids: (next.item_ids != current.item_ids).then(|| IdsChange {
                    from: current.item_ids.clone(),
                    to: next.item_ids.clone(),
                }),
                notes: text_change(&current.notes, &next.notes),
                accepted_reason: text_change(&current.accepted_reason, &next.accepted_reason),
            };
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::IssueUpdated(IssueUpdated {
                    issue_id: issue_id.to_owned(),
                    number: row.number,
                    title: next.title.clone(),
                    version,
                    changes,
                }),
            )?;
            load_issue(conn, run_id, issue_id)?.to_wire()
        })
    }

    /// The run's retrospective with its action items.
    pub fn retrospective(&self, run_id: &str) -> StoreResult<Retrospective> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            load_retrospective(conn, run_id)
        })
    }

    /// Writes the run's retrospective (replacing its text). Publishing it completes the
    /// checklist's retrospective items, each with `report_url` (the run's report) as
    /// evidence, in the same transaction. Returns whether it was created, and it.
    pub fn put_retrospective(
        &self,
        run_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        req: PutRetrospectiveRequest,
        report_url: &str,
        actor: &Actor,
    ) -> StoreResult<(bool, Retrospective)> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let current = load_retrospective(conn, run_id)?;
            check_if_match("retrospective", if_match, current.version)?;
            let who = record_actor(conn, run_id, actor)?;
            let status = run.status()?;
            let text =
                check_retrospective(status, run.closed_at.is_some(), who, current.status, req)?;
            let mut changed = Vec::new();
            for (name, before, after) in [
                ("went_well", &current.went_well, &text.went_well),
                ("went_badly", &current.went_badly, &text.went_badly),
                ("root_cause", &current.root_cause, &text.root_cause),
                ("lessons", &current.lessons, &text.lessons),
            ] {
                if before != after {
                    changed.push(name.to_owned());
                }
            }
            if current.held_at != text.held_at {
                changed.push("held_at".to_owned());
            }
            let publishing =
                text.status == RetroStatus::Published && current.status == RetroStatus::Draft;
            if current.version > 0 && changed.is_empty() && !publishing {
                return Ok((false, current));
            }
            let at = now();
            let version = current.version + 1;
            let published_at = match (publishing, current.published_at) {
                (true, _) => Some(at),
                (false, p) => p.map(|p| p.naive_utc()),
            };
            let values = (
                rs::status.eq(text.status.as_str()),
                rs::held_at.eq(text.held_at.map(crate::micros)),
                rs::went_well.eq(&text.went_well),
                rs::went_badly.eq(&text.went_badly),
                rs::root_cause.eq(&text.root_cause),
                rs::lessons.eq(&text.lessons),
                rs::updated_by.eq(&actor.username),
                rs::updated_at.eq(at),
                rs::published_at.eq(published_at),
                rs::version.eq(version),
            );
            let created = current.version == 0;
            if created {
                diesel::insert_into(rs::table)
                    .values((rs::run_id.eq(run_id), values))
                    .execute(conn)?;
            } else {
                diesel::update(rs::table.find(run_id))
                    .set(values)
                    .execute(conn)?;
            }
            let completed = if publishing {
                complete_retrospective_items(conn, &run, report_url, actor, at)?
            } else {
                Vec::new()
            };
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::RetrospectiveSaved(RetrospectiveSaved {
                    status: text.status,
                    published: publishing,
                    changed,
                    completed_item_ids: completed,
                    version,
                }),
            )?;
            Ok((created, load_retrospective(conn, run_id)?))
        })
    }

    /// Adds an action item to a finished run's retrospective. (Its assignee finds it in their
    /// pending list, and is mailed of it with the rest of that list.)
    pub fn create_action_item(
        &self,
        run_id: &str,
        req: CreateActionItemRequest,
        actor: &Actor,
    ) -> StoreResult<ActionItem> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let who = record_actor(conn, run_id, actor)?;
            let active = active_usernames(conn)?;
            let state = check_new_action(run.status()?, who, req, today(), &|name| {
                active.iter().any(|a| a == name)
            })?;
            let (id, at) = (new_id(), now());
            diesel::insert_into(ai::table)
                .values((
                    ai::id.eq(&id),
                    ai::run_id.eq(run_id),
                    ai::title.eq(&state.title),
                    ai::assignee.eq(&state.assignee),
                    ai::due_on.eq(state.due_on.to_string()),
                    ai::status.eq(state.status.as_str()),
                    ai::created_by.eq(&actor.username),
                    ai::created_at.eq(at),
                    ai::updated_at.eq(at),
                    ai::version.eq(1_i64),
                ))
                .execute(conn)?;
            let row = load_action(conn, run_id, &id)?;
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::ActionItemCreated(row.changed(&state, None)),
            )?;
            row.to_wire()
        })
    }

    /// Changes an action item (also after the run is closed: follow-ups outlive it).
    pub fn update_action_item(
        &self,
        run_id: &str,
        action_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        req: UpdateActionItemRequest,
        actor: &Actor,
    ) -> StoreResult<ActionItem> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let row = load_action(conn, run_id, action_id)?;
            check_if_match("action item", if_match, row.version)?;
            let who = record_actor(conn, run_id, actor)?;
            let active = active_usernames(conn)?;
            let current = row.state()?;
            let Some(next) = plan_action_update(who, &current, req, today(), &|name| {
                active.iter().any(|a| a == name)
            })?
            else {
                return row.to_wire();
            };
            let at = now();
            diesel::update(ai::table.find(action_id))
                .set((
                    ai::title.eq(&next.title),
                    ai::assignee.eq(&next.assignee),
                    ai::due_on.eq(next.due_on.to_string()),
                    ai::status.eq(next.status.as_str()),
                    ai::updated_at.eq(at),
                    ai::version.eq(row.version + 1),
                ))
                .execute(conn)?;
            let reassigned = next.assignee != current.assignee;
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::ActionItemUpdated(
                    row.changed(&next, reassigned.then(|| current.assignee.clone())),
                ),
            )?;
            load_action(conn, run_id, action_id)?.to_wire()
        })
    }
}

fn load_action(conn: &mut AnyConnection, run_id: &str, action_id: &str) -> StoreResult<ActionRow> {
    ai::table
        .filter(ai::id.eq(action_id).and(ai::run_id.eq(run_id)))
        .select(ActionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("action item"))
}

fn active_usernames(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    Ok(u::table
        .filter(u::active.eq(true))
        .select(u::username)
        .load(conn)?)
}

/// Marks done every applicable, open retrospective item of the run, adding the report as
/// its evidence; one item event each. Returns their ids.
fn complete_retrospective_items(
    conn: &mut AnyConnection,
    run: &RunRow,
    report_url: &str,
    actor: &Actor,
    at: NaiveDateTime,
) -> StoreResult<Vec<String>> {
    let status = run.status()?;
    let items = load_items(conn, &run.id)?;
    let mut done = Vec::new();
    for item in &items {
        let from = item.status()?;
        if item.record()? != Some(RecordKind::Retrospective)
            || !item_applies(item.applies()?, status)
            || from.is_settled()
        {
            continue;
        }
        let before = item.evidence_links()?;
        let mut after = before.clone();
        let link = EvidenceLink {
            label: "Retrospective".to_owned(),
            url: report_url.to_owned(),
        };
        if !after.contains(&link) {
            after.insert(0, link);
        }
        after.truncate(shipshape_domain::item::MAX_EVIDENCE_LINKS);
        let version = item.version + 1;
        let (started_at, finished_at) = item.clock(ItemStatus::Done, at)?;
        if run.finished_at.is_some() {
            crate::insights::rollup_run(conn, &run.id, crate::insights::Sign::Remove)?;
        }
        diesel::update(ri::table.find(&item.id))
            .set((
                ri::status.eq(ItemStatus::Done.as_str()),
                ri::started_at.eq(started_at),
                ri::finished_at.eq(finished_at),
                ri::evidence_url.eq(after.first().map(|l| l.url.clone())),
                ri::evidence.eq(evidence_column(&after)?),
                ri::version.eq(version),
                ri::updated_by.eq(&actor.username),
                ri::updated_at.eq(at),
            ))
            .execute(conn)?;
        if run.finished_at.is_some() {
            crate::insights::rollup_run(conn, &run.id, crate::insights::Sign::Add)?;
        }
        append_event(
            conn,
            &run.id,
            &actor.username,
            at,
            EventData::ItemUpdated(ItemUpdated {
                item_id: item.id.clone(),
                reference: item.reference.clone(),
                title: item.title.clone(),
                version,
                waiver: false,
                invalidated_signoffs: 0,
                changes: ItemChanges {
                    status: Some(ItemStatusChange {
                        from,
                        to: ItemStatus::Done,
                    }),
                    evidence: (before != after).then(|| EvidenceChange {
                        from: before.clone(),
                        to: after.clone(),
                    }),
                    ..ItemChanges::default()
                },
            }),
        )?;
        done.push(item.id.clone());
    }
    Ok(done)
}
