//! Checklist templates: parts → sections → items, plus the decision points a run must pass.
//!
//! A [`Template`] can only be obtained through validation ([`Template::try_from`] a
//! [`TemplateDraft`], or the Markdown importer in [`crate::markdown`]), so every template that
//! exists is well formed: titles are single non-empty lines, keys are unique, every section
//! has an item.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::decision::Outcome;
use crate::probe::ProbeSpec;
use crate::text::TextRule;

/// The stage transition an item must be finished before.
///
/// Where an item is listed is not when it must be done: a contingency item can gate the
/// start of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Must be done before leaving `preparing` (the start of the deployment).
    Deploy,
    /// Must be done before leaving `deploying`.
    Verify,
    /// Must be done before the run is `completed`.
    Complete,
    /// Must be done before a finished run is closed.
    Close,
}

impl Gate {
    /// Every gate, in the order a run meets them.
    pub const ALL: [Gate; 4] = [Gate::Deploy, Gate::Verify, Gate::Complete, Gate::Close];

    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Deploy => "deploy",
            Gate::Verify => "verify",
            Gate::Complete => "complete",
            Gate::Close => "close",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Gate::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// When an item applies to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Applicability {
    /// Every run.
    #[default]
    Always,
    /// Only a run that rolled back (e.g. the post-contingency review).
    AfterRollback,
    /// Only a run that did not roll back or abort: statements that are true only of a
    /// successful deployment (e.g. "successful deployment … communicated").
    AfterSuccess,
}

impl Applicability {
    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Always => "always",
            Applicability::AfterRollback => "after_rollback",
            Applicability::AfterSuccess => "after_success",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Applicability::Always,
            Applicability::AfterRollback,
            Applicability::AfterSuccess,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// How an item gets done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Someone does the work and marks it done.
    #[default]
    Manual,
    /// Done only when someone entitled to approve says so.
    Approval,
    /// The server checks it with an HTTP request; done while its latest result passed and
    /// is fresh.
    Probe,
}

impl ItemKind {
    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Manual => "manual",
            ItemKind::Approval => "approval",
            ItemKind::Probe => "probe",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [ItemKind::Manual, ItemKind::Approval, ItemKind::Probe]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The run record an item is kept through, rather than ticked by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// The run's issues log: the item links to it (it is still ticked by hand).
    Issues,
    /// The run's retrospective: publishing it completes the item, with it as evidence.
    Retrospective,
    /// The escalation contacts of the run's environment: the item links to them (it is still
    /// ticked by hand, once they are distributed).
    Contacts,
}

impl RecordKind {
    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Issues => "issues",
            RecordKind::Retrospective => "retrospective",
            RecordKind::Contacts => "contacts",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            RecordKind::Issues,
            RecordKind::Retrospective,
            RecordKind::Contacts,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The stage of a run at which a decision point is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionStage {
    /// Before the deployment starts (Go/No-Go); a `go` here is needed to advance.
    Preparing,
    /// While the deployment is under way (checkpoint; may call a rollback).
    Deploying,
    /// After the deployment, before completion; a `go` here is needed to complete.
    Verifying,
}

impl DecisionStage {
    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionStage::Preparing => "preparing",
            DecisionStage::Deploying => "deploying",
            DecisionStage::Verifying => "verifying",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            DecisionStage::Preparing,
            DecisionStage::Deploying,
            DecisionStage::Verifying,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One checklist item as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// The item's wording, one line.
    pub title: String,
    /// Optional longer guidance shown under the title (may span lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<String>,
    /// The stage transition this item must be finished before.
    pub gate: Gate,
    /// Whether the item applies to every run, only after a rollback, or only after a success.
    #[serde(default)]
    pub applies: Applicability,
    /// Whether the gate waits for this item (skipping a required item is a waiver).
    #[serde(default = "default_true")]
    pub required: bool,
    /// How the item gets done.
    #[serde(default)]
    pub kind: ItemKind,
    /// The role expected to do the item, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// For approval items, the sign-offs needed: one distinct person per listed role (e.g.
    /// `[release_manager, approver]`). Empty means one `approver`. At most 5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Role>,
    /// For probe items, the HTTP check the server makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSpec>,
    /// Whether the item is done only with evidence: at least one evidence link, or (a probe
    /// item) a passing result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_required: bool,
    /// The run record the item is kept through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordKind>,
}

impl ItemSpec {
    /// The sign-offs an approval item needs (empty for a manual item).
    pub fn approval_policy(&self) -> Vec<Role> {
        match self.kind {
            ItemKind::Manual | ItemKind::Probe => Vec::new(),
            ItemKind::Approval if self.approvers.is_empty() => vec![Role::Approver],
            ItemKind::Approval => self.approvers.clone(),
        }
    }
}

/// The most sign-offs one approval item may ask for.
pub const MAX_APPROVERS: usize = 5;

/// The most parts a template may have.
pub const MAX_PARTS: usize = 20;
/// The most sections a part may have.
pub const MAX_SECTIONS: usize = 50;
/// The most items a section may have.
pub const MAX_SECTION_ITEMS: usize = 100;
/// The most items a whole template may have: every run copies them all, and a run page shows
/// them all. (The EduLibra checklist has 33.)
pub const MAX_ITEMS: usize = 500;
/// The most decision points a template may declare.
pub const MAX_DECISION_POINTS: usize = 20;
/// The most criteria a decision point may list.
pub const MAX_CRITERIA: usize = 20;
/// The most free-text blocks before or after the checklist.
pub const MAX_PROSE_BLOCKS: usize = 50;

fn default_true() -> bool {
    true
}

/// A numbered section of a part ("1. Release Preparation").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The section heading, verbatim (numbering included).
    pub title: String,
    /// The section's items, in order (1 to 100).
    pub items: Vec<ItemSpec>,
}

/// A part of the checklist ("Pre-Deployment Checklist").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The part heading, verbatim.
    pub title: String,
    /// The part's sections, in order (1 to 50).
    pub sections: Vec<Section>,
}

/// Free text of the document outside the checklist ("Overview", "Conclusion").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProseBlock {
    /// The block's heading.
    pub heading: String,
    /// The block's text (Markdown, may span lines).
    pub body: String,
}

/// A point in a run where someone records go / hold / rollback / abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionPointSpec {
    /// Stable key within the template (`[a-z0-9_-]+`), e.g. `go_no_go`.
    pub key: String,
    /// Human title, e.g. "Go/No-Go".
    pub title: String,
    /// The run stage at which the decision is taken.
    pub stage: DecisionStage,
    /// The criteria the decider assesses, e.g. "error rate below 1% for 10 minutes" (at
    /// most 20).
    pub criteria: Vec<String>,
    /// Criteria a probe item measures: the decision form shows its latest result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<CriterionProbe>,
    /// Criteria the checklist answers: met once every item they count is done or waived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_criteria: Vec<ItemsCriterion>,
    /// Seconds after the run enters the point's stage by which it must be decided; when it
    /// passes with no decision, the server records `default_outcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_secs: Option<u32>,
    /// The outcome recorded when the deadline passes (`hold` unless the template says
    /// otherwise; never `go`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_outcome: Option<Outcome>,
}

/// A criterion whose observed value a probe item measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CriterionProbe {
    /// The criterion's text.
    pub criterion: String,
    /// The probe item's reference in the template, e.g. `3.1.2`.
    pub reference: String,
}

/// A criterion the checklist answers: it holds once every item it counts (the applicable
/// items of a gate, named items, or both) is done or waived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemsCriterion {
    /// The criterion's text.
    pub criterion: String,
    /// Every item of this gate counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// These items count, by reference (`part.section.item`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

impl ItemsCriterion {
    /// Whether an item of `gate` with `reference` counts towards the criterion.
    pub fn counts(&self, reference: &str, gate: Gate) -> bool {
        self.gate == Some(gate) || self.items.iter().any(|r| r == reference)
    }

    /// What answers the criterion, in words: "the deploy-gated items", "item 1.1.4",
    /// "items 1.1.4, 1.3.2", or both joined by "and".
    pub fn describe(&self) -> String {
        let gate = self.gate.map(|g| format!("the {}-gated items", g.as_str()));
        let items = match self.items.as_slice() {
            [] => None,
            [one] => Some(format!("item {one}")),
            many => Some(format!("items {}", many.join(", "))),
        };
        match (gate, items) {
            (Some(g), Some(i)) => format!("{g} and {i}"),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => String::new(),
        }
    }
}

/// Items a criterion may name.
pub const MAX_CRITERION_ITEMS: usize = 50;

/// The shortest decision deadline accepted (a minute).
pub const MIN_DEADLINE_SECS: u32 = 60;
/// The longest decision deadline accepted (a week).
pub const MAX_DEADLINE_SECS: u32 = 7 * 24 * 3600;

impl DecisionPointSpec {
    /// The outcome the server records when the deadline passes.
    pub fn deadline_outcome(&self) -> Outcome {
        self.default_outcome.unwrap_or(Outcome::Hold)
    }

    /// How long before the deadline the release managers are reminded, in seconds: five
    /// minutes, or a third of a shorter deadline.
    pub fn reminder_lead_secs(&self) -> Option<u32> {
        self.deadline_secs.map(|d| (d / 3).min(300))
    }

    /// What the checklist counts for a criterion, if anything.
    pub fn items_for(&self, criterion: &str) -> Option<&ItemsCriterion> {
        self.item_criteria.iter().find(|c| c.criterion == criterion)
    }

    /// The probe item measuring a criterion, if any.
    pub fn probe_for(&self, criterion: &str) -> Option<&str> {
        self.probes
            .iter()
            .find(|p| p.criterion == criterion)
            .map(|p| p.reference.as_str())
    }
}

/// A checklist template's content: parts, sections, items and decision points.
// The unvalidated form: `Template::try_from` checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateDraft {
    /// The template's name as listed (e.g. "EduLibra production deployment").
    pub name: String,
    /// The document title (the Markdown `#` heading); defaults to the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Free-text blocks before the checklist (at most 50).
    #[serde(default)]
    pub preamble: Vec<ProseBlock>,
    /// The checklist's parts, in order (1 to 20; at most 500 items in all).
    pub parts: Vec<Part>,
    /// The decision points of a run of this template (at most 20).
    #[serde(default)]
    pub decision_points: Vec<DecisionPointSpec>,
    /// Free-text blocks after the checklist (at most 50).
    #[serde(default)]
    pub epilogue: Vec<ProseBlock>,
}

/// A validated checklist template. Obtain one with `Template::try_from(draft)` or
/// [`crate::markdown::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TemplateDraft", into = "TemplateDraft")]
pub struct Template {
    name: String,
    title: String,
    preamble: Vec<ProseBlock>,
    parts: Vec<Part>,
    decision_points: Vec<DecisionPointSpec>,
    epilogue: Vec<ProseBlock>,
}

/// Why a template is not acceptable. `path` locates the offending field, e.g.
/// `parts[1].sections[0].items[2].title`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// Where the problem is.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TemplateError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Longest accepted single-line text (titles, criteria).
pub const MAX_LINE_LEN: usize = 500;
/// Longest accepted multi-line text (guidance, prose).
pub const MAX_TEXT_LEN: usize = 20_000;

/// The one text rule for a template's single lines (names, titles, criteria).
const LINE: TextRule = TextRule::line(MAX_LINE_LEN);
/// The one text rule for a template's multi-line text (guidance, prose).
const TEXT: TextRule = TextRule::prose(MAX_TEXT_LEN);

/// What every template text must be besides the one text rule: kept verbatim (its Markdown
/// form round-trips byte for byte), so not empty and not padded with white space, and never
/// an HTML comment marker (it would end the Markdown form's annotations).
fn check_verbatim(path: &str, s: &str, rule: TextRule) -> Result<(), TemplateError> {
    if s.trim().is_empty() {
        return Err(TemplateError::new(path, "must not be empty"));
    }
    if s.trim() != s {
        return Err(TemplateError::new(
            path,
            "must not start or end with white space",
        ));
    }
    if let Some(message) = rule.problem(s) {
        return Err(TemplateError::new(path, message));
    }
    if s.contains("<!--") || s.contains("-->") {
        return Err(TemplateError::new(path, "must not contain `<!--` or `-->`"));
    }
    Ok(())
}

/// A single line: the one text rule's, kept verbatim.
pub(crate) fn check_line(path: &str, s: &str) -> Result<(), TemplateError> {
    check_verbatim(path, s, LINE)
}

/// Multi-line text: the one text rule's prose, kept verbatim, with lines the Markdown form
/// can hold: no tabs or carriage returns, no line that would read as a heading or a checklist
/// item, none ending in white space.
pub(crate) fn check_text(path: &str, s: &str) -> Result<(), TemplateError> {
    check_verbatim(path, s, TEXT)?;
    if s.contains(['\t', '\r']) {
        return Err(TemplateError::new(
            path,
            "must not contain tabs or carriage returns (indent with spaces)",
        ));
    }
    for line in s.lines() {
        let t = line.trim_start();
        if t.starts_with('#') || t.starts_with("- [") {
            return Err(TemplateError::new(
                path,
                "lines must not start with `#` or `- [` (they would read as headings or items)",
            ));
        }
        if line.trim_end() != line {
            return Err(TemplateError::new(
                path,
                "lines must not end with white space",
            ));
        }
    }
    Ok(())
}

/// Refuses a template larger than the limits, before anything else is looked at.
fn check_size(d: &TemplateDraft) -> Result<(), TemplateError> {
    let over = |path: &str, what: &str, max: usize, n: usize| {
        Err(TemplateError::new(
            path,
            format!("at most {max} {what} (this template has {n})"),
        ))
    };
    let items: usize = d
        .parts
        .iter()
        .flat_map(|p| &p.sections)
        .map(|s| s.items.len())
        .sum();
    if items > MAX_ITEMS {
        return over("parts", "items in a template", MAX_ITEMS, items);
    }
    if d.parts.len() > MAX_PARTS {
        return over("parts", "parts", MAX_PARTS, d.parts.len());
    }
    for (pi, p) in d.parts.iter().enumerate() {
        if p.sections.len() > MAX_SECTIONS {
            let path = format!("parts[{pi}].sections");
            return over(&path, "sections in a part", MAX_SECTIONS, p.sections.len());
        }
        for (si, s) in p.sections.iter().enumerate() {
            if s.items.len() > MAX_SECTION_ITEMS {
                let path = format!("parts[{pi}].sections[{si}].items");
                return over(
                    &path,
                    "items in a section",
                    MAX_SECTION_ITEMS,
                    s.items.len(),
                );
            }
        }
    }
    if d.decision_points.len() > MAX_DECISION_POINTS {
        let n = d.decision_points.len();
        return over("decision_points", "decision points", MAX_DECISION_POINTS, n);
    }
    for (di, dp) in d.decision_points.iter().enumerate() {
        if dp.criteria.len() > MAX_CRITERIA {
            let path = format!("decision_points[{di}].criteria");
            return over(
                &path,
                "criteria per decision point",
                MAX_CRITERIA,
                dp.criteria.len(),
            );
        }
    }
    for (blocks, what) in [(&d.preamble, "preamble"), (&d.epilogue, "epilogue")] {
        if blocks.len() > MAX_PROSE_BLOCKS {
            return over(what, "text blocks", MAX_PROSE_BLOCKS, blocks.len());
        }
    }
    Ok(())
}

/// A decision point's deadline and default: a minute to a week; the default is open at the
/// point's stage and never `go` (the server never proceeds on its own).
fn check_deadline(path: &str, dp: &DecisionPointSpec) -> Result<(), TemplateError> {
    let Some(deadline) = dp.deadline_secs else {
        if dp.default_outcome.is_some() {
            return Err(TemplateError::new(
                format!("{path}.default_outcome"),
                "a default outcome needs a deadline (deadline=30m)",
            ));
        }
        return Ok(());
    };
    if !(MIN_DEADLINE_SECS..=MAX_DEADLINE_SECS).contains(&deadline) {
        return Err(TemplateError::new(
            format!("{path}.deadline_secs"),
            "a deadline is between 1 minute and 7 days",
        ));
    }
    let outcome = dp.deadline_outcome();
    if outcome == Outcome::Go {
        return Err(TemplateError::new(
            format!("{path}.default_outcome"),
            "the server never decides `go` on its own; the default is hold, rollback or abort",
        ));
    }
    if !Outcome::allowed_at(dp.stage).contains(&outcome) {
        return Err(TemplateError::new(
            format!("{path}.default_outcome"),
            format!(
                "`{}` is not an outcome while {}",
                outcome.as_str(),
                dp.stage.as_str()
            ),
        ));
    }
    Ok(())
}

/// Every item of a draft with its reference (`part.section.item`, from 1).
fn items_by_reference(parts: &[Part]) -> impl Iterator<Item = (String, &ItemSpec)> {
    parts.iter().enumerate().flat_map(|(pi, p)| {
        p.sections.iter().enumerate().flat_map(move |(si, s)| {
            s.items
                .iter()
                .enumerate()
                .map(move |(ii, it)| (format!("{}.{}.{}", pi + 1, si + 1, ii + 1), it))
        })
    })
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl TryFrom<TemplateDraft> for Template {
    type Error = TemplateError;

    fn try_from(d: TemplateDraft) -> Result<Self, TemplateError> {
        check_size(&d)?;
        check_line("name", &d.name)?;
        let title = d.title.unwrap_or_else(|| d.name.clone());
        check_line("title", &title)?;
        for (blocks, what) in [(&d.preamble, "preamble"), (&d.epilogue, "epilogue")] {
            for (i, b) in blocks.iter().enumerate() {
                check_line(&format!("{what}[{i}].heading"), &b.heading)?;
                check_text(&format!("{what}[{i}].body"), &b.body)?;
            }
        }
        if d.parts.is_empty() {
            return Err(TemplateError::new(
                "parts",
                "a template needs at least one part",
            ));
        }
        for (pi, p) in d.parts.iter().enumerate() {
            check_line(&format!("parts[{pi}].title"), &p.title)?;
            if p.sections.is_empty() {
                return Err(TemplateError::new(
                    format!("parts[{pi}].sections"),
                    "a part needs at least one section",
                ));
            }
            for (si, s) in p.sections.iter().enumerate() {
                let sp = format!("parts[{pi}].sections[{si}]");
                check_line(&format!("{sp}.title"), &s.title)?;
                if s.items.is_empty() {
                    return Err(TemplateError::new(
                        format!("{sp}.items"),
                        "a section needs at least one item",
                    ));
                }
                for (ii, it) in s.items.iter().enumerate() {
                    let ip = format!("{sp}.items[{ii}]");
                    check_line(&format!("{ip}.title"), &it.title)?;
                    if let Some(g) = &it.guidance {
                        check_text(&format!("{ip}.guidance"), g)?;
                    }
                    if !it.approvers.is_empty() && it.kind != ItemKind::Approval {
                        return Err(TemplateError::new(
                            format!("{ip}.approvers"),
                            "only approval items take approvers",
                        ));
                    }
                    match (it.kind, &it.probe) {
                        (ItemKind::Probe, None) => {
                            return Err(TemplateError::new(
                                format!("{ip}.probe"),
                                "a probe item needs its check: give at least its url",
                            ));
                        }
                        (ItemKind::Probe, Some(p)) => {
                            if let Err(message) = p.check() {
                                return Err(TemplateError::new(format!("{ip}.probe"), message));
                            }
                        }
                        (ItemKind::Manual | ItemKind::Approval, Some(_)) => {
                            return Err(TemplateError::new(
                                format!("{ip}.probe"),
                                "only probe items (kind=probe) take a check",
                            ));
                        }
                        (ItemKind::Manual | ItemKind::Approval, None) => {}
                    }
                    if it.record == Some(RecordKind::Retrospective)
                        && (it.kind != ItemKind::Manual || it.gate != Gate::Close)
                    {
                        return Err(TemplateError::new(
                            format!("{ip}.record"),
                            "a retrospective is written after the run: an item it completes \
                             is a manual item of gate close",
                        ));
                    }
                    if it.evidence_required && it.kind == ItemKind::Approval {
                        return Err(TemplateError::new(
                            format!("{ip}.evidence_required"),
                            "an approval item's evidence is its sign-offs; require evidence \
                             of manual or probe items",
                        ));
                    }
                    if it.approvers.len() > MAX_APPROVERS {
                        return Err(TemplateError::new(
                            format!("{ip}.approvers"),
                            format!("at most {MAX_APPROVERS} sign-offs per item"),
                        ));
                    }
                    if let Some(r) = it
                        .approvers
                        .iter()
                        .find(|r| !r.allows(crate::access::Permission::SignOff))
                    {
                        return Err(TemplateError::new(
                            format!("{ip}.approvers"),
                            format!(
                                "a {} cannot sign off; use approver, release_manager or admin",
                                r.as_str()
                            ),
                        ));
                    }
                }
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for (di, dp) in d.decision_points.iter().enumerate() {
            let dpp = format!("decision_points[{di}]");
            if !is_key(&dp.key) {
                return Err(TemplateError::new(
                    format!("{dpp}.key"),
                    "must be 1 to 64 characters of a-z, 0-9, `_` or `-`",
                ));
            }
            if !keys.insert(dp.key.as_str()) {
                return Err(TemplateError::new(
                    format!("{dpp}.key"),
                    format!("duplicate decision point key `{}`", dp.key),
                ));
            }
            check_line(&format!("{dpp}.title"), &dp.title)?;
            for (ci, c) in dp.criteria.iter().enumerate() {
                check_line(&format!("{dpp}.criteria[{ci}]"), c)?;
            }
            check_deadline(&dpp, dp)?;
            for (pi, cp) in dp.probes.iter().enumerate() {
                let path = format!("{dpp}.probes[{pi}]");
                if !dp.criteria.contains(&cp.criterion) {
                    return Err(TemplateError::new(
                        path,
                        format!("`{}` is not a criterion of `{}`", cp.criterion, dp.key),
                    ));
                }
                if dp.probes[..pi].iter().any(|o| o.criterion == cp.criterion) {
                    return Err(TemplateError::new(
                        path,
                        format!("`{}` names a probe twice", cp.criterion),
                    ));
                }
                let is_probe = items_by_reference(&d.parts)
                    .any(|(r, it)| r == cp.reference && it.kind == ItemKind::Probe);
                if !is_probe {
                    return Err(TemplateError::new(
                        path,
                        format!(
                            "`{}` is not the reference (part.section.item) of a probe item",
                            cp.reference
                        ),
                    ));
                }
            }
            for (ci, ic) in dp.item_criteria.iter().enumerate() {
                check_items_criterion(&format!("{dpp}.item_criteria[{ci}]"), &d.parts, dp, ci, ic)?;
            }
        }
        Ok(Template {
            name: d.name,
            title,
            preamble: d.preamble,
            parts: d.parts,
            decision_points: d.decision_points,
            epilogue: d.epilogue,
        })
    }
}

/// Checks a criterion the checklist answers: one of the point's criteria, measured once,
/// counting a gate that has items or items that exist.
fn check_items_criterion(
    path: &str,
    parts: &[Part],
    dp: &DecisionPointSpec,
    index: usize,
    ic: &ItemsCriterion,
) -> Result<(), TemplateError> {
    let fail = |message: String| Err(TemplateError::new(path, message));
    if !dp.criteria.contains(&ic.criterion) {
        return fail(format!(
            "`{}` is not a criterion of `{}`",
            ic.criterion, dp.key
        ));
    }
    if dp.probes.iter().any(|p| p.criterion == ic.criterion)
        || dp.item_criteria[..index]
            .iter()
            .any(|o| o.criterion == ic.criterion)
    {
        return fail(format!("`{}` is measured twice", ic.criterion));
    }
    if ic.gate.is_none() && ic.items.is_empty() {
        return fail(format!(
            "`{}` counts nothing: name a gate or items",
            ic.criterion
        ));
    }
    if ic.items.len() > MAX_CRITERION_ITEMS {
        return fail(format!("at most {MAX_CRITERION_ITEMS} items"));
    }
    if let Some(gate) = ic.gate
        && !items_by_reference(parts).any(|(_, it)| it.gate == gate)
    {
        return fail(format!("no item has gate `{}`", gate.as_str()));
    }
    for (i, reference) in ic.items.iter().enumerate() {
        if ic.items[..i].contains(reference) {
            return fail(format!("`{reference}` is named twice"));
        }
        if !items_by_reference(parts).any(|(r, _)| r == *reference) {
            return fail(format!(
                "`{reference}` is not the reference (part.section.item) of an item"
            ));
        }
    }
    Ok(())
}

impl From<Template> for TemplateDraft {
    fn from(t: Template) -> Self {
        TemplateDraft {
            name: t.name,
            title: Some(t.title),
            preamble: t.preamble,
            parts: t.parts,
            decision_points: t.decision_points,
            epilogue: t.epilogue,
        }
    }
}

impl Template {
    /// The name the template is listed under.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The document title (Markdown `#` heading).
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Free-text blocks before the checklist.
    pub fn preamble(&self) -> &[ProseBlock] {
        &self.preamble
    }
    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
    /// The decision points.
    pub fn decision_points(&self) -> &[DecisionPointSpec] {
        &self.decision_points
    }
    /// Free-text blocks after the checklist.
    pub fn epilogue(&self) -> &[ProseBlock] {
        &self.epilogue
    }
    /// Finds an item by its reference (`part.section.item`).
    pub fn item_by_reference(&self, reference: &str) -> Option<&ItemSpec> {
        items_by_reference(&self.parts)
            .find(|(r, _)| r == reference)
            .map(|(_, it)| it)
    }

    /// Finds a decision point by key.
    pub fn decision_point(&self, key: &str) -> Option<&DecisionPointSpec> {
        self.decision_points.iter().find(|d| d.key == key)
    }

    /// Every item with its position: (part index, section index, item index, item).
    pub fn items(&self) -> impl Iterator<Item = (usize, usize, usize, &ItemSpec)> {
        self.parts.iter().enumerate().flat_map(|(pi, p)| {
            p.sections.iter().enumerate().flat_map(move |(si, s)| {
                s.items
                    .iter()
                    .enumerate()
                    .map(move |(ii, it)| (pi, si, ii, it))
            })
        })
    }

    /// The number of items.
    pub fn item_count(&self) -> usize {
        self.items().count()
    }
}
