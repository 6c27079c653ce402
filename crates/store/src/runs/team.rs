//! A run's team: adding and removing members.

use diesel::prelude::*;
use shipshape_domain::event::*;
use shipshape_domain::run::check_run_editable;
use shipshape_domain::wire::RunMember;

use crate::schema::{run_members as m, users as u};
use crate::{Store, StoreError, StoreResult, is_unique_violation, now};

use super::Actor;
use super::events::append_event;
use super::rows::*;

impl Store {
    /// Adds an active user to a run's team.
    pub fn add_member(
        &self,
        run_id: &str,
        username: &str,
        run_role: &str,
        actor: &Actor,
    ) -> StoreResult<RunMember> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            check_run_editable(run.status()?, run.closed_at.is_some())?;
            let (user_id, active): (String, bool) = u::table
                .filter(u::username.eq(username))
                .select((u::id, u::active))
                .first(conn)
                .optional()?
                .ok_or_else(|| StoreError::Invalid {
                    field: "username",
                    message: format!("there is no user `{username}`"),
                })?;
            if !active {
                return Err(StoreError::Invalid {
                    field: "username",
                    message: format!("`{username}` is deactivated"),
                });
            }
            let at = now();
            diesel::insert_into(m::table)
                .values((
                    m::run_id.eq(run_id),
                    m::user_id.eq(&user_id),
                    m::run_role.eq(run_role),
                    m::added_by.eq(&actor.username),
                    m::added_at.eq(at),
                ))
                .execute(conn)
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Duplicate("member")
                    } else {
                        e.into()
                    }
                })?;
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::MemberAdded(MemberChanged {
                    user_id: user_id.clone(),
                    username: username.to_owned(),
                    run_role: run_role.to_owned(),
                }),
            )?;
            load_members(conn, run_id)?
                .into_iter()
                .find(|m| m.user_id == user_id)
                .ok_or(StoreError::NotFound("member"))
        })
    }

    /// Removes a user from a run's team.
    pub fn remove_member(&self, run_id: &str, user_id: &str, actor: &Actor) -> StoreResult<()> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            check_run_editable(run.status()?, run.closed_at.is_some())?;
            let member = load_members(conn, run_id)?
                .into_iter()
                .find(|m| m.user_id == user_id)
                .ok_or(StoreError::NotFound("member"))?;
            diesel::delete(m::table.filter(m::run_id.eq(run_id).and(m::user_id.eq(user_id))))
                .execute(conn)?;
            append_event(
                conn,
                run_id,
                &actor.username,
                now(),
                EventData::MemberRemoved(MemberChanged {
                    user_id: member.user_id,
                    username: member.username,
                    run_role: member.run_role,
                }),
            )?;
            Ok(())
        })
    }
}
