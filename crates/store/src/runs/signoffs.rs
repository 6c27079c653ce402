//! Signing off an approval item.

use diesel::prelude::*;
use shipshape_domain::approval::{SignoffContext, Verdict, check_signoff};
use shipshape_domain::event::*;
use shipshape_domain::wire::Signoff;

use crate::schema::{run_items as ri, signoffs as so};
use crate::{Store, StoreResult, new_id, now};

use super::Actor;
use super::events::append_event;
use super::rows::*;

impl Store {
    /// Records a sign-off on an approval item; enough approvals make it done, a rejection
    /// blocks it.
    pub fn record_signoff(
        &self,
        run_id: &str,
        item_id: &str,
        verdict: Verdict,
        comment: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<Signoff> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let run_status = run.status()?;
            let item = load_item(conn, run_id, item_id)?;
            let policy = item.policy()?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            let facts = signoffs
                .iter()
                .map(SignoffRow::facts)
                .collect::<StoreResult<Vec<_>>>()?;
            let workers = item.workers();
            let ctx = SignoffContext {
                run_status,
                run_closed: run.closed_at.is_some(),
                gate: item.gate()?,
                status: item.status()?,
                policy: &policy,
                signoffs: &facts,
                workers: &workers,
            };
            let effect = check_signoff(
                &ctx,
                &actor.id,
                &actor.username,
                actor.role,
                verdict,
                comment,
            )?;
            let at = now();
            let row = SignoffRow {
                id: new_id(),
                item_id: item_id.to_owned(),
                user_id: actor.id.clone(),
                username: actor.username.clone(),
                role: actor.role.as_str().to_owned(),
                verdict: verdict.as_str().to_owned(),
                comment: effect.comment.clone(),
                signed_at: at,
                invalidated_at: None,
            };
            diesel::insert_into(so::table)
                .values((
                    so::id.eq(&row.id),
                    so::run_id.eq(run_id),
                    so::item_id.eq(&row.item_id),
                    so::user_id.eq(&row.user_id),
                    so::username.eq(&row.username),
                    so::role.eq(&row.role),
                    so::verdict.eq(&row.verdict),
                    so::comment.eq(&row.comment),
                    so::signed_at.eq(row.signed_at),
                ))
                .execute(conn)?;
            if let Some(status) = effect.new_status {
                let (started_at, finished_at) = item.clock(status, at)?;
                if run.finished_at.is_some() {
                    crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Remove)?;
                }
                diesel::update(ri::table.find(item_id))
                    .set((
                        ri::status.eq(status.as_str()),
                        ri::started_at.eq(started_at),
                        ri::finished_at.eq(finished_at),
                        ri::version.eq(item.version + 1),
                        ri::updated_by.eq(&actor.username),
                        ri::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                if run.finished_at.is_some() {
                    crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Add)?;
                }
            }
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::SignoffRecorded(SignoffRecorded {
                    item_id: item.id.clone(),
                    reference: item.reference.clone(),
                    title: item.title.clone(),
                    signoff_id: row.id.clone(),
                    verdict,
                    comment: row.comment.clone(),
                    approval_state: effect.state,
                    status: effect.new_status.map(|to| ItemStatusChange {
                        from: ctx.status,
                        to,
                    }),
                }),
            )?;
            row.to_wire()
        })
    }
}
