//! Wire types: the JSON bodies of the REST API, shared by the server and the web app so both
//! sides agree by construction. Serde-only; builds for wasm32. Request types reject unknown
//! fields. Ids are opaque strings (UUIDs); times are RFC 3339 UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Role;
use crate::access::Scope;
use crate::approval::{ApprovalState, Verdict};
use crate::decision::{CriterionAssessment, CriterionInput, Outcome};
use crate::item::ItemStatus;
use crate::run::{Blocker, RunStatus, TransitionAction};
use crate::template::{Applicability, DecisionStage, Gate, ItemKind, TemplateDraft};

/// Whole numbers in request bodies: JSON Schema counts `210.0` as an integer, so a client
/// (or a generated one) may send it; it is read as `210`. A fraction is still refused.
mod whole {
    use std::marker::PhantomData;

    use serde::Deserializer;
    use serde::de::{Error, Unexpected, Visitor};

    struct Whole<T>(PhantomData<T>);

    impl<T: TryFrom<i64>> Visitor<'_> for Whole<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number in range")
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            let n =
                i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))?;
            self.visit_i64(n)
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            // Below 2^53 every whole f64 is exact.
            if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
                self.visit_i64(v as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }

    struct Maybe<T>(PhantomData<T>);

    impl<'de, T: TryFrom<i64>> Visitor<'de> for Maybe<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }

        fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            required(d).map(Some)
        }
    }

    /// A whole number.
    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(Whole(PhantomData))
    }

    /// A whole number or `null`.
    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        d.deserialize_option(Maybe(PhantomData))
    }

    /// Present: a whole number or `null` (`Some(None)`); absent is `None` (with `default`).
    pub fn present<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        optional(d).map(Some)
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn present<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// Whether the server answers a path itself (the API, its documentation, the health
/// checks) rather than the web app, which has every other path.
pub fn is_server_path(path: &str) -> bool {
    ["/api/", "/api-docs/", "/docs"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/api"
        || path == "/healthz"
        || path == "/readyz"
}

/// Credentials for `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A bearer access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The token to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The name used to sign in.
    pub username: String,
    /// The user's role.
    pub role: Role,
    /// Whether the user may sign in.
    pub active: bool,
    /// When the account was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// How a user is told of what waits on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationSettings {
    /// Where mail goes (`null`: none is sent).
    pub email: Option<String>,
    /// Whether the user is e-mailed when something waits on them (an item assigned, an
    /// approval their role can give, a decision they may take), a burst of changes batched
    /// into one mail.
    pub email_notifications: bool,
}

/// Changes to the caller's notification settings; a field left out does not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationsRequest {
    /// The e-mail address; an empty string removes it.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether to be e-mailed.
    #[serde(default)]
    pub email_notifications: Option<bool>,
}

/// A new user account (admin only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// The name used to sign in: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
    pub username: String,
    /// The initial password, 12–256 characters.
    pub password: String,
    /// The role.
    pub role: Role,
}

/// Changes to a user (admin). Absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// The new role (not `null`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub role: Option<Role>,
    /// `false` deactivates the user: their sessions and API tokens stop working at once (not
    /// `null`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub active: Option<bool>,
}

/// A password change by the signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password, 12–256 characters.
    pub new_password: String,
}

/// A new API token for a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. "CI pipeline".
    pub name: String,
    /// What the token may do; it never exceeds what its owner's role may do.
    pub scopes: Vec<Scope>,
    /// Days until the token expires, 1–365.
    #[serde(deserialize_with = "whole::required")]
    pub expires_in_days: u32,
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    /// The token's id.
    pub id: String,
    /// What the token is for.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// What the token may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// When it expires.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub expires_at: DateTime<Utc>,
    /// When it was last used.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A newly created API token with its secret — shown this once, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The token.
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer <secret>`. It cannot be shown again.
    pub secret: String,
}

/// A member of a run's deployment team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunMember {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub username: String,
    /// The user's role.
    pub role: Role,
    /// Their responsibility in this run, e.g. "deployment lead", "DBA".
    pub run_role: String,
    /// Who added them.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub added_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub added_at: DateTime<Utc>,
}

/// Someone who can be put on a run's team: an active user's name and role (the directory a
/// release manager chooses team members from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    /// The name used to sign in.
    pub username: String,
    /// The user's role.
    pub role: Role,
}

/// A user to add to a run's team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The user's name.
    pub username: String,
    /// Their responsibility in this run, e.g. "deployment lead".
    pub run_role: String,
}

/// A sign-off on an approval item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signoff {
    /// The sign-off's id.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub id: String,
    /// The item.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub item_id: String,
    /// Who signed.
    pub user_id: String,
    /// Their name.
    pub username: String,
    /// Their role when they signed.
    pub role: Role,
    /// Approve or reject.
    pub verdict: Verdict,
    /// What they said.
    pub comment: Option<String>,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub signed_at: DateTime<Utc>,
    /// When a material change to the item invalidated it, if it did.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub invalidated_at: Option<DateTime<Utc>>,
}

impl crate::approval::Signed for Signoff {
    fn signer(&self) -> &str {
        &self.user_id
    }
}

/// A sign-off to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSignoffRequest {
    /// Approve or reject.
    pub verdict: Verdict,
    /// A comment; required with `reject` (what to rework).
    #[serde(default)]
    pub comment: Option<String>,
}

/// An approval item's policy and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemApproval {
    /// One distinct signer per listed role.
    pub approvers: Vec<Role>,
    /// Approved, rejected or pending.
    pub state: ApprovalState,
    /// The roles whose sign-off is still missing.
    pub missing: Vec<Role>,
    /// The valid (not invalidated) sign-offs.
    pub signoffs: Vec<Signoff>,
    /// Who did the work (the assignee and everyone who changed the item materially), by
    /// user name: none of them may sign it off.
    #[serde(default)]
    pub workers: Vec<String>,
}

/// An item waiting on the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingItem {
    /// The run.
    pub run_id: String,
    /// The run's product, release and environment, e.g. "EduLibra 4.2.0 → production".
    pub run_label: String,
    /// The item.
    pub item: RunItem,
}

/// A decision the caller may take now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingDecision {
    /// The run.
    pub run_id: String,
    /// The run's product, release and environment.
    pub run_label: String,
    /// The decision point's key.
    pub point_key: String,
    /// Its title.
    pub title: String,
    /// The latest outcome there, if any.
    pub latest_outcome: Option<Outcome>,
}

/// What waits on the caller across runs that are not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pending {
    /// Open items assigned to the caller.
    pub assigned: Vec<PendingItem>,
    /// Approval items the caller's role can sign off and the caller has not.
    pub approvals: Vec<PendingItem>,
    /// Decision points of the runs' current stages that the caller may decide.
    pub decisions: Vec<PendingDecision>,
    /// Open action items of retrospectives assigned to the caller, soonest due first
    /// (`overdue` flags those past their date).
    #[serde(default)]
    pub action_items: Vec<PendingAction>,
}

/// An open action item assigned to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingAction {
    /// The run whose retrospective it came from.
    pub run_id: String,
    /// The run's product, release and environment.
    pub run_label: String,
    /// The action item.
    pub action: crate::records::ActionItem,
}

/// A template as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSummary {
    /// The template's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its latest version (each edit makes a new immutable version).
    pub version: i32,
    /// Whether it ships with Shipshape.
    pub builtin: bool,
    /// The number of items in its latest version.
    pub item_count: usize,
    /// When the latest version was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// One version of a template with its full content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateDetail {
    /// The template's id.
    pub id: String,
    /// This version's number.
    pub version: i32,
    /// Whether it ships with Shipshape.
    pub builtin: bool,
    /// When this version was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// The content: parts, sections, items, decision points.
    pub content: TemplateDraft,
    /// Where this version came from, when it was a run's accepted proposal.
    #[serde(default)]
    pub source: Option<TemplateSource>,
}

/// The run and proposal a template version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSource {
    /// The run whose lessons it carries.
    pub run_id: String,
    /// The accepted proposal.
    pub proposal_id: String,
}

/// A new run of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRunRequest {
    /// The template to run.
    pub template_id: String,
    /// The template version to pin; defaults to the latest.
    #[serde(default, deserialize_with = "whole::optional")]
    pub template_version: Option<i32>,
    /// The product released, e.g. "EduLibra".
    pub product: String,
    /// The release's version, e.g. "4.2.0".
    pub release_version: String,
    /// The target environment, e.g. "production".
    pub environment: String,
    /// When the deployment window opens.
    #[serde(default)]
    pub window_start: Option<DateTime<Utc>>,
    /// When the deployment window closes.
    #[serde(default)]
    pub window_end: Option<DateTime<Utc>>,
    /// Expected user-facing downtime in minutes, 0 to 10080 (a week).
    #[serde(default, deserialize_with = "whole::optional")]
    pub expected_downtime_minutes: Option<i32>,
    /// The commit deployed: its hash, 4 to 64 hexadecimal digits (tools set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// When the deployed commit (or build) was made: the start of the run's lead time for
    /// changes in Insights. Not in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<DateTime<Utc>>,
}

/// Changes to a run's schedule. Absent fields stay; `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRunRequest {
    /// The release's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_version: Option<String>,
    /// When the deployment window opens (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub window_start: Option<Option<DateTime<Utc>>>,
    /// When the deployment window closes (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub window_end: Option<Option<DateTime<Utc>>>,
    /// Expected downtime in minutes, 0 to 10080 (`null` clears).
    #[serde(
        default,
        deserialize_with = "whole::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>))]
    pub expected_downtime_minutes: Option<Option<i32>>,
    /// The commit deployed, 4 to 64 hexadecimal digits (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub commit_sha: Option<Option<String>>,
    /// When the deployed commit was made (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub committed_at: Option<Option<DateTime<Utc>>>,
}

/// Counts of a run's (or a part's) items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// Items that apply to this run.
    pub applicable: u32,
    /// Applicable items done.
    pub done: u32,
    /// Applicable items skipped.
    pub skipped: u32,
    /// Applicable items neither done nor skipped.
    pub open: u32,
    /// Items that do not apply (rollback-only items of a run that did not roll back).
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub not_applicable: u32,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    /// The run's id.
    pub id: String,
    /// The template run.
    pub template_id: String,
    /// The pinned template version.
    pub template_version: i32,
    /// The template's name.
    pub template_name: String,
    /// The product released.
    pub product: String,
    /// The release's version.
    pub release_version: String,
    /// The target environment.
    pub environment: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// When the run was closed, if it was.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub closed_at: Option<DateTime<Utc>>,
    /// When the deployment window opens.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub window_start: Option<DateTime<Utc>>,
    /// When the deployment window closes.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub window_end: Option<DateTime<Utc>>,
    /// Expected user-facing downtime in minutes.
    pub expected_downtime_minutes: Option<i32>,
    /// Item counts.
    pub progress: Progress,
    /// Whether a release manager forced a transition past an unmet gate (break-glass); the
    /// run cannot close until the override is reviewed.
    pub overridden: bool,
    /// Who created the run.
    pub created_by: String,
    /// When the run was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// When the run last changed.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
    /// The run's version: the sequence number of its latest event; the run's `ETag`. Follow
    /// the run's changes from here with the event stream's `after`.
    pub version: i64,
}

/// One page of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunPage {
    /// The runs, newest first.
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An item of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunItem {
    /// The item's id.
    pub id: String,
    /// Its place in the checklist: part.section.item, e.g. `2.2.3`.
    pub reference: String,
    /// Its wording, from the template.
    pub title: String,
    /// Guidance from the template.
    pub guidance: Option<String>,
    /// The transition it gates.
    pub gate: Gate,
    /// When it applies.
    pub applies: Applicability,
    /// Whether it applies to this run now.
    pub applicable: bool,
    /// Whether the gate waits for it.
    pub required: bool,
    /// How it gets done.
    pub kind: ItemKind,
    /// The role expected to do it.
    pub role: Option<Role>,
    /// Its state.
    pub status: ItemStatus,
    /// Who it is assigned to.
    pub assignee: Option<String>,
    /// A free-text note.
    pub note: Option<String>,
    /// The first evidence link's URL (kept for clients from before items carried several).
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub evidence_url: Option<String>,
    /// Labelled links to evidence (log, dashboard, ticket), at most 10.
    #[serde(default)]
    pub evidence: Vec<crate::item::EvidenceLink>,
    /// Whether the item is done only with evidence (a link, or a passing check).
    #[serde(default)]
    pub evidence_required: bool,
    /// The run record the item is kept through: `issues` (it links to the issues log) or
    /// `retrospective` (publishing the retrospective completes it).
    #[serde(default)]
    pub record: Option<crate::template::RecordKind>,
    /// For probe items: the check and its latest result.
    #[serde(default)]
    pub probe: Option<ItemProbe>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// Optimistic-concurrency version; the item's `ETag`.
    pub version: i64,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// When it changed last.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
    /// For approval items: the policy, the state and the sign-offs.
    pub approval: Option<ItemApproval>,
}

impl RunItem {
    /// What the item rules judge a change to this item by, in `run`.
    pub fn context(&self, run: &RunSummary) -> crate::item::ItemContext {
        crate::item::ItemContext {
            run_status: run.status,
            run_closed: run.closed_at.is_some(),
            gate: self.gate,
            required: self.required,
            kind: self.kind,
            status: self.status,
            evidence_required: self.evidence_required,
            record: self.record,
        }
    }

    /// Why `user` may not give this item a sign-off (`verdict`; `None`: any) in `run` now, if
    /// there is a reason: the rule the server applies, over what the run's view says.
    pub fn signoff_refusal(
        &self,
        run: &RunSummary,
        user: &User,
        verdict: Option<Verdict>,
    ) -> Option<crate::approval::Refusal> {
        use crate::approval::{Refusal, SignoffContext, refusal_in};
        let Some(approval) = &self.approval else {
            return Some(Refusal::NotAnApprovalItem);
        };
        let ctx = SignoffContext {
            run_status: run.status,
            run_closed: run.closed_at.is_some(),
            gate: self.gate,
            status: self.status,
            policy: &approval.approvers,
            signoffs: &approval.signoffs,
            workers: &approval.workers,
        };
        refusal_in(
            &ctx,
            &approval.state,
            &approval.missing,
            &user.id,
            &user.username,
            user.role,
            verdict,
        )
    }
}

/// A probe item's check as the run sees it, with its latest result.
///
/// The web app reads only what it shows (its size is budgeted): fields marked so are left
/// at their defaults there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemProbe {
    /// The check as the template declares it.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub spec: crate::probe::ProbeSpec,
    /// The URL requested for this run (`null` when it cannot be written: see `problem`).
    pub url: Option<String>,
    /// How often the server repeats the check while the run is in the stage the item gates,
    /// in seconds.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub interval_secs: u32,
    /// The latest result, if the check has run.
    pub latest: Option<ProbeResult>,
    /// Why the item does not count as done now (failing, never checked, stale), if it does
    /// not.
    pub problem: Option<String>,
}

/// One result of a probe item's check. (The web app reads only what it shows: see
/// [`ItemProbe`].)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeResult {
    /// The result's id.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub id: String,
    /// When the check ran.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub checked_at: DateTime<Utc>,
    /// Whether the answer was what the probe expects.
    pub passed: bool,
    /// What matched or did not ("expected 200, got 503").
    pub summary: String,
    /// The observed value a decision criterion reads (the value at the pointer, or the
    /// status and latency).
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub observed: Option<String>,
    /// The URL requested.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub url: String,
    /// The answer's HTTP status, when there was an answer.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub http_status: Option<u16>,
    /// How long the answer took, in milliseconds, when there was one.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub latency_ms: Option<u64>,
    /// The start of the answer's body (at most 300 characters, control characters replaced).
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub excerpt: Option<String>,
    /// What started the check.
    pub trigger: crate::event::ProbeTrigger,
    /// Who ran it (`system` for the schedule).
    pub checked_by: String,
}

/// One page of a probe item's results, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeResultPage {
    /// The results.
    pub items: Vec<ProbeResult>,
    /// Pass as `before` to get older results; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A criterion the system measures (a probe item, or the checklist itself), with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Measurement {
    /// The criterion's text.
    pub criterion: String,
    /// What measures it, in words: "probe 3.1.2", "the deploy-gated items", "items 1.1.4,
    /// 1.3.2".
    pub measured_by: String,
    /// The probe item measuring it; `null` when the checklist answers it.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub item_id: Option<String>,
    /// The probe item's reference; `null` when the checklist answers it.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub reference: Option<String>,
    /// Whether the criterion is met: by the probe's latest result (`unknown`: never checked,
    /// or stale), or by the items it counts (met once every one is done or waived).
    pub result: crate::decision::CriterionResult,
    /// The observed value: the probe's latest, or how many counted items are settled and
    /// which are open.
    pub observed: Option<String>,
    /// When the probe's latest result was taken (`null` for the checklist: it is current).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub checked_at: Option<DateTime<Utc>>,
}

pub use crate::environment::{Environment, EnvironmentList, PutEnvironmentRequest};

/// A section of a run's checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSection {
    /// The section heading.
    pub title: String,
    /// Its items.
    pub items: Vec<RunItem>,
}

/// A part of a run's checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunPart {
    /// The part heading.
    pub title: String,
    /// Item counts of this part.
    pub progress: Progress,
    /// Its sections.
    pub sections: Vec<RunSection>,
}

/// A decision point of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunDecisionPoint {
    /// The point's key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The run stage at which it is decided.
    pub stage: DecisionStage,
    /// The criteria to assess.
    pub criteria: Vec<String>,
    /// The latest decision's outcome, if any.
    pub latest_outcome: Option<Outcome>,
    /// The criteria the system measures (probe items, the checklist), each with its result.
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// The deadline the template declares, in seconds after the stage begins.
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub deadline_secs: Option<u32>,
    /// What the server records when the deadline passes with no decision.
    #[serde(default)]
    pub default_outcome: Option<Outcome>,
    /// When the deadline passes, while the run is at the point's stage and nobody has decided
    /// since it began.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub deadline: Option<DateTime<Utc>>,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The decision's id.
    pub id: String,
    /// The decision point.
    pub point_key: String,
    /// What was decided.
    pub outcome: Outcome,
    /// Why.
    pub rationale: String,
    /// Every criterion of the point with its result.
    pub criteria: Vec<CriterionAssessment>,
    /// Who decided.
    pub decided_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub decided_at: DateTime<Utc>,
    /// Whether a later decision at the same point supersedes it.
    pub superseded: bool,
    /// A go with criteria not met or unknown, which the decider confirmed.
    #[serde(default)]
    pub unmet_confirmed: bool,
}

/// Whether a transition is possible now, and if not, what blocks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransitionAvailability {
    /// The action.
    pub action: TransitionAction,
    /// Whether it would succeed now.
    pub allowed: bool,
    /// Why not, in words, when it is not allowed.
    pub reason: Option<String>,
    /// Every blocker, when gates stand in the way.
    pub blockers: Vec<Blocker>,
}

/// A whole run: its checklist, decision points, decisions and progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    /// The run's summary fields, its version included.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// The checklist.
    pub parts: Vec<RunPart>,
    /// The decision points.
    pub decision_points: Vec<RunDecisionPoint>,
    /// Every decision, oldest first.
    pub decisions: Vec<Decision>,
    /// The transitions that lead on from the current status, with their blockers.
    pub transitions: Vec<TransitionAvailability>,
    /// The deployment team.
    pub members: Vec<RunMember>,
    /// For a run not yet deploying: what stands against its schedule in its environment (a
    /// freeze its window overlaps, a lock that holds).
    pub warnings: Vec<crate::environment::ScheduleWarning>,
    /// The commit deployed, as a tool set it.
    pub commit_sha: Option<String>,
    /// When the deployed commit was made.
    pub committed_at: Option<DateTime<Utc>>,
}

impl<'de> Deserialize<'de> for Run {
    /// Reads the run as a JSON object, takes its own fields out, and reads the summary from
    /// what is left: far less code than a flattened field (the web app decodes runs, and its
    /// size is budgeted).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut take =
            |name: &'static str| fields.remove(name).ok_or(D::Error::missing_field(name));
        let parts = take("parts")?;
        let decision_points = take("decision_points")?;
        let decisions = take("decisions")?;
        let transitions = take("transitions")?;
        let members = take("members")?;
        let warnings = fields.remove("warnings").unwrap_or_default();
        let commit_sha = fields.remove("commit_sha").unwrap_or_default();
        let committed_at = fields.remove("committed_at").unwrap_or_default();
        Ok(Run {
            commit_sha: commit_sha.as_str().map(str::to_owned),
            committed_at: committed_at.as_str().and_then(crate::timestamp::parse),
            // Read from the tree as it is: less code than a decoder.
            warnings: warnings
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|w| {
                            let text = |k: &str| w.get(k).and_then(serde_json::Value::as_str);
                            let time = |k: &str| text(k).and_then(crate::timestamp::parse);
                            crate::environment::ScheduleWarning {
                                kind: text("kind").unwrap_or_default().to_owned(),
                                message: text("message").unwrap_or_default().to_owned(),
                                freeze_id: text("freeze_id").map(str::to_owned),
                                starts_at: time("starts_at").unwrap_or_default(),
                                ends_at: time("ends_at"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
            parts: crate::tree(parts)?,
            decision_points: crate::tree(decision_points)?,
            decisions: crate::tree(decisions)?,
            transitions: crate::tree(transitions)?,
            members: crate::tree(members)?,
            summary: crate::tree(serde_json::Value::Object(fields))?,
        })
    }
}

/// A request to move a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// What to do.
    pub action: TransitionAction,
    /// Why (recorded in the event log); required with `force`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Break-glass: a release manager forces the transition past unmet gates. Recorded as an
    /// override, flags the run, and adds a required close item to review the override.
    #[serde(default)]
    pub force: bool,
}

/// Changes to an item. Absent fields stay; `null` clears assignee, note or evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateItemRequest {
    /// New status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// New assignee (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub assignee: Option<Option<String>>,
    /// New note (`null` clears).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub note: Option<Option<String>>,
    /// The first evidence link's URL, absolute http(s) (`null` removes the first link).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub evidence_url: Option<Option<String>>,
    /// The evidence links, replacing the item's (at most 10; `[]` removes them all). Not
    /// together with `evidence_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<crate::item::EvidenceLink>>,
    /// Why the item is skipped; required with status `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl UpdateItemRequest {
    /// Whether this change, made on the item as it was (`before`), touches only fields that
    /// another change (which made it `now`) left alone, so it can be applied on top of that
    /// change (with `now`'s version) instead of being shown as a conflict.
    pub fn is_disjoint_from(&self, before: &RunItem, now: &RunItem) -> bool {
        let status = before.status == now.status && before.skip_reason == now.skip_reason;
        (self.status.is_none() && self.reason.is_none() || status)
            && (self.assignee.is_none() || before.assignee == now.assignee)
            && (self.note.is_none() || before.note == now.note)
            && (self.evidence.is_none() && self.evidence_url.is_none()
                || before.evidence == now.evidence)
    }
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDecisionRequest {
    /// The decision point's key, e.g. `go_no_go`.
    pub point_key: String,
    /// What is decided.
    pub outcome: Outcome,
    /// Why; required.
    pub rationale: String,
    /// Results of the point's criteria; those left out are recorded as `unknown`.
    #[serde(default)]
    pub criteria: Vec<CriterionInput>,
    /// Confirms a `go` while a criterion is not met or unknown (refused without it); the
    /// decision records that it was given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmet_confirmed: bool,
}

pub use crate::event::{Event, EventData, EventType};

/// One page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// Events in order.
    pub items: Vec<Event>,
    /// Pass as `after` to get the next page; `null` when this page reached the end of the log
    /// (a full page may be followed by an empty one).
    pub next_after: Option<i64>,
}

/// Whether a hash chain (a run's event log, or the audit log) is intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainVerdict {
    /// Whether every entry is present, well formed, and links to the one before.
    pub verified: bool,
    /// How many entries the log holds (or should hold).
    pub count: i64,
    /// The last entry's hash: keep it elsewhere to show later that nothing before it changed.
    pub head_hash: Option<String>,
    /// The first entry that does not hold, when the chain is broken.
    pub first_bad_seq: Option<i64>,
    /// What is wrong there.
    pub problem: Option<String>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Failed sign-ins locked an account; details: `failures`, `locked_until`.
    SignInLocked,
    /// An admin created a user; details: `role`.
    UserCreated,
    /// An admin changed a user's role; details: `role` `{from, to}`.
    UserRoleChanged,
    /// An admin deactivated a user (ending their sessions and tokens).
    UserDeactivated,
    /// An admin reactivated a user.
    UserReactivated,
    /// A user's password was changed (by themselves); their sessions ended.
    PasswordChanged,
    /// An API token was created; details: `token_id`, `name`, `scopes`, `expires_at` (never
    /// the secret).
    TokenCreated,
    /// An API token was revoked; details: `token_id`, `name`.
    TokenRevoked,
    /// An admin imported a new template; details: `template_id`, `name`, `version`.
    TemplateImported,
    /// An admin published a new version of a template; details: `template_id`, `version`
    /// `{from, to}`.
    TemplateVersionCreated,
    /// A webhook subscription was created; details: `url`, `format`, `event_types`,
    /// `product`, `environment`, `active` (never the secret).
    WebhookCreated,
    /// A webhook subscription was changed; details: each changed field `{from, to}`.
    WebhookUpdated,
    /// A webhook subscription's signing secret was rotated; details:
    /// `previous_secret_expires_at`.
    WebhookSecretRotated,
    /// A webhook subscription was deleted; details: `url`.
    WebhookDeleted,
    /// The server deactivated a webhook subscription that kept failing; details: `reason`.
    WebhookDisabled,
    /// An environment's record was stored; details: `environment` and, for each field that
    /// changed, `{from, to}`.
    EnvironmentUpdated,
    /// An environment nothing referred to was deleted; details: `environment`.
    EnvironmentDeleted,
    /// An environment was locked; details: `environment`, `lock_id`, `reason`, `until`,
    /// `run_id` (a lock after that run's rollback).
    EnvironmentLocked,
    /// An environment was unlocked; details: `environment`, `lock_id`, `note`.
    EnvironmentUnlocked,
    /// A freeze window was made; details: `environment`, `freeze_id`, `reason`,
    /// `recurrence`, `start`, `end`, `time_zone`, `until`.
    FreezeWindowCreated,
    /// A freeze window was deleted; details: `environment`, `freeze_id`, `reason`.
    FreezeWindowDeleted,
    /// An administrator declined a template change proposed from a run; details:
    /// `proposal_id`, `run_id`, `reason`. (An accepted one is a `template_version_created`
    /// naming its proposal and run.)
    TemplateProposalDeclined,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 22] = [
        AuditAction::SignInLocked,
        AuditAction::UserCreated,
        AuditAction::UserRoleChanged,
        AuditAction::UserDeactivated,
        AuditAction::UserReactivated,
        AuditAction::PasswordChanged,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::TemplateImported,
        AuditAction::TemplateVersionCreated,
        AuditAction::WebhookCreated,
        AuditAction::WebhookUpdated,
        AuditAction::WebhookSecretRotated,
        AuditAction::WebhookDeleted,
        AuditAction::WebhookDisabled,
        AuditAction::EnvironmentUpdated,
        AuditAction::TemplateProposalDeclined,
        AuditAction::EnvironmentDeleted,
        AuditAction::EnvironmentLocked,
        AuditAction::EnvironmentUnlocked,
        AuditAction::FreezeWindowCreated,
        AuditAction::FreezeWindowDeleted,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignInLocked => "sign_in_locked",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserRoleChanged => "user_role_changed",
            AuditAction::UserDeactivated => "user_deactivated",
            AuditAction::UserReactivated => "user_reactivated",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::TemplateImported => "template_imported",
            AuditAction::TemplateVersionCreated => "template_version_created",
            AuditAction::WebhookCreated => "webhook_created",
            AuditAction::WebhookUpdated => "webhook_updated",
            AuditAction::WebhookSecretRotated => "webhook_secret_rotated",
            AuditAction::WebhookDeleted => "webhook_deleted",
            AuditAction::WebhookDisabled => "webhook_disabled",
            AuditAction::EnvironmentUpdated => "environment_updated",
            AuditAction::TemplateProposalDeclined => "template_proposal_declined",
            AuditAction::EnvironmentDeleted => "environment_deleted",
            AuditAction::EnvironmentLocked => "environment_locked",
            AuditAction::EnvironmentUnlocked => "environment_unlocked",
            AuditAction::FreezeWindowCreated => "freeze_window_created",
            AuditAction::FreezeWindowDeleted => "freeze_window_deleted",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One entry of the global audit log of administration and security events, hash-chained
/// like a run's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
    /// Who did it (user name); `null` when no one was signed in (a sign-in lock).
    pub actor: Option<String>,
    /// Who did it (user id).
    pub actor_id: Option<String>,
    /// From which client address.
    pub address: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to: a user name, a token id, a template id.
    pub subject: String,
    /// What changed, from what to what (see `action` for each action's fields).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    /// The previous entry's `hash` (64 zeros for the first entry).
    pub prev_hash: String,
    /// SHA-256 (hex) over `prev_hash` and this entry's canonical encoding (see the README).
    pub hash: String,
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// Entries in order.
    pub items: Vec<AuditEntry>,
    /// Pass as `after` to get the next page; `null` when this page reached the end of the log.
    pub next_after: Option<i64>,
}

/// An RFC 9457 problem: every error answer of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type (`urn:shipshape:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// A stable machine-readable code, e.g. `gate_blocked`, `precondition_failed`.
    pub code: String,
    /// Every blocker, for a refused transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<Blocker>>,
}

/// Process liveness or database readiness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_merges_over_another_only_when_their_fields_differ() {
        let before: RunItem = serde_json::from_value(serde_json::json!({
            "id": "i", "reference": "1.1.1", "title": "t", "gate": "deploy", "applies": "always",
            "applicable": true, "required": true, "kind": "manual", "status": "pending",
            "evidence": [], "evidence_required": false, "version": 1
        }))
        .unwrap_or_else(|e| panic!("an item: {e}"));
        let status = UpdateItemRequest {
            status: Some(crate::item::ItemStatus::Done),
            ..UpdateItemRequest::default()
        };
        let note = UpdateItemRequest {
            note: Some(Some("n".into())),
            ..UpdateItemRequest::default()
        };
        let assignee = UpdateItemRequest {
            assignee: Some(Some("a".into())),
            ..UpdateItemRequest::default()
        };
        let noted = RunItem {
            note: Some("theirs".into()),
            version: 2,
            ..before.clone()
        };
        let started = RunItem {
            status: crate::item::ItemStatus::InProgress,
            version: 2,
            ..before.clone()
        };
        // (mine, theirs, merges)
        let table = [
            (&status, &noted, true),
            (&assignee, &noted, true),
            (&note, &noted, false),
            (&note, &started, true),
            (&status, &started, false),
        ];
        for (mine, now, merges) in table {
            assert_eq!(
                mine.is_disjoint_from(&before, now),
                merges,
                "{mine:?} over {now:?}"
            );
        }
    }

    #[test]
    fn api_paths_are_never_the_web_apps() {
        assert!(is_server_path("/api/v1/runs"));
        assert!(is_server_path("/docs/"));
        assert!(is_server_path("/healthz"));
        assert!(!is_server_path("/runs/123"));
        assert!(!is_server_path("/"));
    }
}

/// An instance of Shipshape serving this database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    /// Its id (new at every start).
    pub id: String,
    /// The version it runs.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last said it is alive (every few seconds while it runs).
    pub seen_at: DateTime<Utc>,
    /// Whether it is alive: heard from within the last 20 seconds.
    pub alive: bool,
    /// The event streams open on it.
    pub streams: i64,
    /// Whether it runs the background work now (one instance at a time does).
    pub runs_background_work: bool,
}

/// The instances serving this database, and which one answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceList {
    /// The id of the instance that answered.
    pub answered_by: String,
    /// Every instance recorded, most recently started first.
    pub instances: Vec<Instance>,
}
