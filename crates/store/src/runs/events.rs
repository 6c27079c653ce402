//! The run's event log: appending a typed event with its place in the run's hash chain,
//! reading pages of it, verifying the chain, and chaining events written before the log was
//! chained.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use shipshape_domain::event::*;
use shipshape_domain::wire::EventPage;

use crate::schema::{run_events as ev, runs as r};
use crate::{AnyConnection, Store, StoreError, StoreResult, utc};

use super::items::ItemWrite;
use super::rows::*;
use shipshape_domain::chain::{GENESIS, canonical_json, chained_body, link_hash};
use shipshape_domain::wire::ChainVerdict;

use crate::chain::{ChainEntry, links_to_store, verify};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ev)]
pub(crate) struct EventRow {
    run_id: String,
    seq: i64,
    event_type: String,
    actor: String,
    at: NaiveDateTime,
    payload: String,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl EventRow {
    fn payload(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.payload).map_err(|e| format!("payload is not JSON: {e}"))
    }

    /// The typed event with the given stored payload, or why the row does not decode.
    fn decode(&self, payload: serde_json::Value) -> Result<Event, String> {
        let kind = EventType::parse(&self.event_type)
            .ok_or_else(|| format!("unknown event type `{}`", self.event_type))?;
        Ok(Event {
            seq: self.seq,
            run_id: self.run_id.clone(),
            actor: self.actor.clone(),
            at: utc(self.at),
            data: EventData::from_payload(kind, payload)
                .map_err(|e| format!("`{}` event: {e}", self.event_type))?,
            prev_hash: self.prev_hash.clone().unwrap_or_default(),
            hash: self.hash.clone().unwrap_or_default(),
        })
    }

    pub(crate) fn to_wire(&self) -> StoreResult<Event> {
        self.payload()
            .and_then(|p| self.decode(p))
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", self.seq)))
    }
}

impl ChainEntry for EventRow {
    fn seq(&self) -> i64 {
        self.seq
    }

    /// The event as served, without its hashes. A stored payload that decodes but is not
    /// what its type writes (an extra field, say) does not count.
    fn body(&self) -> Result<serde_json::Value, String> {
        let stored = self.payload()?;
        let body = chained_body(&self.decode(stored.clone())?).map_err(|e| e.to_string())?;
        if canonical_json(&body["payload"]) != canonical_json(&stored) {
            return Err(format!(
                "`{}` payload holds fields its type does not",
                self.event_type
            ));
        }
        Ok(body)
    }

    fn prev_hash(&self) -> Option<&str> {
        self.prev_hash.as_deref()
    }

    fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }
}

/// Appends one event to a run's log, numbering it after the last and chaining it to the
/// one before, and touches the run. Runs inside the change's transaction, after the run's
/// lock is taken.
pub(super) fn append_event(
    conn: &mut AnyConnection,
    run_id: &str,
    actor: &str,
    at: NaiveDateTime,
    data: EventData,
) -> StoreResult<i64> {
    append_event_to(conn, run_id, actor, at, data, &[])
}

/// [`append_event`], delivering the event also to the webhook subscriptions `also` (active
/// ones, whatever event types they chose): an announcement goes where it is sent.
pub(super) fn append_event_to(
    conn: &mut AnyConnection,
    run_id: &str,
    actor: &str,
    at: NaiveDateTime,
    data: EventData,
    also: &[String],
) -> StoreResult<i64> {
    // The run's next sequence number and the hash of its last event, in one statement.
    // (`Fixed`: diesel would prepare a raw query afresh at every execution.)
    let Next { seq, prev } = crate::Fixed(
        diesel::sql_query(
            "UPDATE runs SET last_seq = last_seq + 1, updated_at = $1 WHERE id = $2 \
         RETURNING last_seq AS seq, (SELECT e.hash FROM run_events e \
         WHERE e.run_id = runs.id AND e.seq = runs.last_seq - 1) AS prev",
        )
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .bind::<diesel::sql_types::Text, _>(run_id),
    )
    .get_result(conn)?;
    let prev_hash = prev_hash(conn, run_id, seq, prev)?;
    write_event(
        conn,
        NewEvent {
            run_id,
            seq,
            prev_hash,
            actor,
            at,
            data,
        },
        also,
        None,
        None,
    )
}

/// A run's row taken for a change of one of its items, which appends one event: locked, the
/// event's number claimed and the run's `updated_at` set, in one statement that also answers
/// what the change asks of the database besides (whether the actor is on the run's team,
/// whether any webhook subscription is active, and on PostgreSQL the item) — in two when that
/// statement had to wait for the lock (see [`claim`]). A change that then alters nothing must
/// not keep what this wrote: run it in [`Store::write_or_undo`](crate::Store).
pub(super) struct Claimed {
    /// The run as locked; its `last_seq` is the claimed event's number.
    pub(super) run: RunRow,
    /// When the change happens: once the run is held.
    pub(super) at: NaiveDateTime,
    /// The hash the claimed event chains to.
    prev_hash: String,
    /// Whether the actor is on the run's team.
    pub(super) on_team: bool,
    /// Whether any webhook subscription is active.
    subscribed: bool,
}

/// Takes `run_id` for a change of its item `item_id` by `actor_id` (`NotFound` for an unknown
/// run): see [`Claimed`]. Answers the item too as the claim read it: on PostgreSQL, when the
/// claim did not wait for the lock (a statement costs a round trip there); otherwise `None`
/// and the change reads it (`None` also for an item the run does not have).
pub(super) fn claim(
    conn: &mut AnyConnection,
    run_id: &str,
    item_id: &str,
    actor_id: &str,
) -> StoreResult<(Claimed, Option<ItemRow>)> {
    let mut at = crate::now();
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Nullable, Text};
    // The item as JSON on PostgreSQL; on SQLite nothing (`NULL = x` holds for no row).
    let item_sql = match conn {
        AnyConnection::Postgresql(_) => {
            "(SELECT row_to_json(i)::text FROM run_items i WHERE i.run_id = runs.id AND i.id = "
        }
        AnyConnection::Sqlite(_) => "(SELECT NULL WHERE NULL = ",
    };
    let (run, prev, on_team, subscribed, item) = crate::native!(conn, |c| {
        crate::Fixed(
        diesel::update(r::table.find(run_id))
            .set((r::last_seq.eq(r::last_seq + 1_i64), r::updated_at.eq(at)))
            .returning((
                RunRow::as_select(),
                sql::<Nullable<Text>>(
                    "(SELECT e.hash FROM run_events e \
                     WHERE e.run_id = runs.id AND e.seq = runs.last_seq - 1)"
                ),
                sql::<Bool>(
                    "EXISTS (SELECT 1 FROM run_members m WHERE m.run_id = runs.id AND m.user_id = "
                )
                .bind::<Text, _>(actor_id)
                .sql(")"),
                sql::<Bool>("EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.active)"),
                sql::<Nullable<Text>>(item_sql).bind::<Text, _>(item_id).sql(")"),
            )),
    )
    .get_result::<(RunRow, Option<String>, bool, bool, Option<String>)>(c)
    .optional()
    })?
    .ok_or(StoreError::NotFound("run"))?;
    let mut item = item
        .map(|json| serde_json::from_str::<ItemRow>(&json))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("item {item_id}: {e}")))?;
    // On PostgreSQL a statement that waited for the row's lock sees the row as the change it
    // waited for left it, but reads everything else as it was when the statement began: the
    // event that change appended is not there to chain to, and the team or the subscriptions
    // may have changed with it; and the change happens now, after the one it waited for. Read
    // them again, in a statement of its own.
    let (prev, on_team, subscribed) = if prev.is_none() && run.last_seq > 1 {
        at = crate::now();
        item = None;
        let again: Around = crate::Fixed(
            diesel::sql_query(
                "UPDATE runs SET updated_at = $4 WHERE id = $1 RETURNING \
                 (SELECT e.hash FROM run_events e WHERE e.run_id = $1 AND e.seq = $2) AS prev, \
                 EXISTS (SELECT 1 FROM run_members m WHERE m.run_id = $1 AND m.user_id = $3) \
                 AS on_team, \
                 EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.active) AS subscribed",
            )
            .bind::<Text, _>(run_id)
            .bind::<diesel::sql_types::BigInt, _>(run.last_seq - 1)
            .bind::<Text, _>(actor_id)
            .bind::<diesel::sql_types::Timestamp, _>(at),
        )
        .get_result(conn)?;
        (again.prev, again.on_team, again.subscribed)
    } else {
        (prev, on_team, subscribed)
    };
    let prev_hash = prev_hash(conn, run_id, run.last_seq, prev)?;
    Ok((
        Claimed {
            run,
            at,
            prev_hash,
            on_team,
            subscribed,
        },
        item,
    ))
}

/// Appends the event whose number `claimed` holds, at the claim's time, writing `item` with
/// it (an item change: on PostgreSQL in the event's statement).
pub(super) fn append_claimed(
    conn: &mut AnyConnection,
    claimed: Claimed,
    actor: &str,
    data: EventData,
    item: ItemWrite<'_>,
) -> StoreResult<i64> {
    let Claimed {
        run,
        at,
        prev_hash,
        subscribed,
        ..
    } = claimed;
    write_event(
        conn,
        NewEvent {
            run_id: &run.id,
            seq: run.last_seq,
            prev_hash,
            actor,
            at,
            data,
        },
        &[],
        Some(crate::webhooks::Audience {
            any_active: subscribed,
            product: &run.product,
            environment: &run.environment,
        }),
        Some(item),
    )
}

/// The hash event `seq` of `run_id` chains to, given `prev` as read with its number (`None`
/// before the first event, or after one written before the log was chained).
fn prev_hash(
    conn: &mut AnyConnection,
    run_id: &str,
    seq: i64,
    mut prev: Option<String>,
) -> StoreResult<String> {
    if seq == 1 {
        return Ok(GENESIS.to_owned());
    }
    if prev.is_none() {
        // Written before the log was chained and not yet chained at start-up.
        chain_run(conn, run_id)?;
        prev = ev::table
            .find((run_id, seq - 1))
            .select(ev::hash)
            .get_result(conn)?;
    }
    prev.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "event {} of run {run_id} cannot be chained",
            seq - 1
        ))
    })
}

/// An event to write, its number taken.
struct NewEvent<'a> {
    run_id: &'a str,
    seq: i64,
    prev_hash: String,
    actor: &'a str,
    at: NaiveDateTime,
    data: EventData,
}

/// Writes an event whose number is taken: chained, queued to the webhook subscriptions that
/// want it (and `also`), placed in the all-runs log, and announced once the transaction
/// commits; with the item row `item` when the event is that item's change.
fn write_event(
    conn: &mut AnyConnection,
    new: NewEvent<'_>,
    also: &[String],
    audience: Option<crate::webhooks::Audience<'_>>,
    item: Option<ItemWrite<'_>>,
) -> StoreResult<i64> {
    let NewEvent {
        run_id,
        seq,
        prev_hash,
        actor,
        at,
        data,
    } = new;
    let event_type = data.event_type();
    let event = Event {
        seq,
        run_id: run_id.to_owned(),
        actor: actor.to_owned(),
        at: utc(at),
        data,
        prev_hash: String::new(),
        hash: String::new(),
    };
    let body = chained_body(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let hash = link_hash(&prev_hash, &body);
    let event = Event {
        prev_hash: prev_hash.clone(),
        hash: hash.clone(),
        ..event
    };
    crate::webhooks::enqueue_for_event(conn, &event, at, also, audience)?;
    let payload = body["payload"].to_string();
    let signal = crate::live::Signal::Events(run_id.to_owned());
    if let AnyConnection::Postgresql(c) = conn {
        // The item, the all-runs position, the event and its NOTIFY in one round trip.
        let (channel, notice) = signal.notification();
        let event = PgEvent {
            run_id,
            seq,
            event_type: event_type.as_str(),
            actor,
            at,
            payload: &payload,
            prev_hash: &prev_hash,
            hash: &hash,
            channel,
            notice,
        };
        let appended = match &item {
            None => crate::Fixed(event.bound(APPEND)).get_result::<Appended>(c),
            Some(item) => {
                let row = item.row;
                use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
                crate::Fixed(
                    event
                        .bound(APPEND_WITH_ITEM)
                        .bind::<Text, _>(&row.status)
                        .bind::<Nullable<Timestamp>, _>(row.started_at)
                        .bind::<Nullable<Timestamp>, _>(row.finished_at)
                        .bind::<Nullable<Text>, _>(&row.assignee)
                        .bind::<Nullable<Text>, _>(&row.note)
                        .bind::<Nullable<Text>, _>(&row.evidence_url)
                        .bind::<Text, _>(&row.evidence)
                        .bind::<Nullable<Text>, _>(&row.skip_reason)
                        .bind::<BigInt, _>(row.version)
                        .bind::<Nullable<Text>, _>(&row.updated_by)
                        .bind::<Nullable<Timestamp>, _>(row.updated_at)
                        .bind::<Nullable<Text>, _>(&row.worked_by)
                        .bind::<Text, _>(&row.id)
                        .bind::<BigInt, _>(item.expected),
                )
                .get_result::<Appended>(c)
            }
        };
        match appended.optional()? {
            Some(Appended { .. }) => {}
            // Only the item's condition can leave the statement without a row.
            None => {
                return Err(
                    item.map_or(diesel::result::Error::NotFound.into(), |i| i.refused(conn))
                );
            }
        }
        crate::live::publish_here(signal);
        return Ok(seq);
    }
    if let Some(item) = &item {
        item.write(conn)?;
    }
    let position = crate::live::next_position(conn)?;
    crate::native!(conn, |c| diesel::insert_into(ev::table)
        .values((
            ev::run_id.eq(run_id),
            ev::seq.eq(seq),
            ev::event_type.eq(event_type.as_str()),
            ev::actor.eq(actor),
            ev::at.eq(at),
            ev::payload.eq(&payload),
            ev::prev_hash.eq(&prev_hash),
            ev::hash.eq(&hash),
            ev::position.eq(position),
        ))
        .execute(c))?;
    crate::live::publish_here(signal);
    Ok(seq)
}

/// The end of [`APPEND`] and [`APPEND_WITH_ITEM`]: the event, at the all-runs position `p`
/// holds, and its NOTIFY.
macro_rules! insert_event_from_p {
    () => {
        "e AS (INSERT INTO run_events \
         (run_id, seq, event_type, actor, at, payload, prev_hash, hash, position) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, p.position FROM p RETURNING seq) \
         SELECT e.seq FROM e CROSS JOIN pg_notify($9, $10) AS n"
    };
}

/// On PostgreSQL: the all-runs position, the event and its NOTIFY (binds: see [`PgEvent`]).
const APPEND: &str = concat!(
    "WITH p AS (UPDATE event_log_head SET position = position + 1 WHERE id = 1 \
     RETURNING position), ",
    insert_event_from_p!()
);

/// [`APPEND`] with the item's row the event records the change of, written only if still at
/// the version the change was planned on (no row answered otherwise, nothing appended).
const APPEND_WITH_ITEM: &str = concat!(
    "WITH u AS (UPDATE run_items SET status = $11, \
     started_at = $12, finished_at = $13, assignee = $14, note = $15, evidence_url = $16, \
     evidence = $17, skip_reason = $18, version = $19, updated_by = $20, updated_at = $21, \
     worked_by = $22 WHERE id = $23 AND version = $24 RETURNING 1), \
     p AS (UPDATE event_log_head SET position = position + 1 \
     WHERE id = 1 AND EXISTS (SELECT 1 FROM u) RETURNING position), ",
    insert_event_from_p!()
);

/// An event's fields as `$1`–`$10` of [`APPEND`] and [`APPEND_WITH_ITEM`].
struct PgEvent<'a> {
    run_id: &'a str,
    seq: i64,
    event_type: &'a str,
    actor: &'a str,
    at: NaiveDateTime,
    payload: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
    /// The NOTIFY's channel and notice.
    channel: &'a str,
    notice: &'a str,
}

impl<'a> PgEvent<'a> {
    /// `statement` with the event's fields bound.
    fn bound(
        &self,
        statement: &'static str,
    ) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>
    {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        diesel::sql_query(statement)
            .into_boxed()
            .bind::<Text, _>(self.run_id)
            .bind::<BigInt, _>(self.seq)
            .bind::<Text, _>(self.event_type)
            .bind::<Text, _>(self.actor)
            .bind::<Timestamp, _>(self.at)
            .bind::<Text, _>(self.payload)
            .bind::<Text, _>(self.prev_hash)
            .bind::<Text, _>(self.hash)
            .bind::<Text, _>(self.channel)
            .bind::<Text, _>(self.notice)
    }
}

/// What [`append_event_to`] reads back when it takes the run's next sequence number.
#[derive(QueryableByName)]
struct Next {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    /// The hash of the event before (`None` before the first, or for one not yet chained).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    prev: Option<String>,
}

/// What [`claim`] reads besides the run, read again after a wait for the run's lock.
#[derive(QueryableByName)]
struct Around {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    prev: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    on_team: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    subscribed: bool,
}

/// The event appended.
#[derive(QueryableByName)]
struct Appended {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[expect(
        dead_code,
        reason = "the row says the insert happened; its value is known"
    )]
    seq: i64,
}

/// Chains a run's events that were written before the log was chained, in order, after
/// the last chained one; stops at an event that does not decode (verification reports it).
fn chain_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<()> {
    let rows: Vec<EventRow> = ev::table
        .filter(ev::run_id.eq(run_id))
        .order(ev::seq.asc())
        .select(EventRow::as_select())
        .load(conn)?;
    let links = links_to_store(&rows, "run events");
    for (seq, prev_hash, hash) in links {
        diesel::update(ev::table.find((run_id, seq)))
            .set((ev::prev_hash.eq(prev_hash), ev::hash.eq(hash)))
            .execute(conn)?;
    }
    Ok(())
}

impl Store {
    /// Chains the events (of every run) written before the log was chained. Idempotent: it
    /// touches only unchained events, each run under its lock. Part of `migrate`.
    pub(crate) fn chain_unchained_events(&self) -> StoreResult<()> {
        let runs: Vec<String> = self.query(|conn| {
            Ok(ev::table
                .filter(ev::hash.is_null())
                .select(ev::run_id)
                .distinct()
                .load(conn)?)
        })?;
        for run_id in &runs {
            self.write(|conn| {
                lock_run(conn, run_id)?;
                chain_run(conn, run_id)
            })?;
        }
        Ok(())
    }

    /// Verifies a run's event log: every event present, decodable, and linked to the one
    /// before by its hash.
    pub fn verify_run(&self, run_id: &str) -> StoreResult<ChainVerdict> {
        self.read(|conn| verify_run_on(conn, run_id))
    }

    /// Every run's id, oldest first (for verifying them all).
    pub fn run_ids(&self) -> StoreResult<Vec<String>> {
        self.query(|conn| {
            Ok(r::table
                .order((r::created_at.asc(), r::id.asc()))
                .select(r::id)
                .load(conn)?)
        })
    }

    /// A page of a run's events after `after`, in order.
    pub fn events(&self, run_id: &str, after: i64, limit: i64) -> StoreResult<EventPage> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            let rows: Vec<EventRow> = ev::table
                .filter(ev::run_id.eq(run_id).and(ev::seq.gt(after)))
                .order(ev::seq.asc())
                .limit(limit)
                .select(EventRow::as_select())
                .load(conn)?;
            let items = rows
                .iter()
                .map(EventRow::to_wire)
                .collect::<StoreResult<Vec<_>>>()?;
            let next_after = match items.last() {
                Some(last) if items.len() as i64 == limit => Some(last.seq),
                _ => None,
            };
            Ok(EventPage { items, next_after })
        })
    }
}

/// Verifies a run's event chain on a connection (inside a caller's transaction).
pub(crate) fn verify_run_on(conn: &mut AnyConnection, run_id: &str) -> StoreResult<ChainVerdict> {
    let last_seq: i64 = r::table
        .find(run_id)
        .select(r::last_seq)
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("run"))?;
    verify(last_seq, |after, limit| {
        Ok(ev::table
            .filter(ev::run_id.eq(run_id).and(ev::seq.gt(after)))
            .order(ev::seq.asc())
            .limit(limit)
            .select(EventRow::as_select())
            .load(conn)?)
    })
}
