//! Safe retries: the stored answers of requests sent with an `Idempotency-Key`, per user.
//!
//! A key is claimed in its own short transaction before the request is served, so a second
//! request with the same key — on this instance or another — sees it at once: in progress
//! (the first is still being served), a different request (its fingerprint differs), or done
//! (its stored answer is replayed). A claim whose server stopped before answering is taken
//! over once it is older than `stale`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Binary, Integer, Nullable, Text, Timestamp};

use crate::{Store, StoreResult};

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new (or its earlier use expired, or was abandoned): serve the request, then
    /// complete or release the key with this claim.
    Begun(String),
    /// A request with this key is being served now.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
    /// The request was served: its answer.
    Done {
        /// The answer's status.
        status: i32,
        /// The stored answer (as the API wrote it).
        response: Vec<u8>,
    },
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Nullable<Integer>)]
    status: Option<i32>,
    #[diesel(sql_type = Nullable<Binary>)]
    response: Option<Vec<u8>>,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
}

/// How a key is claimed: now, how long a served answer is kept, and when an unanswered
/// claim counts as abandoned.
#[derive(Debug, Clone, Copy)]
pub struct ClaimTimes {
    /// Now.
    pub now: NaiveDateTime,
    /// Answers older than this are forgotten: the key may be used afresh.
    pub keep: chrono::Duration,
    /// A claim unanswered for this long was abandoned (its server stopped).
    pub stale: chrono::Duration,
}

impl Store {
    /// Claims `key_hash` for `scope` (the user) and the request `fingerprint`.
    pub fn claim_idempotency_key(
        &self,
        scope: &str,
        key_hash: &str,
        fingerprint: &str,
        times: ClaimTimes,
    ) -> StoreResult<KeyClaim> {
        let claim = uuid::Uuid::new_v4().to_string();
        self.write(|conn| {
            diesel::sql_query(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND created_at < $3",
            )
            .bind::<Text, _>(scope)
            .bind::<Text, _>(key_hash)
            .bind::<Timestamp, _>(times.now - times.keep)
            .execute(conn)?;
            let inserted = diesel::sql_query(
                "INSERT INTO idempotency_keys (scope, key_hash, fingerprint, claim, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key_hash) DO NOTHING",
            )
            .bind::<Text, _>(scope)
            .bind::<Text, _>(key_hash)
            .bind::<Text, _>(fingerprint)
            .bind::<Text, _>(&claim)
            .bind::<Timestamp, _>(times.now)
            .execute(conn)?;
            if inserted == 1 {
                return Ok(KeyClaim::Begun(claim.clone()));
            }
            let row: Option<KeyRow> = diesel::sql_query(
                "SELECT fingerprint, status, response, created_at FROM idempotency_keys \
                 WHERE scope = $1 AND key_hash = $2",
            )
            .bind::<Text, _>(scope)
            .bind::<Text, _>(key_hash)
            .get_result(conn)
            .optional()?;
            // Given back between the insert and this read: the request that held it is
            // done without an answer to keep; the client is told to try again.
            let Some(row) = row else {
                return Ok(KeyClaim::InProgress);
            };
            if row.fingerprint != fingerprint {
                return Ok(KeyClaim::Mismatch);
            }
            match (row.status, row.response) {
                (Some(status), Some(response)) => Ok(KeyClaim::Done { status, response }),
                _ if row.created_at < times.now - times.stale => {
                    // Taken over by one request only: the one whose update still finds the
                    // abandoned claim as it was read.
                    let taken = diesel::sql_query(
                        "UPDATE idempotency_keys SET created_at = $1, claim = $2 \
                         WHERE scope = $3 AND key_hash = $4 AND status IS NULL AND created_at = $5",
                    )
                    .bind::<Timestamp, _>(times.now)
                    .bind::<Text, _>(&claim)
                    .bind::<Text, _>(scope)
                    .bind::<Text, _>(key_hash)
                    .bind::<Timestamp, _>(row.created_at)
                    .execute(conn)?;
                    Ok(if taken == 1 {
                        KeyClaim::Begun(claim.clone())
                    } else {
                        KeyClaim::InProgress
                    })
                }
                _ => Ok(KeyClaim::InProgress),
            }
        })
    }

    /// Stores the answer to a claimed key; `false` when the claim is no longer this one's
    /// (it was taken over).
    pub fn complete_idempotency_key(
        &self,
        scope: &str,
        key_hash: &str,
        claim: &str,
        status: i32,
        response: &[u8],
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let kept = diesel::sql_query(
                "UPDATE idempotency_keys SET status = $1, response = $2 \
                 WHERE scope = $3 AND key_hash = $4 AND claim = $5 AND status IS NULL",
            )
            .bind::<Integer, _>(status)
            .bind::<Binary, _>(response)
            .bind::<Text, _>(scope)
            .bind::<Text, _>(key_hash)
            .bind::<Text, _>(claim)
            .execute(conn)?;
            Ok(kept == 1)
        })
    }

    /// Gives a claimed key back unanswered (the answer is not one to replay: the request may
    /// be sent again and served afresh).
    pub fn release_idempotency_key(
        &self,
        scope: &str,
        key_hash: &str,
        claim: &str,
    ) -> StoreResult<()> {
        self.write(|conn| {
            diesel::sql_query(
                "DELETE FROM idempotency_keys \
                 WHERE scope = $1 AND key_hash = $2 AND claim = $3 AND status IS NULL",
            )
            .bind::<Text, _>(scope)
            .bind::<Text, _>(key_hash)
            .bind::<Text, _>(claim)
            .execute(conn)?;
            Ok(())
        })
    }

    /// Forgets keys first used before `before`; how many.
    pub fn forget_idempotency_keys(&self, before: NaiveDateTime) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(
                diesel::sql_query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind::<Timestamp, _>(before)
                    .execute(conn)?,
            )
        })
    }
}
