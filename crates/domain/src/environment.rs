//! Environments as records: what each says about itself (description, promotion order, base
//! URL, dashboards, escalation contacts), its locks, its freeze windows and when they occur,
//! and the blockers and warnings they add to a run's gates; the release calendar and its
//! iCalendar feed.
//!
//! The wire types build everywhere; the rules that need the time-zone database (freeze
//! occurrences, their checks, the calendar) build with the `tz` feature, which the server
//! has and the web app leaves out (they are the server's to judge).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::text::{HttpUrl, Label, Note, TextError, TextRule};

/// The most dashboard links an environment carries.
pub const MAX_DASHBOARDS: usize = 20;
/// The most escalation contacts an environment carries.
pub const MAX_CONTACTS: usize = 20;
/// The longest description.
pub const MAX_DESCRIPTION_LEN: usize = 2_000;
/// The highest escalation level (1 is called first).
pub const MAX_ESCALATION_LEVEL: i32 = 9;
/// The highest promotion position.
pub const MAX_POSITION: i32 = 1_000;

/// A link shown on every run in the environment: a dashboard, logs, a status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvironmentLink {
    /// What it shows, e.g. "Grafana: EduLibra production" (1 to 200 characters, one line).
    pub label: String,
    /// Where, an absolute http(s) URL.
    pub url: String,
}

/// Someone to call when a deployment goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationContact {
    /// Their name, e.g. "Dana Whitfield" (one line).
    pub name: String,
    /// Their role, e.g. "Database on-call" (one line).
    pub role: String,
    /// How to reach them: a phone number, an e-mail address, a pager or chat handle (one
    /// line).
    pub reach: String,
    /// The order of escalation: level 1 is called first, then 2, up to 9.
    pub level: i32,
    /// When they can be reached, e.g. "24/7" or "Mon–Fri 08:00–18:00 CET" (one line;
    /// `null`: not said).
    #[serde(default)]
    pub hours: Option<String>,
}

/// An environment: a place runs deploy to, e.g. `staging` or `production`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    /// The environment's name, as runs name it (e.g. `production`).
    pub name: String,
    /// What it is, for people choosing it.
    pub description: Option<String>,
    /// Where it stands in the promotion order: lower comes first (staging before production).
    pub position: i32,
    /// The environment a release is promoted from before it comes here, e.g. `staging` for
    /// `production`.
    pub promotes_from: Option<String>,
    /// Whether a run here needs a completed run of the same product and release version in
    /// `promotes_from` before it may start.
    pub requires_promotion: bool,
    /// The base URL probe items write `{base_url}` with.
    pub base_url: Option<String>,
    /// Links shown on every run here (monitoring, logs).
    pub dashboards: Vec<EnvironmentLink>,
    /// Whom to call, in order of escalation.
    pub contacts: Vec<EscalationContact>,
    /// Whether it is archived: no new run may name it; its runs and history stay.
    pub archived: bool,
    /// The lock in force, if any: no run starts or deploys here while it holds.
    pub lock: Option<EnvironmentLock>,
    /// The freeze in force now, if any.
    pub freeze: Option<FreezeOccurrence>,
    /// The record's version (its `ETag`): a `PUT` with `If-Match` must name it.
    pub version: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When it changed last.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
}

/// Every environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentList {
    /// The environments, in promotion order, then by name.
    pub items: Vec<Environment>,
}

/// An environment's record to store: a field left out keeps its stored value (a new record
/// starts empty); `null` clears a text field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutEnvironmentRequest {
    /// What it is (up to 2,000 characters; `null` clears it).
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    /// Where it stands in the promotion order, 0 to 1,000 (a new record: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
    /// The environment a release is promoted from (another environment's name; `null`
    /// clears it).
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub promotes_from: Option<Option<String>>,
    /// Whether a run here needs a completed run of the same product and release version in
    /// `promotes_from` first (needs `promotes_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_promotion: Option<bool>,
    /// The base URL probe items write `{base_url}` with: absolute http(s); `null` removes it.
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub base_url: Option<Option<String>>,
    /// Links shown on every run here (at most 20; replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<Vec<EnvironmentLink>>,
    /// Whom to call, in order of escalation (at most 20; replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<EscalationContact>>,
    /// Archive it (no new run may name it) or bring it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// An environment's record, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvironmentSpec {
    /// The description.
    pub description: Option<String>,
    /// The promotion position.
    pub position: i32,
    /// The environment promoted from.
    pub promotes_from: Option<String>,
    /// Whether promotion is required.
    pub requires_promotion: bool,
    /// The base URL.
    pub base_url: Option<String>,
    /// The dashboards.
    pub dashboards: Vec<EnvironmentLink>,
    /// The contacts, by level, then as given.
    pub contacts: Vec<EscalationContact>,
    /// Whether it is archived.
    pub archived: bool,
}

fn optional_line(field: &'static str, s: Option<&str>) -> Result<Option<String>, TextError> {
    match s {
        None => Ok(None),
        Some(s) => Label::RULE.optional(field, s),
    }
}

impl PutEnvironmentRequest {
    /// The record `current` (`None`: a new one) becomes, every field checked. `known` names
    /// every environment with the one it promotes from, so that `promotes_from` names one of
    /// them and the promotion order has no cycle.
    pub fn validated(
        &self,
        name: &str,
        known: &[(String, Option<String>)],
        current: Option<&EnvironmentSpec>,
    ) -> Result<EnvironmentSpec, TextError> {
        let empty = EnvironmentSpec::default();
        let current = current.unwrap_or(&empty);
        let description = match &self.description {
            None => current.description.clone(),
            Some(None) => None,
            Some(Some(d)) => TextRule::prose(MAX_DESCRIPTION_LEN).optional("description", d)?,
        };
        let position = self.position.unwrap_or(current.position);
        if !(0..=MAX_POSITION).contains(&position) {
            return Err(TextError::new(
                "position",
                format!("must be between 0 and {MAX_POSITION}"),
            ));
        }
        let promotes_from = match &self.promotes_from {
            None => current.promotes_from.clone(),
            Some(p) => optional_line("promotes_from", p.as_deref())?,
        };
        if let Some(from) = &promotes_from {
            if from == name {
                return Err(TextError::new(
                    "promotes_from",
                    "an environment cannot be promoted from itself",
                ));
            }
            if !known.iter().any(|(n, _)| n == from) {
                return Err(TextError::new(
                    "promotes_from",
                    format!("there is no environment `{from}`"),
                ));
            }
            // Follow the chain from `from`: reaching `name` again would make a cycle.
            let mut at = Some(from.clone());
            let mut steps = 0;
            while let Some(current) = at {
                if current == name || steps > known.len() {
                    return Err(TextError::new(
                        "promotes_from",
                        format!("`{from}` is promoted from `{name}` already: that is a cycle"),
                    ));
                }
                at = known
                    .iter()
                    .find(|(n, _)| *n == current)
                    .and_then(|(_, f)| f.clone());
                steps += 1;
            }
        }
        let requires_promotion = self
            .requires_promotion
            .unwrap_or(current.requires_promotion);
        if requires_promotion && promotes_from.is_none() {
            return Err(TextError::new(
                "requires_promotion",
                "name the environment it is promoted from in `promotes_from`",
            ));
        }
        let base_url = match &self.base_url {
            None => current.base_url.clone(),
            Some(u) => match u.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(u) => Some(HttpUrl::parse("base_url", u)?.into_string()),
            },
        };
        let Some(new_dashboards) = &self.dashboards else {
            return self.rest(
                current,
                description,
                position,
                promotes_from,
                requires_promotion,
                base_url,
                current.dashboards.clone(),
            );
        };
        if new_dashboards.len() > MAX_DASHBOARDS {
            return Err(TextError::new(
                "dashboards",
                format!("at most {MAX_DASHBOARDS} links"),
            ));
        }
        let dashboards = new_dashboards
            .iter()
            .map(|l| {
                Ok(EnvironmentLink {
                    label: Label::parse("dashboards", &l.label)?.into_string(),
                    url: HttpUrl::parse("dashboards", &l.url)?.into_string(),
                })
            })
            .collect::<Result<Vec<_>, TextError>>()?;
        self.rest(
            current,
            description,
            position,
            promotes_from,
            requires_promotion,
            base_url,
            dashboards,
        )
    }

    /// The contacts and the archive flag, once the other fields are checked.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields checked so far, in order"
    )]
    fn rest(
        &self,
        current: &EnvironmentSpec,
        description: Option<String>,
        position: i32,
        promotes_from: Option<String>,
        requires_promotion: bool,
        base_url: Option<String>,
        dashboards: Vec<EnvironmentLink>,
    ) -> Result<EnvironmentSpec, TextError> {
        let Some(new_contacts) = &self.contacts else {
            return Ok(EnvironmentSpec {
                description,
                position,
                promotes_from,
                requires_promotion,
                base_url,
                dashboards,
                contacts: current.contacts.clone(),
                archived: self.archived.unwrap_or(current.archived),
            });
        };
        if new_contacts.len() > MAX_CONTACTS {
            return Err(TextError::new(
                "contacts",
                format!("at most {MAX_CONTACTS} contacts"),
            ));
        }
        let mut contacts = new_contacts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let named = |e: TextError| {
                    TextError::new("contacts", format!("contact {}: {}", i + 1, e.message))
                };
                if !(1..=MAX_ESCALATION_LEVEL).contains(&c.level) {
                    return Err(TextError::new(
                        "contacts",
                        format!(
                            "contact {}: level must be between 1 and {MAX_ESCALATION_LEVEL}",
                            i + 1
                        ),
                    ));
                }
                Ok(EscalationContact {
                    name: Label::parse("name", &c.name).map_err(named)?.into_string(),
                    role: Label::parse("role", &c.role).map_err(named)?.into_string(),
                    reach: Label::parse("reach", &c.reach)
                        .map_err(named)?
                        .into_string(),
                    level: c.level,
                    hours: optional_line("hours", c.hours.as_deref()).map_err(named)?,
                })
            })
            .collect::<Result<Vec<_>, TextError>>()?;
        contacts.sort_by_key(|c| c.level);
        Ok(EnvironmentSpec {
            description,
            position,
            promotes_from,
            requires_promotion,
            base_url,
            dashboards,
            contacts,
            archived: self.archived.unwrap_or(current.archived),
        })
    }
}

/// A lock on an environment: while it holds, no run starts or deploys there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentLock {
    /// The lock's id.
    pub id: String,
    /// The environment.
    pub environment: String,
    /// Why it is locked.
    pub reason: String,
    /// Who locked it (`system` for a lock after a rollback).
    pub locked_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub locked_at: DateTime<Utc>,
    /// When it lifts by itself (`null`: when someone unlocks it).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub until: Option<DateTime<Utc>>,
    /// The run whose rollback locked it, for a lock the server took.
    pub run_id: Option<String>,
    /// Who unlocked it.
    pub unlocked_by: Option<String>,
    /// When it was unlocked or lifted by itself.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub unlocked_at: Option<DateTime<Utc>>,
    /// What the person who unlocked it noted.
    pub unlock_note: Option<String>,
}

impl EnvironmentLock {
    /// Whether it holds at `now`.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        self.unlocked_at.is_none() && self.until.is_none_or(|u| u > now)
    }

    /// When it stopped holding, if it has: unlocked, or its `until` passed.
    pub fn ended_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.unlocked_at
            .or_else(|| self.until.filter(|u| *u <= now))
    }
}

/// A lock to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LockEnvironmentRequest {
    /// Why (required): "database migration half-done".
    pub reason: String,
    /// When it lifts by itself (RFC 3339, in the future; `null`: when someone unlocks it).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// Unlocking an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnlockEnvironmentRequest {
    /// What was looked at, and why it is safe again (required).
    pub note: String,
}

/// The locks an environment has had, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LockList {
    /// The locks.
    pub items: Vec<EnvironmentLock>,
}

/// A lock, checked: its reason, and when it lifts.
pub fn check_lock(
    req: &LockEnvironmentRequest,
    now: DateTime<Utc>,
) -> Result<(String, Option<DateTime<Utc>>), TextError> {
    let reason = Note::parse_required("reason", &req.reason)?.into_string();
    if let Some(until) = req.until {
        if until <= now {
            return Err(TextError::new("until", "must be in the future"));
        }
        if until > now + chrono::Duration::days(MAX_LOCK_DAYS) {
            return Err(TextError::new(
                "until",
                "at most ten years ahead (leave it out for a lock until someone unlocks it)",
            ));
        }
    }
    Ok((reason, req.until))
}

/// An unlock note, checked.
pub fn check_unlock(req: &UnlockEnvironmentRequest) -> Result<String, TextError> {
    Ok(Note::parse_required("note", &req.note)?.into_string())
}

/// How a freeze window recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    /// Once: `start` and `end` are RFC 3339 times.
    Once,
    /// Every week: `start` and `end` are a weekday and a time, e.g. `fri 18:00` and
    /// `mon 08:00`, in `time_zone`.
    Weekly,
    /// Every year over a calendar date range, whole days in `time_zone`: `start` and `end`
    /// are `MM-DD`, e.g. `12-20` and `01-03` (the end day is included).
    Yearly,
}

impl Recurrence {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Recurrence::Once => "once",
            Recurrence::Weekly => "weekly",
            Recurrence::Yearly => "yearly",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Recurrence::Once, Recurrence::Weekly, Recurrence::Yearly]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One occurrence of a freeze window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FreezeOccurrence {
    /// The freeze window's id.
    pub freeze_id: String,
    /// Its reason.
    pub reason: String,
    /// When this occurrence begins.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub starts_at: DateTime<Utc>,
    /// When it ends.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub ends_at: DateTime<Utc>,
}

/// A freeze window: no run starts or deploys in its environment while it is in force, unless
/// a release manager forces it (break-glass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FreezeWindow {
    /// The freeze window's id.
    pub id: String,
    /// The environment.
    pub environment: String,
    /// Why, e.g. "Exam period".
    pub reason: String,
    /// How it recurs.
    pub recurrence: Recurrence,
    /// When it begins, as `recurrence` says.
    pub start: String,
    /// When it ends, as `recurrence` says.
    pub end: String,
    /// The IANA time zone a recurring window's days and times are in.
    pub time_zone: String,
    /// The last day (`YYYY-MM-DD`) a recurring window may begin on (`null`: no end).
    pub until: Option<String>,
    /// The occurrence in force now, or the next one (`null`: it will not occur again).
    pub next: Option<FreezeOccurrence>,
    /// Who made it.
    pub created_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// Every freeze window of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FreezeList {
    /// The freeze windows, soonest first.
    pub items: Vec<FreezeWindow>,
}

/// A freeze window to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateFreezeRequest {
    /// Why (required), e.g. "Exam period: no deploys".
    pub reason: String,
    /// How it recurs.
    pub recurrence: Recurrence,
    /// When it begins: an RFC 3339 time (`once`), `ddd HH:MM` (`weekly`, e.g. `fri 18:00`),
    /// or `MM-DD` (`yearly`).
    pub start: String,
    /// When it ends, in the same form as `start` (a `yearly` end day is included).
    pub end: String,
    /// The IANA time zone of a recurring window's days and times, e.g. `Europe/Berlin`
    /// (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The last day (`YYYY-MM-DD`) a recurring window may begin on (`null`: no end).
    #[serde(default)]
    pub until: Option<String>,
}

/// What a run's gates need to know about its environment; the store gathers it, the rules
/// below judge it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvironmentFacts {
    /// The environment's name.
    pub name: String,
    /// Its lock, if one holds.
    pub lock: Option<EnvironmentLock>,
    /// The freeze occurrence in force at the time the gates are judged, if any.
    pub freeze: Option<FreezeOccurrence>,
    /// When promotion is required: the environment promoted from, and whether a completed
    /// run of the same product and release version is there.
    pub promotion: Option<(String, bool)>,
}

/// The blockers an environment adds to starting a run or moving it into deploying: a lock
/// that holds, a freeze in force, a promotion not made.
pub fn blockers(
    facts: &EnvironmentFacts,
    product: &str,
    release_version: &str,
) -> Vec<crate::run::Blocker> {
    use crate::run::Blocker;
    let mut out = Vec::new();
    if let Some(lock) = &facts.lock {
        out.push(Blocker::Lock {
            environment: facts.name.clone(),
            reason: lock.reason.clone(),
            locked_by: lock.locked_by.clone(),
            until: lock.until,
        });
    }
    if let Some(freeze) = &facts.freeze {
        out.push(Blocker::Freeze {
            freeze_id: freeze.freeze_id.clone(),
            environment: facts.name.clone(),
            reason: freeze.reason.clone(),
            ends_at: freeze.ends_at,
        });
    }
    if let Some((from, false)) = &facts.promotion {
        out.push(Blocker::Promotion {
            environment: from.clone(),
            product: product.to_owned(),
            release_version: release_version.to_owned(),
        });
    }
    out
}

/// A warning about a run's schedule: its window meets a freeze, or its environment is locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleWarning {
    /// What it is about: `freeze` or `lock`.
    pub kind: String,
    /// In words, e.g. "The window overlaps the freeze “Exam period” (2026-12-20 00:00 UTC to
    /// 2027-01-04 00:00 UTC)".
    pub message: String,
    /// The freeze window, for a `freeze` warning.
    pub freeze_id: Option<String>,
    /// When what it warns of begins.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub starts_at: DateTime<Utc>,
    /// When it ends (`null`: a lock until someone unlocks it).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub ends_at: Option<DateTime<Utc>>,
}

/// The most freeze warnings a run lists (a long window over a weekly freeze meets many).
pub const MAX_WARNINGS: usize = 10;

fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The warnings about a schedule `[start, end)` (a window without an end is taken as its
/// first minute): every freeze occurrence it overlaps, and a lock that holds now.
pub fn schedule_warnings(
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    freezes: &[FreezeOccurrence],
    lock: Option<&EnvironmentLock>,
) -> Vec<ScheduleWarning> {
    let end = end
        .filter(|e| *e > start)
        .or_else(|| start.checked_add_signed(chrono::Duration::minutes(1)))
        .unwrap_or(start);
    let mut out: Vec<ScheduleWarning> = freezes
        .iter()
        .filter(|f| f.starts_at < end && start < f.ends_at)
        .take(MAX_WARNINGS)
        .map(|f| ScheduleWarning {
            kind: "freeze".into(),
            message: format!(
                "The window overlaps the freeze “{}” ({} to {}): the run cannot start or \
                 deploy then without break-glass",
                f.reason,
                minute(f.starts_at),
                minute(f.ends_at)
            ),
            freeze_id: Some(f.freeze_id.clone()),
            starts_at: f.starts_at,
            ends_at: Some(f.ends_at),
        })
        .collect();
    if let Some(lock) = lock
        && lock.until.is_none_or(|u| u > start)
    {
        out.push(ScheduleWarning {
            kind: "lock".into(),
            message: match lock.until {
                Some(u) => format!(
                    "{} is locked until {}: {}",
                    lock.environment,
                    minute(u),
                    lock.reason
                ),
                None => format!(
                    "{} is locked until someone unlocks it: {}",
                    lock.environment, lock.reason
                ),
            },
            freeze_id: None,
            starts_at: lock.locked_at,
            ends_at: lock.until,
        });
    }
    out
}

/// What a calendar entry shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    /// A run's scheduled window.
    Run,
    /// An occurrence of a freeze window.
    Freeze,
    /// A lock.
    Lock,
}

impl CalendarKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarKind::Run => "run",
            CalendarKind::Freeze => "freeze",
            CalendarKind::Lock => "lock",
        }
    }
}

/// One entry of the release calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CalendarEntry {
    /// What it shows.
    pub kind: CalendarKind,
    /// The id of the run, freeze window or lock.
    pub id: String,
    /// The environment.
    pub environment: String,
    /// In words, e.g. "EduLibra 4.2.0 → production (planned)" or "Freeze: Exam period".
    pub title: String,
    /// When it begins.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub starts_at: DateTime<Utc>,
    /// When it ends (`null`: a run without a window end, or a lock until someone unlocks it).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub ends_at: Option<DateTime<Utc>>,
    /// A run's status.
    pub status: Option<crate::run::RunStatus>,
}

/// The release calendar over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Calendar {
    /// The period's start.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub from: DateTime<Utc>,
    /// The period's end.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub to: DateTime<Utc>,
    /// Every entry that meets the period, by start.
    pub entries: Vec<CalendarEntry>,
}

/// Whether a time is one the calendar reasons about: from 1970 to 9999 (chrono reads years
/// far outside, where date arithmetic would overflow).
pub fn sane(t: DateTime<Utc>) -> bool {
    (1970..=9999).contains(&chrono::Datelike::year(&t))
}

/// The farthest ahead a lock's `until` may be.
pub const MAX_LOCK_DAYS: i64 = 3_660;

/// The longest calendar period asked for at once.
pub const MAX_CALENDAR_DAYS: i64 = 400;

/// A calendar period, checked: it ends after it starts, and spans at most
/// [`MAX_CALENDAR_DAYS`].
pub fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), TextError> {
    for (field, t) in [("from", from), ("to", to)] {
        if !sane(t) {
            return Err(TextError::new(
                field,
                "must fall between the years 1970 and 9999",
            ));
        }
    }
    if to <= from {
        return Err(TextError::new("to", "the period must end after it starts"));
    }
    if to - from > chrono::Duration::days(MAX_CALENDAR_DAYS) {
        return Err(TextError::new(
            "to",
            format!("a period spans at most {MAX_CALENDAR_DAYS} days"),
        ));
    }
    Ok(())
}

/// The kinds of environment events a webhook subscription may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentEventType {
    /// An environment was locked (by a release manager, or by the server after a rollback).
    EnvironmentLocked,
    /// An environment was unlocked.
    EnvironmentUnlocked,
}

impl EnvironmentEventType {
    /// Every kind.
    pub const ALL: [EnvironmentEventType; 2] = [
        EnvironmentEventType::EnvironmentLocked,
        EnvironmentEventType::EnvironmentUnlocked,
    ];

    /// The wire spelling (the webhook envelope's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentEventType::EnvironmentLocked => "environment_locked",
            EnvironmentEventType::EnvironmentUnlocked => "environment_unlocked",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An environment event as webhooks deliver it (the envelope's `data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EnvironmentEventType,
    /// The environment.
    pub environment: String,
    /// Who did it (`system` for a lock after a rollback).
    pub actor: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
    /// The lock taken or lifted.
    pub lock: EnvironmentLock,
}

impl EnvironmentEvent {
    /// What happened, in a sentence.
    pub fn describe(&self) -> String {
        match self.event_type {
            EnvironmentEventType::EnvironmentLocked => match self.lock.until {
                Some(until) => format!(
                    "{} locked {} until {}: {}",
                    self.actor,
                    self.environment,
                    minute(until),
                    self.lock.reason
                ),
                None => format!(
                    "{} locked {}: {}",
                    self.actor, self.environment, self.lock.reason
                ),
            },
            EnvironmentEventType::EnvironmentUnlocked => format!(
                "{} unlocked {}: {}",
                self.actor,
                self.environment,
                self.lock.unlock_note.as_deref().unwrap_or("no note")
            ),
        }
    }
}

#[cfg(feature = "tz")]
pub use self::tz::*;

#[cfg(feature = "tz")]
mod tz {
    //! The rules that need the time-zone database.

    use chrono::{
        DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
    };
    use chrono_tz::Tz;

    use super::{CalendarEntry, CalendarKind, CreateFreezeRequest, FreezeOccurrence, Recurrence};
    use crate::text::{Note, TextError};

    /// How far ahead two freeze windows are compared for overlap, and a recurring one is
    /// searched for its next occurrence.
    pub const HORIZON_DAYS: i64 = 2 * 366;

    /// A freeze window's rule, parsed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FreezeRule {
        /// From one instant to another.
        Once {
            /// The start.
            start: DateTime<Utc>,
            /// The end.
            end: DateTime<Utc>,
        },
        /// Every week, from a weekday and time to a weekday and time, in a time zone.
        Weekly {
            /// The weekday it begins on.
            start_day: Weekday,
            /// The time it begins at.
            start_time: NaiveTime,
            /// The weekday it ends on.
            end_day: Weekday,
            /// The time it ends at.
            end_time: NaiveTime,
            /// The time zone.
            tz: Tz,
            /// The last day it may begin on.
            until: Option<NaiveDate>,
        },
        /// Every year, whole days from one month and day to another (included).
        Yearly {
            /// The first day, (month, day).
            start: (u32, u32),
            /// The last day, (month, day).
            end: (u32, u32),
            /// The time zone.
            tz: Tz,
            /// The last day it may begin on.
            until: Option<NaiveDate>,
        },
    }

    /// A freeze window's stored form: its reason, recurrence, start, end, time zone and
    /// `until`, as [`CreateFreezeRequest`] names them.
    #[derive(Debug)]
    pub struct StoredFreeze<'a> {
        /// How it recurs.
        pub recurrence: Recurrence,
        /// Its start.
        pub start: &'a str,
        /// Its end.
        pub end: &'a str,
        /// Its time zone.
        pub time_zone: &'a str,
        /// Its `until`.
        pub until: Option<&'a str>,
    }

    fn weekday(s: &str) -> Option<Weekday> {
        let s = s.to_ascii_lowercase();
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .find(|d| s == full_name(*d) || s == full_name(*d)[..3])
    }

    fn full_name(d: Weekday) -> &'static str {
        match d {
            Weekday::Mon => "monday",
            Weekday::Tue => "tuesday",
            Weekday::Wed => "wednesday",
            Weekday::Thu => "thursday",
            Weekday::Fri => "friday",
            Weekday::Sat => "saturday",
            Weekday::Sun => "sunday",
        }
    }

    fn day_and_time(field: &'static str, s: &str) -> Result<(Weekday, NaiveTime), TextError> {
        let bad = || {
            TextError::new(
                field,
                "a weekly window's time is a weekday and a time, e.g. `fri 18:00`",
            )
        };
        let (day, time) = s.trim().split_once(' ').ok_or_else(bad)?;
        let day = weekday(day.trim()).ok_or_else(bad)?;
        let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
        Ok((day, time))
    }

    fn month_day(field: &'static str, s: &str) -> Result<(u32, u32), TextError> {
        let bad = || TextError::new(field, "a yearly window's day is `MM-DD`, e.g. `12-20`");
        let (m, d) = s.trim().split_once('-').ok_or_else(bad)?;
        let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // A leap year has every day there is.
        if NaiveDate::from_ymd_opt(2024, m, d).is_none() {
            return Err(TextError::new(
                field,
                format!("{m:02}-{d:02} is not a day of the year"),
            ));
        }
        Ok((m, d))
    }

    fn instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, TextError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                TextError::new(
                    field,
                    "a one-off window's time is RFC 3339, e.g. `2026-12-20T00:00:00Z`",
                )
            })
    }

    /// Parses an IANA time zone name.
    pub fn time_zone(field: &'static str, s: &str) -> Result<Tz, TextError> {
        s.trim().parse::<Tz>().map_err(|_| {
            TextError::new(
                field,
                format!(
                    "unknown time zone `{}`: give an IANA name such as `Europe/Berlin` or `UTC`",
                    s.chars().take(64).collect::<String>()
                ),
            )
        })
    }

    fn until(s: Option<&str>) -> Result<Option<NaiveDate>, TextError> {
        s.map(|s| {
            crate::timestamp::parse_date(s.trim())
                .ok_or_else(|| TextError::new("until", "a date, `YYYY-MM-DD`"))
        })
        .transpose()
    }

    impl FreezeRule {
        /// Parses a stored or requested freeze window.
        pub fn parse(f: &StoredFreeze<'_>) -> Result<FreezeRule, TextError> {
            let tz = time_zone("time_zone", f.time_zone)?;
            Ok(match f.recurrence {
                Recurrence::Once => {
                    if f.until.is_some() {
                        return Err(TextError::new(
                            "until",
                            "only a recurring window has an `until`",
                        ));
                    }
                    let (start, end) = (instant("start", f.start)?, instant("end", f.end)?);
                    if end <= start {
                        return Err(TextError::new("end", "the window must end after it starts"));
                    }
                    FreezeRule::Once { start, end }
                }
                Recurrence::Weekly => {
                    let (start_day, start_time) = day_and_time("start", f.start)?;
                    let (end_day, end_time) = day_and_time("end", f.end)?;
                    if (start_day, start_time) == (end_day, end_time) {
                        return Err(TextError::new(
                            "end",
                            "the window must end after it starts (a weekly window is shorter \
                             than a week)",
                        ));
                    }
                    FreezeRule::Weekly {
                        start_day,
                        start_time,
                        end_day,
                        end_time,
                        tz,
                        until: until(f.until)?,
                    }
                }
                Recurrence::Yearly => FreezeRule::Yearly {
                    start: month_day("start", f.start)?,
                    end: month_day("end", f.end)?,
                    tz,
                    until: until(f.until)?,
                },
            })
        }

        /// The local time `t` in `tz`; a time a clock change skips is taken an hour later.
        fn local(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
            tz.from_local_datetime(&t)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
                .map_or_else(|| t.and_utc(), |l| l.with_timezone(&Utc))
        }

        /// Every occurrence that meets `[from, to)`, by start.
        pub fn occurrences(
            &self,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
            let mut out = Vec::new();
            // Far from today chrono's date arithmetic overflows: the calendar reasons about
            // 1970 to 9999 only.
            let floor = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or(from);
            let ceiling = NaiveDate::from_ymd_opt(9999, 1, 1)
                .map_or(to, |d| d.and_time(NaiveTime::MIN).and_utc());
            let (from, to) = (from.clamp(floor, ceiling), to.clamp(floor, ceiling));
            if to <= from {
                return out;
            }
            match *self {
                FreezeRule::Once { start, end } => {
                    if start < to && from < end {
                        out.push((start, end));
                    }
                }
                FreezeRule::Weekly {
                    start_day,
                    start_time,
                    end_day,
                    end_time,
                    tz,
                    until,
                } => {
                    let mut days = i64::from(end_day.num_days_from_monday())
                        - i64::from(start_day.num_days_from_monday());
                    if days < 0 || (days == 0 && end_time <= start_time) {
                        days += 7;
                    }
                    // Every local date that could begin an occurrence meeting the period.
                    let first = from.with_timezone(&tz).date_naive() - Duration::days(8);
                    let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
                    let mut date = first;
                    while date <= last {
                        if date.weekday() == start_day && until.is_none_or(|u| date <= u) {
                            let s = Self::local(tz, date.and_time(start_time));
                            let e =
                                Self::local(tz, (date + Duration::days(days)).and_time(end_time));
                            if s < e && s < to && from < e {
                                out.push((s, e));
                            }
                        }
                        date += Duration::days(1);
                    }
                }
                FreezeRule::Yearly {
                    start,
                    end,
                    tz,
                    until,
                } => {
                    let first = from.with_timezone(&tz).year() - 1;
                    let last = to.with_timezone(&tz).year();
                    for year in first..=last {
                        // 02-29 begins only in leap years.
                        let Some(s_date) = NaiveDate::from_ymd_opt(year, start.0, start.1) else {
                            continue;
                        };
                        if until.is_some_and(|u| s_date > u) {
                            continue;
                        }
                        let end_year = if end >= start { year } else { year + 1 };
                        // An end on 02-29 in a common year ends with February.
                        let e_date = NaiveDate::from_ymd_opt(end_year, end.0, end.1)
                            .or_else(|| NaiveDate::from_ymd_opt(end_year, 2, 28));
                        let Some(e_date) = e_date else { continue };
                        let s = Self::local(tz, s_date.and_time(NaiveTime::MIN));
                        let e =
                            Self::local(tz, (e_date + Duration::days(1)).and_time(NaiveTime::MIN));
                        if s < e && s < to && from < e {
                            out.push((s, e));
                        }
                    }
                }
            }
            out
        }

        /// The occurrence in force at `now`, or the next within [`HORIZON_DAYS`].
        pub fn next(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
            self.occurrences(now, now + Duration::days(HORIZON_DAYS))
                .into_iter()
                .next()
        }
    }

    /// A freeze window to make, checked: every field, that it occurs at all from `now`, and
    /// that it overlaps none of the environment's other windows (`others`: id, reason, rule)
    /// over the next [`HORIZON_DAYS`].
    pub fn check_freeze(
        req: &CreateFreezeRequest,
        now: DateTime<Utc>,
        others: &[(String, String, FreezeRule)],
    ) -> Result<(String, FreezeRule), TextError> {
        let reason = Note::parse_required("reason", &req.reason)?.into_string();
        let rule = FreezeRule::parse(&StoredFreeze {
            recurrence: req.recurrence,
            start: &req.start,
            end: &req.end,
            time_zone: req.time_zone.as_deref().unwrap_or("UTC"),
            until: req.until.as_deref(),
        })?;
        let horizon = now + Duration::days(HORIZON_DAYS);
        let mine = match &rule {
            // A one-off window far ahead still occurs: only one that is over never does.
            FreezeRule::Once { start, end } if *end > now => vec![(*start, *end)],
            _ => rule.occurrences(now, horizon),
        };
        if let FreezeRule::Once { start, end } = &rule
            && !(super::sane(*start) && super::sane(*end))
        {
            return Err(TextError::new(
                "start",
                "must fall between the years 1970 and 9999",
            ));
        }
        if mine.is_empty() {
            return Err(match req.recurrence {
                Recurrence::Once => TextError::new("end", "the window is over already"),
                Recurrence::Weekly | Recurrence::Yearly => TextError::new(
                    "until",
                    "the window never occurs: its `until` comes before its first occurrence",
                ),
            });
        }
        for (id, other_reason, other) in others {
            for (s, e) in other.occurrences(now, horizon) {
                if let Some((ms, _)) = mine.iter().find(|(ms, me)| *ms < e && s < *me) {
                    return Err(TextError::new(
                        "start",
                        format!(
                            "the window overlaps the freeze “{other_reason}” ({id}) on {}",
                            ms.max(&s).format("%Y-%m-%d %H:%M UTC")
                        ),
                    ));
                }
            }
        }
        Ok((reason, rule))
    }

    /// Every occurrence of a set of freeze windows (id, reason, rule) that meets
    /// `[from, to)`, by start.
    pub fn freeze_occurrences(
        freezes: &[(String, String, FreezeRule)],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<FreezeOccurrence> {
        let mut out: Vec<FreezeOccurrence> = freezes
            .iter()
            .flat_map(|(id, reason, rule)| {
                rule.occurrences(from, to)
                    .into_iter()
                    .map(|(starts_at, ends_at)| FreezeOccurrence {
                        freeze_id: id.clone(),
                        reason: reason.clone(),
                        starts_at,
                        ends_at,
                    })
            })
            .collect();
        out.sort_by_key(|o| o.starts_at);
        out
    }

    /// The release calendar as an iCalendar feed (RFC 5545): one `VEVENT` per entry, in UTC,
    /// each with a stable `UID` so a subscribed calendar updates rather than duplicates, and
    /// a link to the run when `link` gives one.
    pub fn ics(
        name: &str,
        entries: &[CalendarEntry],
        now: DateTime<Utc>,
        link: impl Fn(&CalendarEntry) -> Option<String>,
    ) -> String {
        let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        let mut lines = vec![
            "BEGIN:VCALENDAR".to_owned(),
            "VERSION:2.0".to_owned(),
            "PRODID:-//Shipshape//Release calendar//EN".to_owned(),
            "CALSCALE:GREGORIAN".to_owned(),
            "METHOD:PUBLISH".to_owned(),
            format!("X-WR-CALNAME:{}", escape(name)),
            "REFRESH-INTERVAL;VALUE=DURATION:PT15M".to_owned(),
            "X-PUBLISHED-TTL:PT15M".to_owned(),
        ];
        for e in entries {
            // An open-ended entry shows for a day (a lock until someone unlocks it, a run
            // without a window end for an hour).
            let end = e.ends_at.unwrap_or_else(|| match e.kind {
                CalendarKind::Lock => e.starts_at.max(now) + Duration::days(1),
                CalendarKind::Run | CalendarKind::Freeze => e.starts_at + Duration::hours(1),
            });
            lines.push("BEGIN:VEVENT".to_owned());
            lines.push(format!(
                "UID:{}-{}-{}@shipshape",
                e.kind.as_str(),
                e.id,
                stamp(e.starts_at)
            ));
            lines.push(format!("DTSTAMP:{}", stamp(now)));
            lines.push(format!("DTSTART:{}", stamp(e.starts_at)));
            lines.push(format!("DTEND:{}", stamp(end)));
            lines.push(format!("SUMMARY:{}", escape(&e.title)));
            lines.push(format!(
                "CATEGORIES:{}",
                e.kind.as_str().to_ascii_uppercase()
            ));
            lines.push(format!("LOCATION:{}", escape(&e.environment)));
            if e.kind != CalendarKind::Run {
                lines.push("TRANSP:OPAQUE".to_owned());
            }
            if let Some(url) = link(e) {
                // A URI value, not TEXT: nothing to escape, but no line break may pass.
                lines.push(format!("URL:{}", url.replace(['\r', '\n'], "")));
            }
            lines.push("END:VEVENT".to_owned());
        }
        lines.push("END:VCALENDAR".to_owned());
        let mut out = String::new();
        for line in lines {
            fold(&line, &mut out);
        }
        out
    }

    /// Escapes a TEXT value (RFC 5545 §3.3.11).
    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                ';' => out.push_str("\\;"),
                ',' => out.push_str("\\,"),
                '\n' => out.push_str("\\n"),
                '\r' => {}
                c => out.push(c),
            }
        }
        out
    }

    /// Writes a content line folded at 75 octets, never inside a character (RFC 5545 §3.1).
    fn fold(line: &str, out: &mut String) {
        let mut width = 0;
        for c in line.chars() {
            if width + c.len_utf8() > 75 {
                out.push_str("\r\n ");
                width = 1;
            }
            out.push(c);
            width += c.len_utf8();
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
#[cfg(feature = "tz")]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn req(recurrence: Recurrence, start: &str, end: &str, tz: &str) -> CreateFreezeRequest {
        CreateFreezeRequest {
            reason: "Exam period".into(),
            recurrence,
            start: start.into(),
            end: end.into(),
            time_zone: Some(tz.into()),
            until: None,
        }
    }

    #[test]
    fn a_weekly_window_wraps_the_weekend_in_its_time_zone() {
        let now = at("2026-12-01T00:00:00Z"); // a Tuesday
        let (_, rule) = check_freeze(
            &req(
                Recurrence::Weekly,
                "fri 18:00",
                "mon 08:00",
                "Europe/Berlin",
            ),
            now,
            &[],
        )
        .unwrap();
        let (s, e) = rule.next(now).unwrap();
        assert_eq!(s, at("2026-12-04T17:00:00Z"));
        assert_eq!(e, at("2026-12-07T07:00:00Z"));
        // In summer Berlin is UTC+2.
        let (s, _) = rule.next(at("2027-07-01T00:00:00Z")).unwrap();
        assert_eq!(s, at("2027-07-02T16:00:00Z"));
        // In force over the weekend.
        let (s, _) = rule.next(at("2026-12-05T12:00:00Z")).unwrap();
        assert_eq!(s, at("2026-12-04T17:00:00Z"));
    }

    #[test]
    fn a_yearly_date_range_crosses_the_new_year_and_includes_its_last_day() {
        let now = at("2026-06-01T00:00:00Z");
        let (_, rule) =
            check_freeze(&req(Recurrence::Yearly, "12-20", "01-03", "UTC"), now, &[]).unwrap();
        assert_eq!(
            rule.next(now),
            Some((at("2026-12-20T00:00:00Z"), at("2027-01-04T00:00:00Z")))
        );
        assert_eq!(
            rule.next(at("2027-01-02T10:00:00Z")),
            Some((at("2026-12-20T00:00:00Z"), at("2027-01-04T00:00:00Z")))
        );
    }

    #[test]
    fn bad_windows_are_refused_naming_the_field() {
        let now = at("2026-12-01T00:00:00Z");
        let field = |r: CreateFreezeRequest| check_freeze(&r, now, &[]).unwrap_err().field;
        assert_eq!(
            field(req(
                Recurrence::Once,
                "2026-12-10T00:00:00Z",
                "2026-12-09T00:00:00Z",
                "UTC"
            )),
            "end"
        );
        assert_eq!(
            field(req(
                Recurrence::Weekly,
                "fri 18:00",
                "mon 08:00",
                "Mars/Olympus"
            )),
            "time_zone"
        );
        assert_eq!(
            field(req(Recurrence::Yearly, "02-30", "03-02", "UTC")),
            "start"
        );
        assert_eq!(
            field(req(Recurrence::Weekly, "fri 18:00", "fri 18:00", "UTC")),
            "end"
        );
        assert_eq!(
            field(req(Recurrence::Weekly, "someday", "mon 08:00", "UTC")),
            "start"
        );
        let mut never = req(Recurrence::Yearly, "12-20", "12-24", "UTC");
        never.until = Some("2026-12-19".into());
        assert_eq!(field(never), "until");
        // 02-29 with an until before the next leap year never occurs.
        let mut leap = req(Recurrence::Yearly, "02-29", "02-29", "UTC");
        leap.until = Some("2027-12-31".into());
        assert_eq!(field(leap.clone()), "until");
        leap.until = Some("2028-12-31".into());
        assert!(check_freeze(&leap, now, &[]).is_ok());
        assert_eq!(
            field(req(
                Recurrence::Once,
                "2026-11-01T00:00:00Z",
                "2026-11-02T00:00:00Z",
                "UTC"
            )),
            "end"
        );
    }

    #[test]
    fn overlapping_windows_are_refused_and_adjacent_ones_kept() {
        let now = at("2026-12-01T00:00:00Z");
        let (_, weekend) = check_freeze(
            &req(Recurrence::Weekly, "fri 18:00", "mon 08:00", "UTC"),
            now,
            &[],
        )
        .unwrap();
        let others = vec![("f1".to_owned(), "Weekend".to_owned(), weekend)];
        let e = check_freeze(
            &req(Recurrence::Yearly, "12-24", "12-26", "UTC"),
            now,
            &others,
        )
        .unwrap_err();
        assert_eq!(e.field, "start");
        assert!(e.message.contains("Weekend"), "{}", e.message);
        // Monday 08:00 to Friday 18:00 touches but does not overlap.
        assert!(
            check_freeze(
                &req(Recurrence::Weekly, "mon 08:00", "fri 18:00", "UTC"),
                now,
                &others
            )
            .is_ok()
        );
    }

    #[test]
    fn a_clock_change_inside_a_window_keeps_its_local_times() {
        // Europe/Berlin springs forward on 2027-03-28 at 02:00.
        let (_, rule) = check_freeze(
            &req(
                Recurrence::Weekly,
                "sat 22:00",
                "sun 06:00",
                "Europe/Berlin",
            ),
            at("2027-03-20T00:00:00Z"),
            &[],
        )
        .unwrap();
        let (s, e) = rule.next(at("2027-03-27T00:00:00Z")).unwrap();
        assert_eq!(s, at("2027-03-27T21:00:00Z"));
        assert_eq!(e, at("2027-03-28T04:00:00Z"));
        // A start inside the skipped hour is taken an hour later.
        let skipped = FreezeRule::Weekly {
            start_day: chrono::Weekday::Sun,
            start_time: chrono::NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end_day: chrono::Weekday::Sun,
            end_time: chrono::NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
            tz: chrono_tz::Europe::Berlin,
            until: None,
        };
        let (s, _) = skipped.next(at("2027-03-27T00:00:00Z")).unwrap();
        assert_eq!(
            s,
            chrono_tz::Europe::Berlin
                .with_ymd_and_hms(2027, 3, 28, 3, 30, 0)
                .unwrap()
        );
    }

    #[test]
    fn a_window_a_clock_change_inverts_is_skipped_and_far_dates_do_not_overflow() {
        // 02:30 to 03:00 on the night Berlin springs forward: 02:30 does not exist (taken as
        // 03:30), so that week's window would end before it starts.
        let (_, rule) = check_freeze(
            &req(
                Recurrence::Weekly,
                "sun 02:30",
                "sun 03:00",
                "Europe/Berlin",
            ),
            at("2027-03-20T00:00:00Z"),
            &[],
        )
        .unwrap();
        let (s, e) = rule.next(at("2027-03-27T00:00:00Z")).unwrap();
        assert!(s < e);
        assert_eq!(s, at("2027-04-04T00:30:00Z"));
        let far = DateTime::<Utc>::MAX_UTC;
        let early = DateTime::<Utc>::MIN_UTC;
        assert!(rule.occurrences(early, far).len() > 1000);
        assert!(check_period(at("2026-12-01T00:00:00Z"), far).is_err_and(|e| e.field == "to"));
        assert!(check_period(early, at("2026-12-01T00:00:00Z")).is_err_and(|e| e.field == "from"));
        let warnings = schedule_warnings(far, None, &[], None);
        assert!(warnings.is_empty());
    }

    #[test]
    fn locks_hold_until_unlocked_or_their_time_passes() {
        let now = at("2026-12-01T12:00:00Z");
        let mut lock = EnvironmentLock {
            id: "l".into(),
            environment: "production".into(),
            reason: "migration".into(),
            locked_by: "ana".into(),
            locked_at: at("2026-12-01T10:00:00Z"),
            until: Some(at("2026-12-01T13:00:00Z")),
            run_id: None,
            unlocked_by: None,
            unlocked_at: None,
            unlock_note: None,
        };
        assert!(lock.holds(now));
        assert!(!lock.holds(at("2026-12-01T13:00:00Z")));
        lock.until = None;
        assert!(lock.holds(at("2030-01-01T00:00:00Z")));
        lock.unlocked_at = Some(now);
        assert!(!lock.holds(now));
        assert!(
            check_lock(
                &LockEnvironmentRequest {
                    reason: "x".into(),
                    until: Some(now)
                },
                now
            )
            .is_err_and(|e| e.field == "until")
        );
        assert!(
            check_lock(
                &LockEnvironmentRequest {
                    reason: " ".into(),
                    until: None
                },
                now
            )
            .is_err_and(|e| e.field == "reason")
        );
    }

    #[test]
    fn the_promotion_order_has_no_cycle_and_names_known_environments() {
        let known = vec![
            ("dev".to_owned(), None),
            ("staging".to_owned(), Some("dev".to_owned())),
            ("production".to_owned(), Some("staging".to_owned())),
        ];
        let put = |from: &str, requires| PutEnvironmentRequest {
            promotes_from: Some(Some(from.into())),
            requires_promotion: Some(requires),
            ..Default::default()
        };
        assert!(
            put("staging", true)
                .validated("production", &known, None)
                .is_ok()
        );
        assert_eq!(
            put("production", false)
                .validated("dev", &known, None)
                .unwrap_err()
                .field,
            "promotes_from"
        );
        assert_eq!(
            put("qa", false)
                .validated("production", &known, None)
                .unwrap_err()
                .field,
            "promotes_from"
        );
        assert_eq!(
            put("dev", false)
                .validated("dev", &known, None)
                .unwrap_err()
                .field,
            "promotes_from"
        );
        let lonely = PutEnvironmentRequest {
            requires_promotion: Some(true),
            ..Default::default()
        };
        assert_eq!(
            lonely
                .validated("production", &known, None)
                .unwrap_err()
                .field,
            "requires_promotion"
        );
        // What a request leaves out keeps its value; `null` clears.
        let stored = put("staging", true)
            .validated("production", &known, None)
            .unwrap();
        let only_url = PutEnvironmentRequest {
            base_url: Some(Some("https://edulibra.example".into())),
            ..Default::default()
        };
        let kept = only_url
            .validated("production", &known, Some(&stored))
            .unwrap();
        assert_eq!(kept.promotes_from.as_deref(), Some("staging"));
        assert!(kept.requires_promotion);
        let cleared = PutEnvironmentRequest {
            promotes_from: Some(None),
            requires_promotion: Some(false),
            ..Default::default()
        };
        assert_eq!(
            cleared
                .validated("production", &known, Some(&kept))
                .unwrap()
                .promotes_from,
            None
        );
    }

    #[test]
    fn contacts_are_checked_and_ordered_by_level() {
        let contact = |name: &str, level| EscalationContact {
            name: name.into(),
            role: "On-call".into(),
            reach: "+49 30 1234".into(),
            level,
            hours: Some("24/7".into()),
        };
        let put = PutEnvironmentRequest {
            contacts: Some(vec![contact("B", 2), contact("A", 1)]),
            ..Default::default()
        };
        let spec = put.validated("production", &[], None).unwrap();
        assert_eq!(spec.contacts[0].name, "A");
        let bad = PutEnvironmentRequest {
            contacts: Some(vec![contact("C", 0)]),
            ..Default::default()
        };
        assert_eq!(
            bad.validated("production", &[], None).unwrap_err().field,
            "contacts"
        );
    }

    #[test]
    fn the_ics_feed_folds_long_lines_and_escapes_text() {
        let entry = CalendarEntry {
            kind: CalendarKind::Freeze,
            id: "f1".into(),
            environment: "production".into(),
            title: format!("Freeze: exams; no deploys, {}", "é".repeat(80)),
            starts_at: at("2026-12-20T00:00:00Z"),
            ends_at: Some(at("2027-01-04T00:00:00Z")),
            status: None,
        };
        let ics = ics("Releases", &[entry], at("2026-12-01T00:00:00Z"), |_| None);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(ics.contains("SUMMARY:Freeze: exams\\; no deploys\\, "));
        assert!(ics.lines().all(|l| l.trim_end_matches('\r').len() <= 75));
        assert!(ics.contains("DTSTART:20261220T000000Z\r\n"));
    }
}
