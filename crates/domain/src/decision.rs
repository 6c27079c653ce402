//! Decisions: go / hold / rollback / abort at a declared decision point, with a rationale
//! and each criterion's result. Decisions are append-only; a later one supersedes an
//! earlier one at the same point, it never edits it.

use serde::{Deserialize, Serialize};

use crate::item::ItemStatus;
use crate::run::{InvalidTransition, RunStatus};
use crate::template::{DecisionPointSpec, DecisionStage};
use crate::text::{TextError, TextRule};

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Proceed.
    Go,
    /// Stop here until a later decision.
    Hold,
    /// Roll the deployment back (run → `rolling_back`).
    Rollback,
    /// Abandon the run before deploying (run → `aborted`).
    Abort,
}

impl Outcome {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Go => "go",
            Outcome::Hold => "hold",
            Outcome::Rollback => "rollback",
            Outcome::Abort => "abort",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Outcome::Go,
            Outcome::Hold,
            Outcome::Rollback,
            Outcome::Abort,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// The outcomes open at a stage: nothing is deployed while preparing, so there is nothing
    /// to roll back; once deploying, the way out is a rollback, not an abort.
    pub fn allowed_at(stage: DecisionStage) -> &'static [Outcome] {
        match stage {
            DecisionStage::Preparing => &[Outcome::Go, Outcome::Hold, Outcome::Abort],
            DecisionStage::Deploying | DecisionStage::Verifying => {
                &[Outcome::Go, Outcome::Hold, Outcome::Rollback]
            }
        }
    }
}

/// How a criterion was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CriterionResult {
    /// The criterion holds.
    Met,
    /// The criterion does not hold.
    NotMet,
    /// Not assessed, or could not be.
    Unknown,
}

/// One criterion's assessment as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CriterionInput {
    /// The criterion's text, exactly as the decision point declares it.
    pub criterion: String,
    /// How it was found.
    pub result: CriterionResult,
    /// What was observed, e.g. "p95 640 ms".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
}

/// One criterion's assessment as recorded: every criterion of the point appears, those not
/// submitted as `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CriterionAssessment {
    /// The criterion's text.
    pub criterion: String,
    /// How it was found.
    pub result: CriterionResult,
    /// What was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
}

/// The longest rationale accepted.
pub const MAX_RATIONALE_LEN: usize = 10_000;
/// The longest observed value accepted.
pub const MAX_OBSERVED_LEN: usize = 500;

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// A field has a value the rules do not accept.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The run is not at the point's stage, or the outcome is not open at that stage.
    #[error("{0}")]
    WrongStage(String),
    /// The outcome would move the run where it cannot go.
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
}

/// A checked decision, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDecision {
    /// The outcome.
    pub outcome: Outcome,
    /// The rationale, trimmed.
    pub rationale: String,
    /// Every criterion of the point, in declared order.
    pub criteria: Vec<CriterionAssessment>,
    /// The run's status after the decision, when the outcome moves it.
    pub moves_run_to: Option<RunStatus>,
    /// A go with criteria not met or unknown, which the decider confirmed.
    pub unmet_confirmed: bool,
}

impl From<TextError> for DecisionError {
    fn from(e: TextError) -> Self {
        DecisionError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Checks a decision at `point` for a run in `status`. A go while any criterion is not met
/// or unknown needs `unmet_confirmed`: the decider saw which and went on, and the record
/// says so.
pub fn check_decision(
    status: RunStatus,
    closed: bool,
    point: &DecisionPointSpec,
    outcome: Outcome,
    rationale: &str,
    criteria: Vec<CriterionInput>,
    unmet_confirmed: bool,
) -> Result<CheckedDecision, DecisionError> {
    let rationale = TextRule::prose(MAX_RATIONALE_LEN).required("rationale", rationale)?;
    let mut assessed: Vec<CriterionAssessment> = point
        .criteria
        .iter()
        .map(|c| CriterionAssessment {
            criterion: c.clone(),
            result: CriterionResult::Unknown,
            observed: None,
        })
        .collect();
    let mut seen = vec![false; assessed.len()];
    for input in criteria {
        let Some(idx) = point.criteria.iter().position(|c| *c == input.criterion) else {
            return Err(DecisionError::Invalid {
                field: "criteria",
                message: format!(
                    "`{}` is not a criterion of `{}`; its criteria are: {}",
                    input.criterion,
                    point.key,
                    point.criteria.join("; ")
                ),
            });
        };
        if std::mem::replace(&mut seen[idx], true) {
            return Err(DecisionError::Invalid {
                field: "criteria",
                message: format!("`{}` is assessed twice", input.criterion),
            });
        }
        let observed = match input.observed {
            Some(o) => TextRule::prose(MAX_OBSERVED_LEN).optional("observed", &o)?,
            None => None,
        };
        assessed[idx] = CriterionAssessment {
            criterion: input.criterion,
            result: input.result,
            observed,
        };
    }
    if closed || status.decision_stage() != Some(point.stage) {
        return Err(DecisionError::WrongStage(format!(
            "`{}` is decided while the run is {}; this run is {}{}",
            point.title,
            point.stage.as_str(),
            status.as_str(),
            if closed { " and closed" } else { "" }
        )));
    }
    if !Outcome::allowed_at(point.stage).contains(&outcome) {
        return Err(DecisionError::WrongStage(format!(
            "`{}` is not an outcome while {}; choose one of: {}",
            outcome.as_str(),
            point.stage.as_str(),
            Outcome::allowed_at(point.stage)
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let unmet = go_without(
        outcome,
        assessed.iter().map(|a| (a.criterion.as_str(), a.result)),
    );
    let go_unmet = !unmet.is_empty();
    if go_unmet && !unmet_confirmed {
        return Err(DecisionError::Invalid {
            field: "unmet_confirmed",
            message: format!(
                "a go with criteria not met or unknown needs confirming ({}): send \
                 `unmet_confirmed: true` to record it anyway",
                unmet.join("; ")
            ),
        });
    }
    let moves_run_to = match outcome {
        Outcome::Go | Outcome::Hold => None,
        Outcome::Rollback => Some(status.roll_back()?),
        Outcome::Abort => Some(status.abort()?),
    };
    Ok(CheckedDecision {
        outcome,
        rationale: rationale.to_owned(),
        criteria: assessed,
        moves_run_to,
        unmet_confirmed: go_unmet,
    })
}

/// The criteria a decision of `outcome` goes on without: for a go, those not met or unknown
/// (a go with any needs its decider's confirmation, `unmet_confirmed`); none for any other
/// outcome. The web app asks for the confirmation by the same rule.
pub fn go_without<'a>(
    outcome: Outcome,
    criteria: impl IntoIterator<Item = (&'a str, CriterionResult)>,
) -> Vec<&'a str> {
    if outcome != Outcome::Go {
        return Vec::new();
    }
    criteria
        .into_iter()
        .filter(|(_, result)| *result != CriterionResult::Met)
        .map(|(criterion, _)| criterion)
        .collect()
}

/// Items named in an observed value before the rest are counted ("and 3 more").
const OPEN_ITEMS_NAMED: usize = 5;

/// How a criterion the checklist answers stands, from the applicable items it counts (each
/// reference with its status): met once every one is done or waived (skipped), not met while
/// any is still open, unknown when none counts. The observed value says how many are settled
/// and names the open ones with their status.
pub fn assess_items<'a>(
    counted: impl IntoIterator<Item = (&'a str, ItemStatus)>,
) -> (CriterionResult, String) {
    let mut total = 0usize;
    let mut open = Vec::new();
    for (reference, status) in counted {
        total += 1;
        if !matches!(status, ItemStatus::Done | ItemStatus::Skipped) {
            open.push((reference, status));
        }
    }
    if total == 0 {
        return (
            CriterionResult::Unknown,
            "no applicable item counts".to_owned(),
        );
    }
    let settled = total - open.len();
    if open.is_empty() {
        return (
            CriterionResult::Met,
            format!("{settled} of {total} done or waived"),
        );
    }
    let named: Vec<String> = open
        .iter()
        .take(OPEN_ITEMS_NAMED)
        .map(|(r, s)| format!("{r} {}", s.as_str().replace('_', " ")))
        .collect();
    let more = open.len().saturating_sub(OPEN_ITEMS_NAMED);
    let rest = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    (
        CriterionResult::NotMet,
        format!(
            "{settled} of {total} done or waived; open: {}{rest}",
            named.join(", ")
        ),
    )
}
