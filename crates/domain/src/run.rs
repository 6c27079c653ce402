//! The run status machine and its gates.
//!
//! ```text
//! planned ─start→ preparing ─advance→ deploying ─advance→ verifying ─complete→ completed
//!    │               │  (gate deploy +       │  (gate verify)      │  (gate complete +
//!    │               │   decision "go")      │                     │   decision "go")
//!    └────abort──────┴──────────→ aborted    └─ decision "rollback" ┴─→ rolling_back ─finish_rollback→ rolled_back
//! completed | rolled_back | aborted ─close→ closed (gate close)
//! ```
//!
//! Each action is one method on [`RunStatus`] with an exhaustive `match`; [`plan_transition`]
//! adds the gates, which need the run's items and decisions ([`RunFacts`]). A refused gate
//! reports *every* blocker, never only the first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::Outcome;
use crate::item::ItemStatus;
use crate::template::{Applicability, DecisionStage, Gate};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not started.
    Planned,
    /// Preparation under way; the Go/No-Go decision is taken here.
    Preparing,
    /// The deployment is under way.
    Deploying,
    /// Deployed; verifying before completion.
    Verifying,
    /// Deployed and verified (outcome).
    Completed,
    /// A rollback was decided and is under way.
    RollingBack,
    /// The rollback is finished (outcome).
    RolledBack,
    /// Abandoned before deploying (outcome).
    Aborted,
}

/// A request to move a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransitionAction {
    /// `planned → preparing`.
    Start,
    /// `preparing → deploying` (gate deploy and a "go") or `deploying → verifying` (gate verify).
    Advance,
    /// `verifying → completed` (gate complete and a "go").
    Complete,
    /// `planned | preparing → aborted`.
    Abort,
    /// `rolling_back → rolled_back`.
    FinishRollback,
    /// Closes a finished run (gate close).
    Close,
}

impl TransitionAction {
    /// Every action.
    pub const ALL: [TransitionAction; 6] = [
        TransitionAction::Start,
        TransitionAction::Advance,
        TransitionAction::Complete,
        TransitionAction::Abort,
        TransitionAction::FinishRollback,
        TransitionAction::Close,
    ];

    /// The wire spelling.
    /// Whether break-glass may force this transition past unmet gates. Closing is where
    /// overrides get reviewed; forcing it would skip that very review.
    pub fn can_be_forced(self) -> bool {
        match self {
            TransitionAction::Start
            | TransitionAction::Advance
            | TransitionAction::Complete
            | TransitionAction::Abort
            | TransitionAction::FinishRollback => true,
            TransitionAction::Close => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransitionAction::Start => "start",
            TransitionAction::Advance => "advance",
            TransitionAction::Complete => "complete",
            TransitionAction::Abort => "abort",
            TransitionAction::FinishRollback => "finish_rollback",
            TransitionAction::Close => "close",
        }
    }
}

/// Why a status change is not possible from where the run stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a run that is {}", action.as_str(), from.as_str())]
pub struct InvalidTransition {
    /// Where the run stands.
    pub from: RunStatus,
    /// What was asked.
    pub action: TransitionAction,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Planned,
        RunStatus::Preparing,
        RunStatus::Deploying,
        RunStatus::Verifying,
        RunStatus::Completed,
        RunStatus::RollingBack,
        RunStatus::RolledBack,
        RunStatus::Aborted,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Planned => "planned",
            RunStatus::Preparing => "preparing",
            RunStatus::Deploying => "deploying",
            RunStatus::Verifying => "verifying",
            RunStatus::Completed => "completed",
            RunStatus::RollingBack => "rolling_back",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Aborted => "aborted",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Live runs hold their (product, environment): a second one cannot start.
    pub fn is_live(self) -> bool {
        match self {
            RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::RollingBack => true,
            RunStatus::Planned
            | RunStatus::Completed
            | RunStatus::RolledBack
            | RunStatus::Aborted => false,
        }
    }

    /// An outcome: the run is over and may only be closed.
    pub fn is_terminal(self) -> bool {
        match self {
            RunStatus::Completed | RunStatus::RolledBack | RunStatus::Aborted => true,
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::RollingBack => false,
        }
    }

    /// Whether the run has rolled back, which makes rollback-only items applicable.
    pub fn has_rolled_back(self) -> bool {
        match self {
            RunStatus::RollingBack | RunStatus::RolledBack => true,
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::Completed
            | RunStatus::Aborted => false,
        }
    }

    /// The decision stage a run in this status is at, if any.
    pub fn decision_stage(self) -> Option<DecisionStage> {
        match self {
            RunStatus::Preparing => Some(DecisionStage::Preparing),
            RunStatus::Deploying => Some(DecisionStage::Deploying),
            RunStatus::Verifying => Some(DecisionStage::Verifying),
            RunStatus::Planned
            | RunStatus::Completed
            | RunStatus::RollingBack
            | RunStatus::RolledBack
            | RunStatus::Aborted => None,
        }
    }

    fn refuse(self, action: TransitionAction) -> Result<RunStatus, InvalidTransition> {
        Err(InvalidTransition { from: self, action })
    }

    /// `planned → preparing`.
    pub fn start(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Planned => Ok(RunStatus::Preparing),
            RunStatus::Preparing => Ok(self),
            RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::Completed
            | RunStatus::RollingBack
            | RunStatus::RolledBack
            | RunStatus::Aborted => self.refuse(TransitionAction::Start),
        }
    }

    /// `preparing → deploying → verifying`. Not re-entrant: its target depends on the source.
    pub fn advance(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Preparing => Ok(RunStatus::Deploying),
            RunStatus::Deploying => Ok(RunStatus::Verifying),
            RunStatus::Planned
            | RunStatus::Verifying
            | RunStatus::Completed
            | RunStatus::RollingBack
            | RunStatus::RolledBack
            | RunStatus::Aborted => self.refuse(TransitionAction::Advance),
        }
    }

    /// `verifying → completed`.
    pub fn complete(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Verifying => Ok(RunStatus::Completed),
            RunStatus::Completed => Ok(self),
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::RollingBack
            | RunStatus::RolledBack
            | RunStatus::Aborted => self.refuse(TransitionAction::Complete),
        }
    }

    /// `planned | preparing → aborted`. Once deploying, the way out is a rollback decision.
    pub fn abort(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Planned | RunStatus::Preparing => Ok(RunStatus::Aborted),
            RunStatus::Aborted => Ok(self),
            RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::Completed
            | RunStatus::RollingBack
            | RunStatus::RolledBack => self.refuse(TransitionAction::Abort),
        }
    }

    /// `deploying | verifying → rolling_back`, only through a "rollback" decision.
    pub fn roll_back(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Deploying | RunStatus::Verifying => Ok(RunStatus::RollingBack),
            RunStatus::RollingBack => Ok(self),
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Completed
            | RunStatus::RolledBack
            | RunStatus::Aborted => Err(InvalidTransition {
                from: self,
                // A rollback is not an action of its own on the wire; it is reported as the
                // advance it replaces.
                action: TransitionAction::Advance,
            }),
        }
    }

    /// `rolling_back → rolled_back`.
    pub fn finish_rollback(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::RollingBack => Ok(RunStatus::RolledBack),
            RunStatus::RolledBack => Ok(self),
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::Completed
            | RunStatus::Aborted => self.refuse(TransitionAction::FinishRollback),
        }
    }

    /// Closing keeps the outcome; only finished runs can be closed.
    pub fn close(self) -> Result<RunStatus, InvalidTransition> {
        match self {
            RunStatus::Completed | RunStatus::RolledBack | RunStatus::Aborted => Ok(self),
            RunStatus::Planned
            | RunStatus::Preparing
            | RunStatus::Deploying
            | RunStatus::Verifying
            | RunStatus::RollingBack => self.refuse(TransitionAction::Close),
        }
    }

    /// Applies one action to the status alone (no gates).
    pub fn apply(self, action: TransitionAction) -> Result<RunStatus, InvalidTransition> {
        match action {
            TransitionAction::Start => self.start(),
            TransitionAction::Advance => self.advance(),
            TransitionAction::Complete => self.complete(),
            TransitionAction::Abort => self.abort(),
            TransitionAction::FinishRollback => self.finish_rollback(),
            TransitionAction::Close => self.close(),
        }
    }
}

/// An item as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFacts {
    /// The item's id.
    pub id: String,
    /// Its reference in the checklist, e.g. `2.2.3`.
    pub reference: String,
    /// Its wording.
    pub title: String,
    /// The transition it gates.
    pub gate: Gate,
    /// When it applies.
    pub applies: Applicability,
    /// Whether the gate waits for it.
    pub required: bool,
    /// Its current status.
    pub status: ItemStatus,
    /// For a probe item, its latest result.
    pub probe: Option<ProbeFacts>,
}

/// A probe item's latest result, as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFacts {
    /// How long a passing result counts, in seconds.
    pub ttl_secs: u32,
    /// The latest result, if the check has run: when, whether it passed, and what it found.
    pub latest: Option<(DateTime<Utc>, bool, String)>,
}

impl ProbeFacts {
    /// Why the item does not count as done now, if it does not: failing, never checked, or
    /// passed too long ago.
    pub fn problem(&self, now: DateTime<Utc>) -> Option<String> {
        match &self.latest {
            Some((at, true, _)) => crate::probe::staleness(*at, self.ttl_secs, now),
            _ => self.failing(),
        }
    }

    /// Why the item does not count as done whatever its age: failing or never checked. (A
    /// gate already passed is judged so: the check is no longer repeated once its stage is
    /// over, and a later transition does not ask for it again.)
    pub fn failing(&self) -> Option<String> {
        match &self.latest {
            None => Some("not checked yet: run its check".to_owned()),
            Some((_, false, summary)) => Some(summary.clone()),
            Some((_, true, _)) => None,
        }
    }
}

/// A decision point as the gates see it: its latest decision, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointFacts {
    /// The point's key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The stage it is taken at.
    pub stage: DecisionStage,
    /// The outcome of its latest decision.
    pub latest: Option<Outcome>,
}

/// What the rules need to know about a run to decide a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// The run's status.
    pub status: RunStatus,
    /// Whether it has been closed.
    pub closed: bool,
    /// Its items.
    pub items: Vec<ItemFacts>,
    /// Its decision points with their latest outcomes.
    pub points: Vec<PointFacts>,
    /// Another live run of the same product and environment, if there is one.
    pub other_live_run: Option<String>,
    /// The time the gates are judged at (a probe result goes stale).
    pub now: DateTime<Utc>,
    /// Its issues log's issues that stop it completing (sev1 or sev2, not resolved, not
    /// accepted).
    pub blocking_issues: Vec<IssueFacts>,
    /// What its environment says against starting it or moving it into deploying: a lock, a
    /// freeze, a promotion not made (see [`crate::environment::blockers`]).
    pub environment_blockers: Vec<Blocker>,
}

/// An issue that stops its run completing, as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFacts {
    /// The issue's id.
    pub id: String,
    /// Its number in the run's log.
    pub number: i32,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: crate::records::Severity,
    /// Its status.
    pub status: crate::records::IssueStatus,
}

impl PointFacts {
    /// The decision points of a template, each with the latest outcome `latest` gives for its
    /// key.
    pub fn of_template(
        template: &crate::template::Template,
        latest: impl Fn(&str) -> Option<Outcome>,
    ) -> Vec<PointFacts> {
        template
            .decision_points()
            .iter()
            .map(|p| PointFacts {
                key: p.key.clone(),
                title: p.title.clone(),
                stage: p.stage,
                latest: latest(&p.key),
            })
            .collect()
    }
}

impl RunFacts {
    /// The facts of a new run of `template`: planned, every item pending, no decisions, no
    /// probe results, judged at `now`. Item ids are their references (`1.1.1`), as nothing is
    /// stored yet.
    pub fn planned(template: &crate::template::Template, now: DateTime<Utc>) -> RunFacts {
        RunFacts {
            status: RunStatus::Planned,
            closed: false,
            items: template
                .items()
                .map(|(p, s, i, it)| {
                    let reference = format!("{}.{}.{}", p + 1, s + 1, i + 1);
                    ItemFacts {
                        id: reference.clone(),
                        reference,
                        title: it.title.clone(),
                        gate: it.gate,
                        applies: it.applies,
                        required: it.required,
                        status: ItemStatus::Pending,
                        probe: it.probe.as_ref().map(|p| ProbeFacts {
                            ttl_secs: p.ttl_secs,
                            latest: None,
                        }),
                    }
                })
                .collect(),
            points: PointFacts::of_template(template, |_| None),
            other_live_run: None,
            now,
            blocking_issues: Vec::new(),
            environment_blockers: Vec::new(),
        }
    }
}

/// One reason a gate is not met; `kind` says which: an `item`, a `decision`, an `issue`, or
/// the environment's `lock`, `freeze` or `promotion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// A required, applicable item of the gate is neither done nor skipped.
    Item {
        /// The item's id.
        item_id: String,
        /// Its reference in the checklist, e.g. `1.2.3`.
        reference: String,
        /// Its wording.
        title: String,
        /// The gate it belongs to.
        gate: Gate,
        /// Its current status.
        status: ItemStatus,
        /// Why it blocks, when its status alone does not say: a probe item's failing or stale
        /// result ("expected 200, got 503"; "last check 20 min ago, limit 15 min").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A decision point of the current stage lacks the outcome the transition needs.
    Decision {
        /// The point's key.
        point_key: String,
        /// The point's title.
        title: String,
        /// The outcome needed to move on (always `go`).
        needed: Outcome,
        /// The latest decision's outcome, if any.
        latest: Option<Outcome>,
    },
    /// An issue of the run's issues log stops it completing: sev1 or sev2, neither resolved
    /// nor accepted by a release manager.
    Issue {
        /// The issue's id.
        issue_id: String,
        /// Its number in the run's log.
        number: i32,
        /// Its title.
        title: String,
        /// Its severity.
        severity: crate::records::Severity,
        /// Its status.
        status: crate::records::IssueStatus,
    },
    /// The run's environment is locked.
    Lock {
        /// The environment.
        environment: String,
        /// Why it is locked.
        reason: String,
        /// Who locked it (`system` after a rollback).
        locked_by: String,
        /// When the lock lifts by itself (`null`: when someone unlocks it).
        #[serde(default)]
        until: Option<DateTime<Utc>>,
    },
    /// A freeze window of the run's environment is in force.
    Freeze {
        /// The freeze window.
        freeze_id: String,
        /// The environment.
        environment: String,
        /// Why it is frozen.
        reason: String,
        /// When this occurrence of the freeze ends.
        ends_at: DateTime<Utc>,
    },
    /// The environment requires promotion, and the release has no completed run in the
    /// environment before it.
    Promotion {
        /// The environment a completed run is needed in.
        environment: String,
        /// The product.
        product: String,
        /// The release version.
        release_version: String,
    },
}

impl<'de> Deserialize<'de> for Blocker {
    /// Reads the blocker as a JSON object, then the fields its `kind` names straight from the
    /// tree: far less code than an internally tagged enum or a decoder per kind (the web app
    /// decodes blockers, and its size is budgeted).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let raw = |name: &'static str| fields.get(name).and_then(serde_json::Value::as_str);
        let text = |name: &'static str| {
            raw(name)
                .map(str::to_owned)
                .ok_or_else(|| D::Error::missing_field(name))
        };
        // A field that must hold one of a fixed set of words.
        fn word<T, E: Error>(
            value: Option<&str>,
            name: &'static str,
            parse: fn(&str) -> Option<T>,
        ) -> Result<T, E> {
            value
                .and_then(parse)
                .ok_or_else(|| E::custom(format!("`{name}` is missing or unknown")))
        }
        let time = |name: &'static str| raw(name).and_then(crate::timestamp::parse);
        match raw("kind") {
            Some("item") => Ok(Blocker::Item {
                item_id: text("item_id")?,
                reference: text("reference")?,
                title: text("title")?,
                gate: word(raw("gate"), "gate", Gate::parse)?,
                status: word(raw("status"), "status", ItemStatus::parse)?,
                reason: raw("reason").map(str::to_owned),
            }),
            Some("decision") => Ok(Blocker::Decision {
                point_key: text("point_key")?,
                title: text("title")?,
                needed: word(raw("needed"), "needed", Outcome::parse)?,
                latest: raw("latest").and_then(Outcome::parse),
            }),
            Some("issue") => Ok(Blocker::Issue {
                issue_id: text("issue_id")?,
                number: fields
                    .get("number")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| D::Error::missing_field("number"))?,
                title: text("title")?,
                severity: word(raw("severity"), "severity", crate::records::Severity::parse)?,
                status: word(raw("status"), "status", crate::records::IssueStatus::parse)?,
            }),
            Some("lock") => Ok(Blocker::Lock {
                environment: text("environment")?,
                reason: text("reason")?,
                locked_by: text("locked_by")?,
                until: time("until"),
            }),
            Some("freeze") => Ok(Blocker::Freeze {
                freeze_id: text("freeze_id")?,
                environment: text("environment")?,
                reason: text("reason")?,
                ends_at: time("ends_at").ok_or_else(|| D::Error::missing_field("ends_at"))?,
            }),
            Some("promotion") => Ok(Blocker::Promotion {
                environment: text("environment")?,
                product: text("product")?,
                release_version: text("release_version")?,
            }),
            Some(other) => Err(D::Error::unknown_variant(
                other,
                &["item", "decision", "issue", "lock", "freeze", "promotion"],
            )),
            None => Err(D::Error::missing_field("kind")),
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not possible from where the run stands.
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// The run is already closed; nothing moves it any more.
    #[error("the run is closed")]
    Closed,
    /// Gates not met; every blocker is listed.
    #[error("{} blocker(s) stand in the way of {}", blockers.len(), action.as_str())]
    Blocked {
        /// What was asked.
        action: TransitionAction,
        /// Every blocker.
        blockers: Vec<Blocker>,
    },
    /// Another run of the same product and environment is live.
    #[error("run {0} of the same product and environment is live")]
    LiveRunExists(String),
}

/// The effect of an allowed transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionPlan {
    /// Status before.
    pub from: RunStatus,
    /// Status after.
    pub to: RunStatus,
    /// Whether the run becomes closed.
    pub closes: bool,
}

impl TransitionPlan {
    /// Whether anything changes (re-entering the current state changes nothing).
    pub fn changes(&self) -> bool {
        self.from != self.to || self.closes
    }
}

/// Whether an item applies to a run in this status.
pub fn item_applies(applies: Applicability, status: RunStatus) -> bool {
    match applies {
        Applicability::Always => true,
        Applicability::AfterRollback => status.has_rolled_back(),
        // Until the outcome is known a success is still the plan, so the item counts.
        Applicability::AfterSuccess => !status.has_rolled_back() && status != RunStatus::Aborted,
    }
}

/// The gates an action must pass from a status. Moving forward checks every earlier gate
/// too, so an item reopened after its gate passed still stops the run from completing.
fn gates_for(action: TransitionAction, from: RunStatus) -> &'static [Gate] {
    match (action, from) {
        (TransitionAction::Advance, RunStatus::Preparing) => &[Gate::Deploy],
        (TransitionAction::Advance, RunStatus::Deploying) => &[Gate::Deploy, Gate::Verify],
        (TransitionAction::Complete, RunStatus::Verifying) => {
            &[Gate::Deploy, Gate::Verify, Gate::Complete]
        }
        (TransitionAction::Close, _) => &[Gate::Close],
        _ => &[],
    }
}

/// Whether leaving this stage forward needs a "go" at each of its decision points (Go/No-Go
/// and the post-deployment verification do; the deployment checkpoint does not, but a
/// "hold" there stops the run).
fn stage_needs_go(stage: DecisionStage) -> bool {
    match stage {
        DecisionStage::Preparing | DecisionStage::Verifying => true,
        DecisionStage::Deploying => false,
    }
}

/// Every blocker standing in the way of `action` for a run described by `facts`.
pub fn blockers(facts: &RunFacts, action: TransitionAction) -> Vec<Blocker> {
    let gates = gates_for(action, facts.status);
    // The gate this action passes; the ones before it were passed already.
    let own = gates.last().copied();
    let mut out: Vec<Blocker> = facts
        .items
        .iter()
        .filter(|i| gates.contains(&i.gate) && i.required && item_applies(i.applies, facts.status))
        .filter_map(|i| {
            let reason = match (&i.probe, i.status) {
                // A waived probe no longer needs its check.
                (_, ItemStatus::Skipped) => return None,
                (Some(probe), _) if Some(i.gate) == own => Some(probe.problem(facts.now)?),
                (Some(probe), _) => Some(probe.failing()?),
                (None, status) if status.is_settled() => return None,
                (None, _) => None,
            };
            Some(Blocker::Item {
                item_id: i.id.clone(),
                reference: i.reference.clone(),
                title: i.title.clone(),
                gate: i.gate,
                status: i.status,
                reason,
            })
        })
        .collect();
    let moves_forward = matches!(
        (action, facts.status),
        (
            TransitionAction::Advance,
            RunStatus::Preparing | RunStatus::Deploying
        ) | (TransitionAction::Complete, RunStatus::Verifying)
    );
    if let (true, Some(stage)) = (moves_forward, facts.status.decision_stage()) {
        for p in facts.points.iter().filter(|p| p.stage == stage) {
            let ok = if stage_needs_go(stage) {
                p.latest == Some(Outcome::Go)
            } else {
                p.latest != Some(Outcome::Hold)
            };
            if !ok {
                out.push(Blocker::Decision {
                    point_key: p.key.clone(),
                    title: p.title.clone(),
                    needed: Outcome::Go,
                    latest: p.latest,
                });
            }
        }
    }
    if (action, facts.status) == (TransitionAction::Complete, RunStatus::Verifying) {
        out.extend(facts.blocking_issues.iter().map(|i| Blocker::Issue {
            issue_id: i.id.clone(),
            number: i.number,
            title: i.title.clone(),
            severity: i.severity,
            status: i.status,
        }));
    }
    // Starting, and moving into deploying, happen in the environment: its lock, freeze and
    // promotion order stand in the way.
    if matches!(
        (action, facts.status),
        (TransitionAction::Start, RunStatus::Planned)
            | (TransitionAction::Advance, RunStatus::Preparing)
    ) {
        out.extend(facts.environment_blockers.iter().cloned());
    }
    out
}

/// Decides a transition: the status machine, then the live-run rule, then every gate.
pub fn plan_transition(
    facts: &RunFacts,
    action: TransitionAction,
) -> Result<TransitionPlan, TransitionError> {
    if facts.closed {
        return match action {
            TransitionAction::Close => Ok(TransitionPlan {
                from: facts.status,
                to: facts.status,
                closes: false,
            }),
            TransitionAction::Start
            | TransitionAction::Advance
            | TransitionAction::Complete
            | TransitionAction::Abort
            | TransitionAction::FinishRollback => Err(TransitionError::Closed),
        };
    }
    let to = facts.status.apply(action)?;
    let plan = TransitionPlan {
        from: facts.status,
        to,
        closes: action == TransitionAction::Close,
    };
    if !plan.changes() {
        return Ok(plan);
    }
    if to.is_live()
        && !facts.status.is_live()
        && let Some(other) = &facts.other_live_run
    {
        return Err(TransitionError::LiveRunExists(other.clone()));
    }
    let blockers = blockers(facts, action);
    if !blockers.is_empty() {
        return Err(TransitionError::Blocked { action, blockers });
    }
    Ok(plan)
}

/// The statuses in which a gate is the next to close: its probe items are checked on
/// schedule while the run has one of them (the stage the gate ends).
pub fn gate_stage(gate: Gate) -> &'static [RunStatus] {
    match gate {
        Gate::Deploy => &[RunStatus::Preparing],
        Gate::Verify => &[RunStatus::Deploying],
        Gate::Complete => &[RunStatus::Verifying],
        Gate::Close => &[
            RunStatus::Completed,
            RunStatus::RolledBack,
            RunStatus::Aborted,
        ],
    }
}

/// Whether an item of this gate may still change in a run of this status. Finished runs
/// stay editable only for `close` items; closed runs not at all.
pub fn item_editable(gate: Gate, status: RunStatus, closed: bool) -> bool {
    if closed {
        return false;
    }
    !status.is_terminal() || gate == Gate::Close
}

/// The transitions that lead on from where the run stands, each with whether it would
/// succeed now and, if not, why — so a client can show what blocks the next step before
/// anyone clicks.
pub fn available_transitions(facts: &RunFacts) -> Vec<crate::wire::TransitionAvailability> {
    if facts.closed {
        return Vec::new();
    }
    TransitionAction::ALL
        .into_iter()
        .filter(|a| {
            facts
                .status
                .apply(*a)
                .is_ok_and(|to| to != facts.status || *a == TransitionAction::Close)
        })
        .map(|action| match plan_transition(facts, action) {
            Ok(_) => crate::wire::TransitionAvailability {
                action,
                allowed: true,
                reason: None,
                blockers: Vec::new(),
            },
            Err(TransitionError::Blocked { blockers, .. }) => crate::wire::TransitionAvailability {
                action,
                allowed: false,
                reason: Some(format!("{} blocker(s) stand in the way", blockers.len())),
                blockers,
            },
            Err(e) => crate::wire::TransitionAvailability {
                action,
                allowed: false,
                reason: Some(e.to_string()),
                blockers: Vec::new(),
            },
        })
        .collect()
}

/// Counts items for a progress bar: applicable ones by state, and those not applicable.
pub fn progress<I>(items: I, status: RunStatus) -> crate::wire::Progress
where
    I: IntoIterator<Item = (ItemStatus, Applicability)>,
{
    let mut p = crate::wire::Progress::default();
    for (item_status, applies) in items {
        if !item_applies(applies, status) {
            p.not_applicable += 1;
            continue;
        }
        p.applicable += 1;
        match item_status {
            ItemStatus::Done => p.done += 1,
            ItemStatus::Skipped => p.skipped += 1,
            ItemStatus::Pending
            | ItemStatus::InProgress
            | ItemStatus::Blocked
            | ItemStatus::Failed => p.open += 1,
        }
    }
    p
}

/// A field the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl From<crate::text::TextError> for FieldError {
    fn from(e: crate::text::TextError) -> Self {
        FieldError {
            field: e.field,
            message: e.message,
        }
    }
}

/// A checked change to a run's own fields (see [`UpdateRunRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPatch {
    /// New release version.
    pub release_version: Option<crate::text::Label>,
    /// New window start, or clear it.
    pub window_start: Option<Option<chrono::DateTime<chrono::Utc>>>,
    /// New window end, or clear it.
    pub window_end: Option<Option<chrono::DateTime<chrono::Utc>>>,
    /// New expected downtime, or clear it.
    pub expected_downtime_minutes: Option<Option<i32>>,
    /// New commit, or clear it (checked: lowercase hexadecimal).
    pub commit_sha: Option<Option<String>>,
    /// New commit time, or clear it (the caller checks it with [`check_committed_at`]).
    pub committed_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
}

/// A commit hash as runs keep it: 4 to 64 hexadecimal digits (a short or full SHA-1 or
/// SHA-256), lowercased.
pub fn check_commit_sha(sha: &str) -> Result<String, FieldError> {
    if !(4..=64).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError {
            field: "commit_sha",
            message: "must be a commit hash: 4 to 64 hexadecimal digits".into(),
        });
    }
    Ok(sha.to_ascii_lowercase())
}

/// A commit time: not in the future (five minutes of clock skew allowed), not before 1970.
pub fn check_committed_at(
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), FieldError> {
    if at > now + chrono::Duration::minutes(5) || at.timestamp() < 0 {
        return Err(FieldError {
            field: "committed_at",
            message: "must not be in the future, nor before 1970".into(),
        });
    }
    Ok(())
}

impl crate::wire::UpdateRunRequest {
    /// The patch checked on its own, before anything is compared with the stored run (its
    /// version, its other fields).
    pub fn validated(self) -> Result<RunPatch, FieldError> {
        if self.release_version.is_none()
            && self.window_start.is_none()
            && self.window_end.is_none()
            && self.expected_downtime_minutes.is_none()
            && self.commit_sha.is_none()
            && self.committed_at.is_none()
        {
            return Err(FieldError {
                field: "release_version",
                message: "nothing to change: give at least one of release_version, \
                          window_start, window_end, expected_downtime_minutes, commit_sha, \
                          committed_at"
                    .into(),
            });
        }
        let commit_sha = match self.commit_sha {
            Some(Some(sha)) => Some(Some(check_commit_sha(&sha)?)),
            other => other,
        };

        let release_version = self
            .release_version
            .map(|v| crate::text::Label::parse("release_version", &v))
            .transpose()?;
        check_schedule(
            self.window_start.flatten(),
            self.window_end.flatten(),
            self.expected_downtime_minutes.flatten(),
        )?;
        Ok(RunPatch {
            release_version,
            window_start: self.window_start,
            window_end: self.window_end,
            expected_downtime_minutes: self.expected_downtime_minutes,
            commit_sha,
            committed_at: self.committed_at,
        })
    }
}

/// The longest expected downtime accepted, in minutes (a week).
pub const MAX_DOWNTIME_MINUTES: i32 = 7 * 24 * 60;

/// A schedule: the window must not end before it starts; downtime is 0 to a week.
pub fn check_schedule(
    window_start: Option<chrono::DateTime<chrono::Utc>>,
    window_end: Option<chrono::DateTime<chrono::Utc>>,
    expected_downtime_minutes: Option<i32>,
) -> Result<(), FieldError> {
    if let (Some(s), Some(e)) = (window_start, window_end)
        && e < s
    {
        return Err(FieldError {
            field: "window_end",
            message: "the window must not end before it starts".into(),
        });
    }
    if let Some(m) = expected_downtime_minutes
        && !(0..=MAX_DOWNTIME_MINUTES).contains(&m)
    {
        return Err(FieldError {
            field: "expected_downtime_minutes",
            message: format!("must be between 0 and {MAX_DOWNTIME_MINUTES}"),
        });
    }
    Ok(())
}

/// The title of the close item a forced transition adds to the run.
pub const OVERRIDE_REVIEW_TITLE: &str = "Review the emergency override";

/// Break-glass: decides a transition a release manager forces past unmet gates. The status
/// machine, the closed run and the live-run rule still hold; only blockers are overridden,
/// and they are returned so the override can record exactly what it skipped (empty: the
/// gates were met and this is an ordinary transition). A reason is required.
pub fn plan_forced_transition(
    facts: &RunFacts,
    action: TransitionAction,
    reason: Option<&str>,
) -> Result<(TransitionPlan, Vec<Blocker>), ForceError> {
    if reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(ForceError::ReasonRequired);
    }
    if !action.can_be_forced() {
        return Err(ForceError::NotClose);
    }
    match plan_transition(facts, action) {
        Ok(plan) => Ok((plan, Vec::new())),
        Err(TransitionError::Blocked { blockers, .. }) => {
            let to = facts.status.apply(action)?;
            Ok((
                TransitionPlan {
                    from: facts.status,
                    to,
                    closes: action == TransitionAction::Close,
                },
                blockers,
            ))
        }
        Err(other) => Err(ForceError::Transition(other)),
    }
}

/// Why a forced transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForceError {
    /// Forcing needs a reason for the record.
    #[error("forcing a transition needs a reason")]
    ReasonRequired,
    /// A run is never closed by force: its close items, override reviews among them, must be
    /// done.
    #[error("a run cannot be closed by force; finish or waive its close items")]
    NotClose,
    /// Not possible whatever the gates.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl From<InvalidTransition> for ForceError {
    fn from(e: InvalidTransition) -> Self {
        ForceError::Transition(TransitionError::Invalid(e))
    }
}

/// Why a run's own fields (schedule, release version, team) no longer change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunLocked(pub &'static str);

/// Whether a run's schedule, release version and team may still change: not once it has an
/// outcome (only its close items stay open then).
pub fn check_run_editable(status: RunStatus, closed: bool) -> Result<(), RunLocked> {
    if closed {
        return Err(RunLocked("the run is closed"));
    }
    if status.is_terminal() {
        return Err(RunLocked(
            "the run is finished; only its close items can still change",
        ));
    }
    Ok(())
}
