//! API tokens for tools: the secret is shown once and only its SHA-256 hash is stored (the
//! secret is long and random, so a fast hash is enough); tokens are listed without it,
//! revoked, and remember when they were last used.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;
use shipshape_domain::access::Scope;
use shipshape_domain::wire::ApiToken;
use shipshape_domain::wire::AuditAction;

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::schema::{api_tokens as t, users};
use crate::users::UserRecord;
use crate::{Store, StoreError, StoreResult, new_id, now, utc};

/// How stale `last_used_at` may get before a use writes it again (keeps reads read-only).
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// Whether a use of a token at `at` is to be recorded, its last recorded use being
/// `last_used_at`: once the recorded minute is over.
pub fn use_is_due(last_used_at: Option<NaiveDateTime>, at: NaiveDateTime) -> bool {
    last_used_at.is_none_or(|t| (at - t).num_seconds() >= LAST_USED_RESOLUTION_SECS)
}

/// A token as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = t)]
pub struct TokenRecord {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Last used.
    pub last_used_at: Option<NaiveDateTime>,
    /// Revoked.
    pub revoked_at: Option<NaiveDateTime>,
}

impl TokenRecord {
    /// The token's scopes.
    pub fn scopes(&self) -> StoreResult<Vec<Scope>> {
        self.scopes
            .split_whitespace()
            .map(|s| Scope::parse(s).ok_or_else(|| StoreError::Corrupt(format!("scope {s}"))))
            .collect()
    }

    /// Whether the token may be used now.
    pub fn usable(&self) -> bool {
        self.revoked_at.is_none() && self.expires_at > now()
    }

    /// The wire form (no secret).
    pub fn to_wire(&self) -> StoreResult<ApiToken> {
        Ok(ApiToken {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            scopes: self.scopes()?,
            created_at: utc(self.created_at),
            expires_at: utc(self.expires_at),
            last_used_at: self.last_used_at.map(utc),
            revoked_at: self.revoked_at.map(utc),
        })
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// Name.
    pub name: &'a str,
    /// First characters of the secret.
    pub prefix: &'a str,
    /// SHA-256 of the secret, hex.
    pub secret_hash: &'a str,
    /// Scopes.
    pub scopes: &'a [Scope],
    /// Expiry.
    pub expires_at: NaiveDateTime,
}

impl Store {
    /// Stores a new token.
    pub fn create_token(&self, new: NewToken<'_>, by: &Auditor) -> StoreResult<ApiToken> {
        let id = new_id();
        let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        self.write(|conn| {
            diesel::insert_into(t::table)
                .values((
                    t::id.eq(&id),
                    t::user_id.eq(new.user_id),
                    t::name.eq(new.name),
                    t::prefix.eq(new.prefix),
                    t::secret_hash.eq(new.secret_hash),
                    t::scopes.eq(scopes.join(" ")),
                    t::created_at.eq(now()),
                    t::expires_at.eq(new.expires_at),
                ))
                .execute(conn)?;
            let token = t::table
                .find(&id)
                .select(TokenRecord::as_select())
                .get_result(conn)?
                .to_wire()?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::TokenCreated,
                    subject: &token.id,
                    details: json!({
                        "token_id": token.id,
                        "name": token.name,
                        "prefix": token.prefix,
                        "scopes": token.scopes,
                        "expires_at": token.expires_at,
                        "owner_id": new.user_id,
                    }),
                },
            )?;
            Ok(token)
        })
    }

    /// A user's own tokens, newest first.
    pub fn list_tokens(&self, user_id: &str) -> StoreResult<Vec<ApiToken>> {
        self.query(|conn| {
            t::table
                .filter(t::user_id.eq(user_id))
                .order((t::created_at.desc(), t::id.desc()))
                .select(TokenRecord::as_select())
                .load(conn)?
                .iter()
                .map(TokenRecord::to_wire)
                .collect()
        })
    }

    /// Revokes one of a user's own tokens (another user's is "not found").
    pub fn revoke_token(
        &self,
        user_id: &str,
        token_id: &str,
        by: &Auditor,
    ) -> StoreResult<ApiToken> {
        self.write(|conn| {
            let token = t::table
                .filter(t::id.eq(token_id).and(t::user_id.eq(user_id)))
                .select(TokenRecord::as_select())
                .first(conn)
                .optional()?
                .ok_or(StoreError::NotFound("token"))?;
            if token.revoked_at.is_none() {
                diesel::update(t::table.find(token_id))
                    .set(t::revoked_at.eq(now()))
                    .execute(conn)?;
                crate::live::publish(conn, crate::live::Signal::Access(user_id.to_owned()))?;
                append_audit(
                    conn,
                    NewAuditEntry {
                        by,
                        action: AuditAction::TokenRevoked,
                        subject: token_id,
                        details: json!({
                            "token_id": token_id,
                            "name": token.name,
                            "owner_id": user_id,
                        }),
                    },
                )?;
            }
            t::table
                .find(token_id)
                .select(TokenRecord::as_select())
                .get_result(conn)?
                .to_wire()
        })
    }

    /// Finds a token and its owner by the secret's hash (recording nothing).
    pub fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<Option<(TokenRecord, UserRecord)>> {
        self.query(|conn| {
            Ok(t::table
                .inner_join(users::table.on(users::id.eq(t::user_id)))
                .filter(t::secret_hash.eq(secret_hash))
                .select((TokenRecord::as_select(), UserRecord::as_select()))
                .get_result::<(TokenRecord, UserRecord)>(conn)
                .optional()?)
        })
    }

    /// Records a use of a usable token now, unless its last recorded use (`last_used_at`,
    /// as the caller knows it) is more recent than the resolution kept; returns the time
    /// recorded, if it recorded one.
    pub fn touch_token(
        &self,
        token: &TokenRecord,
        last_used_at: Option<NaiveDateTime>,
    ) -> StoreResult<Option<NaiveDateTime>> {
        let at = now();
        if !use_is_due(last_used_at, at) || !token.usable() {
            return Ok(None);
        }
        self.write(|conn| {
            diesel::update(t::table.find(&token.id))
                .set(t::last_used_at.eq(at))
                .execute(conn)?;
            Ok(())
        })?;
        Ok(Some(at))
    }
}
