//! Users: accounts with a role and an argon2id password hash (hashed by the caller).

use diesel::prelude::*;
use serde_json::json;
use shipshape_domain::Role;
use shipshape_domain::role::leaves_no_admin;
use shipshape_domain::wire::AuditAction;
use shipshape_domain::wire::User;

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::schema::{api_tokens, users};
use crate::{Store, StoreError, StoreResult, is_unique_violation, lock_named, new_id, now, utc};

/// A user as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRecord {
    /// Id.
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// PHC-format argon2id hash.
    pub password_hash: String,
    /// Role, as spelled on the wire.
    pub role: String,
    /// Whether the user may sign in.
    pub active: bool,
    /// Creation time.
    pub created_at: chrono::NaiveDateTime,
    /// Access tokens carry the generation they were issued under; bumping it (logout,
    /// password change) revokes them all.
    pub token_generation: i32,
}

impl UserRecord {
    /// The user's role.
    pub fn role(&self) -> StoreResult<Role> {
        Role::parse(&self.role).ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))
    }

    /// The wire form (no password data).
    pub fn to_wire(&self) -> StoreResult<User> {
        Ok(User {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role()?,
            active: self.active,
            created_at: utc(self.created_at),
        })
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Sign-in name (validated by the caller).
    pub username: &'a str,
    /// PHC-format argon2id hash.
    pub password_hash: &'a str,
    /// Role.
    pub role: Role,
}

impl Store {
    /// Creates a user; `Duplicate` if the name is taken. The audit log records who did it.
    pub fn create_user(&self, new: NewUser<'_>, by: &Auditor) -> StoreResult<UserRecord> {
        let id = new_id();
        self.write(|conn| {
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(&id),
                    users::username.eq(new.username),
                    users::password_hash.eq(new.password_hash),
                    users::role.eq(new.role.as_str()),
                    users::active.eq(true),
                    users::created_at.eq(now()),
                ))
                .execute(conn)
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Duplicate("username")
                    } else {
                        e.into()
                    }
                })?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::UserCreated,
                    subject: new.username,
                    details: json!({"user_id": id, "role": new.role}),
                },
            )?;
            Ok(users::table
                .find(&id)
                .select(UserRecord::as_select())
                .get_result(conn)?)
        })
    }

    /// Finds a user by sign-in name.
    pub fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.query(|conn| {
            Ok(users::table
                .filter(users::username.eq(username))
                .select(UserRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
    }

    /// Finds a user by id.
    pub fn user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.query(|conn| {
            Ok(users::table
                .find(id)
                .select(UserRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
    }

    /// Every user, by name.
    pub fn list_users(&self) -> StoreResult<Vec<User>> {
        self.query(|conn| {
            users::table
                .order(users::username.asc())
                .select(UserRecord::as_select())
                .load(conn)?
                .iter()
                .map(UserRecord::to_wire)
                .collect()
        })
    }

    /// How many users exist.
    pub fn count_users(&self) -> StoreResult<i64> {
        self.query(|conn| Ok(users::table.count().get_result(conn)?))
    }
}

impl Store {
    /// Changes a user's role or active flag (admin). Refuses to leave no active admin.
    /// Deactivating a user ends their sessions and revokes their API tokens, so reactivating
    /// them later revives neither.
    pub fn update_user(
        &self,
        id: &str,
        role: Option<Role>,
        active: Option<bool>,
        by: &Auditor,
    ) -> StoreResult<UserRecord> {
        self.write(|conn| {
            // Two admins demoting each other at once must not both pass the check below.
            lock_named(conn, "users")?;
            let user = users::table
                .find(id)
                .select(UserRecord::as_select())
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound("user"))?;
            let current = user.role()?;
            let new_role = role.unwrap_or(current);
            let new_active = active.unwrap_or(user.active);
            let other_admins: i64 = users::table
                .filter(users::role.eq(Role::Admin.as_str()))
                .filter(users::active.eq(true))
                .filter(users::id.ne(id))
                .count()
                .get_result(conn)?;
            if leaves_no_admin(current, user.active, new_role, new_active, other_admins) {
                return Err(StoreError::Invalid {
                    field: "role",
                    message: "this is the last active admin; make another admin first".into(),
                });
            }
            let deactivated = user.active && !new_active;
            diesel::update(users::table.find(id))
                .set((
                    users::role.eq(new_role.as_str()),
                    users::active.eq(new_active),
                    users::token_generation.eq(users::token_generation + i32::from(deactivated)),
                ))
                .execute(conn)?;
            crate::live::publish(conn, crate::live::Signal::Access(id.to_owned()))?;
            if deactivated {
                diesel::update(
                    api_tokens::table
                        .filter(api_tokens::user_id.eq(id))
                        .filter(api_tokens::revoked_at.is_null()),
                )
                .set(api_tokens::revoked_at.eq(now()))
                .execute(conn)?;
            }
            let mut entries = Vec::new();
            if new_role != current {
                entries.push((
                    AuditAction::UserRoleChanged,
                    json!({"user_id": id, "role": {"from": current, "to": new_role}}),
                ));
            }
            if new_active != user.active {
                let action = if new_active {
                    AuditAction::UserReactivated
                } else {
                    AuditAction::UserDeactivated
                };
                entries.push((
                    action,
                    json!({"user_id": id, "active": {"from": user.active, "to": new_active}}),
                ));
            }
            for (action, details) in entries {
                append_audit(
                    conn,
                    NewAuditEntry {
                        by,
                        action,
                        subject: &user.username,
                        details,
                    },
                )?;
            }
            Ok(users::table
                .find(id)
                .select(UserRecord::as_select())
                .get_result(conn)?)
        })
    }

    /// Sets a user's password hash and revokes their access tokens.
    pub fn set_password(&self, id: &str, password_hash: &str, by: &Auditor) -> StoreResult<()> {
        self.write(|conn| {
            let n = diesel::update(users::table.find(id))
                .set((
                    users::password_hash.eq(password_hash),
                    users::token_generation.eq(users::token_generation + 1),
                ))
                .execute(conn)?;
            if n == 0 {
                return Err(StoreError::NotFound("user"));
            }
            crate::live::publish(conn, crate::live::Signal::Access(id.to_owned()))?;
            let username: String = users::table
                .find(id)
                .select(users::username)
                .get_result(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::PasswordChanged,
                    subject: &username,
                    details: json!({"user_id": id, "sessions_ended": true}),
                },
            )?;
            Ok(())
        })
    }

    /// Revokes every access token a user holds (logout).
    pub fn revoke_sessions(&self, id: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(users::table.find(id))
                .set(users::token_generation.eq(users::token_generation + 1))
                .execute(conn)?;
            crate::live::publish(conn, crate::live::Signal::Access(id.to_owned()))?;
            Ok(())
        })
    }
}
