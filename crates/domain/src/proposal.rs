//! Proposals that carry a run's lessons back into its template: an edit of the template's
//! Markdown, shown as a line diff against the version it was written on, which an
//! administrator accepts as the template's next version or declines with a reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::text::{Label, Note};

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Waiting for an administrator.
    Open,
    /// Accepted: it became the template's next version.
    Accepted,
    /// Declined, with a reason.
    Declined,
}

impl ProposalStatus {
    /// Every status.
    pub const ALL: [ProposalStatus; 3] = [
        ProposalStatus::Open,
        ProposalStatus::Accepted,
        ProposalStatus::Declined,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Open => "open",
            ProposalStatus::Accepted => "accepted",
            ProposalStatus::Declined => "declined",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ProposalStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What a diff line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiffOp {
    /// In both versions.
    Same,
    /// Only in the proposal.
    Add,
    /// Only in the base version.
    Remove,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffLine {
    /// Kept, added or removed.
    pub op: DiffOp,
    /// The line's text.
    pub text: String,
}

/// A proposed change to a template, from a run's retrospective.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateProposal {
    /// The proposal's id.
    pub id: String,
    /// The template it changes.
    pub template_id: String,
    /// The template's name.
    pub template_name: String,
    /// The version it was written on (and must still be the latest to be accepted).
    pub base_version: i32,
    /// The run whose lessons it carries.
    pub run_id: String,
    /// That run's product, release and environment.
    pub run_label: String,
    /// What it changes and why, one line.
    pub summary: String,
    /// The proposed template, as Markdown (normalised: as the template would export).
    pub markdown: String,
    /// The change against the base version's Markdown, line by line.
    pub diff: Vec<DiffLine>,
    /// Open, accepted or declined.
    pub status: ProposalStatus,
    /// Who proposed it.
    pub proposed_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub proposed_at: DateTime<Utc>,
    /// Who accepted or declined it.
    pub reviewed_by: Option<String>,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Why it was declined (or what the reviewer noted on accepting it).
    pub review_reason: Option<String>,
    /// The template version it became, once accepted.
    pub accepted_version: Option<i32>,
}

/// A page of proposals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalList {
    /// The proposals, newest first.
    pub items: Vec<TemplateProposal>,
}

/// A change to propose to the run's template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProposalRequest {
    /// The template version the edit was written on: its latest (else 412, with the current
    /// version in the `ETag`).
    pub base_version: i32,
    /// What it changes and why, one line.
    pub summary: String,
    /// The whole template as Markdown, edited (export the base version with
    /// `Accept: text/markdown` and change it).
    pub markdown: String,
}

/// An administrator's verdict on a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewProposalRequest {
    /// `accepted` makes it the template's next version; `declined` closes it.
    pub status: ProposalStatus,
    /// Why (required to decline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a proposal or its review is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// A field is not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The proposal was already accepted or declined.
    #[error("the proposal was already {}", .0.as_str())]
    Reviewed(ProposalStatus),
}

impl From<crate::text::TextError> for ProposalError {
    fn from(e: crate::text::TextError) -> Self {
        ProposalError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Checks a proposal's summary and its diff against the base Markdown: it must change
/// something.
pub fn check_proposal(
    summary: &str,
    base: &str,
    proposed: &str,
) -> Result<(Label, Vec<DiffLine>), ProposalError> {
    let summary = Label::parse("summary", summary)?;
    let diff = diff_lines(base, proposed);
    if diff.iter().all(|l| l.op == DiffOp::Same) {
        return Err(ProposalError::Invalid {
            field: "markdown",
            message: "the proposal changes nothing in the template".into(),
        });
    }
    Ok((summary, diff))
}

/// Checks a review: only an open proposal is reviewed; declining needs a reason.
pub fn check_review(
    current: ProposalStatus,
    req: &ReviewProposalRequest,
) -> Result<Option<String>, ProposalError> {
    if current != ProposalStatus::Open {
        return Err(ProposalError::Reviewed(current));
    }
    let reason = match &req.reason {
        Some(r) => Note::parse("reason", r)?.map(String::from),
        None => None,
    };
    match req.status {
        ProposalStatus::Open => Err(ProposalError::Invalid {
            field: "status",
            message: "a review accepts or declines: give accepted or declined".into(),
        }),
        ProposalStatus::Declined if reason.is_none() => Err(ProposalError::Invalid {
            field: "reason",
            message: "declining a proposal needs a reason".into(),
        }),
        ProposalStatus::Accepted | ProposalStatus::Declined => Ok(reason),
    }
}

/// The most cells the diff's table may have; beyond it (templates far past any real
/// checklist) the diff shows every line removed and added.
const MAX_DIFF_CELLS: usize = 4_000_000;

/// A line diff of `a` to `b` (longest common subsequence): the lines of both in order, each
/// kept, removed or added.
pub fn diff_lines(a: &str, b: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Lines shared at both ends need no table.
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let line = |op, text: &str| DiffLine {
        op,
        text: text.to_owned(),
    };
    let mut out: Vec<DiffLine> = a[..head].iter().map(|t| line(DiffOp::Same, t)).collect();
    let (n, m) = (ma.len(), mb.len());
    if (n + 1).saturating_mul(m + 1) > MAX_DIFF_CELLS {
        out.extend(ma.iter().map(|t| line(DiffOp::Remove, t)));
        out.extend(mb.iter().map(|t| line(DiffOp::Add, t)));
    } else {
        // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                out.push(line(DiffOp::Same, ma[i]));
                i += 1;
                j += 1;
            } else if j < m && (i == n || lcs[i * width + j + 1] >= lcs[(i + 1) * width + j]) {
                out.push(line(DiffOp::Add, mb[j]));
                j += 1;
            } else {
                out.push(line(DiffOp::Remove, ma[i]));
                i += 1;
            }
        }
    }
    out.extend(a[a.len() - tail..].iter().map(|t| line(DiffOp::Same, t)));
    out
}

/// A diff in the unified style, every line kept (`  `, `- `, `+ `).
pub fn diff_text(diff: &[DiffLine]) -> String {
    diff.iter()
        .map(|l| {
            let mark = match l.op {
                DiffOp::Same => "  ",
                DiffOp::Add => "+ ",
                DiffOp::Remove => "- ",
            };
            format!("{mark}{}", l.text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(diff: &[DiffLine], side: DiffOp) -> String {
        diff.iter()
            .filter(|l| l.op == DiffOp::Same || l.op == side)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_diff_shows_a_reworded_and_an_added_item() {
        let a = "# T\n- [ ] one\n- [ ] two\n- [ ] three";
        let b = "# T\n- [ ] one\n- [ ] two, reworded\n- [ ] three\n- [ ] four";
        let d = diff_lines(a, b);
        assert_eq!(
            diff_text(&d),
            "  # T\n  - [ ] one\n+ - [ ] two, reworded\n- - [ ] two\n  - [ ] three\n+ - [ ] four"
        );
        assert_eq!(apply(&d, DiffOp::Remove), a);
        assert_eq!(apply(&d, DiffOp::Add), b);
    }

    #[test]
    fn a_diff_of_any_two_texts_rebuilds_both() {
        let texts = [
            "",
            "a",
            "a\nb",
            "b\na",
            "a\nb\nc\nb\na",
            "x\na\ny\nb",
            "a\na\na",
        ];
        for a in texts {
            for b in texts {
                let d = diff_lines(a, b);
                assert_eq!(apply(&d, DiffOp::Remove), a, "{a:?} → {b:?}");
                assert_eq!(apply(&d, DiffOp::Add), b, "{a:?} → {b:?}");
            }
        }
    }

    #[test]
    fn a_proposal_changes_something_and_a_decline_says_why() {
        assert!(matches!(
            check_proposal("Reword", "a\nb", "a\nb"),
            Err(ProposalError::Invalid {
                field: "markdown",
                ..
            })
        ));
        assert!(check_proposal("Reword", "a\nb", "a\nc").is_ok());
        let decline = ReviewProposalRequest {
            status: ProposalStatus::Declined,
            reason: None,
        };
        assert!(check_review(ProposalStatus::Open, &decline).is_err());
        let accept = ReviewProposalRequest {
            status: ProposalStatus::Accepted,
            reason: None,
        };
        assert_eq!(check_review(ProposalStatus::Open, &accept), Ok(None));
        assert_eq!(
            check_review(ProposalStatus::Declined, &accept),
            Err(ProposalError::Reviewed(ProposalStatus::Declined))
        );
    }
}
