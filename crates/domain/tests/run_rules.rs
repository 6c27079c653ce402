//! The run status machine, gates, item and decision rules: a table of every (status, action)
//! pair, and property tests over random sequences of actions on an EduLibra run.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use proptest::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::approval::{
    Refusal, SignoffContext, SignoffFacts, Verdict, check_signoff, missing_approvals, refusal,
};
use shipshape_domain::decision::{
    CriterionInput, CriterionResult, DecisionError, Outcome, assess_items, check_decision,
    go_without,
};
use shipshape_domain::item::{
    ItemChange, ItemContext, ItemError, ItemStatus, check_item_change, may_change, may_mark_done,
};
use shipshape_domain::run::{
    Blocker, RunFacts, RunStatus, TransitionAction, TransitionError, available_transitions,
    item_applies, plan_transition,
};
use shipshape_domain::template::{Gate, ItemKind, Template};
use shipshape_domain::{EDULIBRA_TEMPLATE_MD, markdown};

use RunStatus::*;
use TransitionAction::*;

#[test]
fn every_status_and_action_pair_has_the_expected_outcome() {
    // (from, action, expected target or None for a refusal)
    let table: &[(RunStatus, TransitionAction, Option<RunStatus>)] = &[
        (Planned, Start, Some(Preparing)),
        (Planned, Advance, None),
        (Planned, Complete, None),
        (Planned, Abort, Some(Aborted)),
        (Planned, FinishRollback, None),
        (Planned, Close, None),
        (Preparing, Start, Some(Preparing)),
        (Preparing, Advance, Some(Deploying)),
        (Preparing, Complete, None),
        (Preparing, Abort, Some(Aborted)),
        (Preparing, FinishRollback, None),
        (Preparing, Close, None),
        (Deploying, Start, None),
        (Deploying, Advance, Some(Verifying)),
        (Deploying, Complete, None),
        (Deploying, Abort, None),
        (Deploying, FinishRollback, None),
        (Deploying, Close, None),
        (Verifying, Start, None),
        (Verifying, Advance, None),
        (Verifying, Complete, Some(Completed)),
        (Verifying, Abort, None),
        (Verifying, FinishRollback, None),
        (Verifying, Close, None),
        (Completed, Start, None),
        (Completed, Advance, None),
        (Completed, Complete, Some(Completed)),
        (Completed, Abort, None),
        (Completed, FinishRollback, None),
        (Completed, Close, Some(Completed)),
        (RollingBack, Start, None),
        (RollingBack, Advance, None),
        (RollingBack, Complete, None),
        (RollingBack, Abort, None),
        (RollingBack, FinishRollback, Some(RolledBack)),
        (RollingBack, Close, None),
        (RolledBack, Start, None),
        (RolledBack, Advance, None),
        (RolledBack, Complete, None),
        (RolledBack, Abort, None),
        (RolledBack, FinishRollback, Some(RolledBack)),
        (RolledBack, Close, Some(RolledBack)),
        (Aborted, Start, None),
        (Aborted, Advance, None),
        (Aborted, Complete, None),
        (Aborted, Abort, Some(Aborted)),
        (Aborted, FinishRollback, None),
        (Aborted, Close, Some(Aborted)),
    ];
    assert_eq!(
        table.len(),
        RunStatus::ALL.len() * TransitionAction::ALL.len(),
        "the table covers every pair"
    );
    for &(from, action, expected) in table {
        let got = from.apply(action).ok();
        assert_eq!(got, expected, "{} + {}", from.as_str(), action.as_str());
    }
}

#[test]
fn a_rollback_is_possible_only_while_deploying_or_verifying() {
    for status in RunStatus::ALL {
        let expected = match status {
            Deploying | Verifying | RollingBack => Some(RollingBack),
            Planned | Preparing | Completed | RolledBack | Aborted => None,
        };
        assert_eq!(status.roll_back().ok(), expected, "{}", status.as_str());
    }
}

fn edulibra() -> Template {
    markdown::parse(EDULIBRA_TEMPLATE_MD).expect("the built-in template parses")
}

fn fresh_facts(t: &Template) -> RunFacts {
    RunFacts::planned(t, chrono::Utc::now())
}

#[test]
fn a_blocking_issue_stops_only_the_completion_and_is_named() {
    use shipshape_domain::records::{IssueStatus, Severity};
    let t = edulibra();
    let mut facts = fresh_facts(&t);
    for item in &mut facts.items {
        item.status = ItemStatus::Done;
        if let Some(probe) = item.probe.as_mut() {
            probe.latest = Some((facts.now, true, "passed".to_owned()));
        }
    }
    for point in &mut facts.points {
        point.latest = Some(Outcome::Go);
    }
    facts.blocking_issues = vec![shipshape_domain::run::IssueFacts {
        id: "i".into(),
        number: 4,
        title: "Checkout fails".into(),
        severity: Severity::Sev1,
        status: IssueStatus::Mitigated,
    }];
    facts.status = Deploying;
    assert!(
        plan_transition(&facts, Advance).is_ok(),
        "issues do not stop the deployment"
    );
    facts.status = Verifying;
    let Err(TransitionError::Blocked { blockers, .. }) = plan_transition(&facts, Complete) else {
        panic!("complete is blocked");
    };
    assert!(matches!(
        blockers.as_slice(),
        [Blocker::Issue { number: 4, .. }]
    ));
    // The same blocker reads back from the wire.
    let wire = serde_json::to_value(&blockers[0]).unwrap();
    assert_eq!(wire["kind"], "issue");
    assert_eq!(
        serde_json::from_value::<Blocker>(wire).unwrap(),
        blockers[0]
    );
    facts.blocking_issues.clear();
    assert!(plan_transition(&facts, Complete).is_ok());
}

#[test]
fn the_environment_stops_the_start_and_the_deployment_only_and_break_glass_forces_it() {
    use shipshape_domain::environment::{EnvironmentFacts, EnvironmentLock, FreezeOccurrence};
    let t = edulibra();
    let mut facts = fresh_facts(&t);
    for item in &mut facts.items {
        item.status = ItemStatus::Done;
        if let Some(probe) = item.probe.as_mut() {
            probe.latest = Some((facts.now, true, "passed".to_owned()));
        }
    }
    for point in &mut facts.points {
        point.latest = Some(Outcome::Go);
    }
    let now = facts.now;
    let env = EnvironmentFacts {
        name: "production".into(),
        lock: Some(EnvironmentLock {
            id: "l".into(),
            environment: "production".into(),
            reason: "migration half-done".into(),
            locked_by: "ana".into(),
            locked_at: now,
            until: None,
            run_id: None,
            unlocked_by: None,
            unlocked_at: None,
            unlock_note: None,
        }),
        freeze: Some(FreezeOccurrence {
            freeze_id: "f".into(),
            reason: "Exams".into(),
            starts_at: now,
            ends_at: now + chrono::Duration::days(3),
        }),
        promotion: Some(("staging".into(), false)),
    };
    facts.environment_blockers = shipshape_domain::environment::blockers(&env, "EduLibra", "4.2.0");
    for (status, action, blocked) in [
        (Planned, Start, true),
        (Preparing, Advance, true),
        (Deploying, Advance, false),
        (Verifying, Complete, false),
        (Preparing, Abort, false),
    ] {
        facts.status = status;
        let result = plan_transition(&facts, action);
        if blocked {
            let Err(TransitionError::Blocked { blockers, .. }) = result else {
                panic!("{} from {} is blocked", action.as_str(), status.as_str());
            };
            let kinds: Vec<_> = blockers
                .iter()
                .map(|b| serde_json::to_value(b).unwrap()["kind"].clone())
                .collect();
            assert_eq!(kinds, ["lock", "freeze", "promotion"]);
            for b in &blockers {
                let wire = serde_json::to_value(b).unwrap();
                assert_eq!(&serde_json::from_value::<Blocker>(wire).unwrap(), b);
            }
            let (plan, overridden) =
                shipshape_domain::run::plan_forced_transition(&facts, action, Some("outage fix"))
                    .unwrap();
            assert_eq!(overridden.len(), 3);
            assert_ne!(plan.to, status);
        } else {
            assert!(
                result.is_ok(),
                "{} from {}",
                action.as_str(),
                status.as_str()
            );
        }
    }
}

#[test]
fn a_refused_advance_lists_every_deploy_item_and_the_go_no_go_decision() {
    let t = edulibra();
    let mut facts = fresh_facts(&t);
    facts.status = Preparing;
    let Err(TransitionError::Blocked { blockers, .. }) = plan_transition(&facts, Advance) else {
        panic!("advance is blocked");
    };
    let items = blockers
        .iter()
        .filter(|b| matches!(b, Blocker::Item { .. }))
        .count();
    assert_eq!(items, 18);
    assert!(
        blockers
            .iter()
            .any(|b| matches!(b, Blocker::Decision { point_key, .. } if point_key == "go_no_go"))
    );
}

#[test]
fn who_may_change_an_item_and_mark_it_done_by_hand() {
    let open = ItemContext {
        run_status: Preparing,
        run_closed: false,
        gate: Gate::Deploy,
        required: true,
        kind: ItemKind::Manual,
        status: ItemStatus::Pending,
        evidence_required: false,
        record: None,
    };
    let finished = ItemContext {
        run_status: Completed,
        ..open
    };
    let closed = ItemContext {
        gate: Gate::Close,
        run_status: Completed,
        run_closed: true,
        ..open
    };
    let close_gated = ItemContext {
        gate: Gate::Close,
        ..finished
    };
    let approval = ItemContext {
        kind: ItemKind::Approval,
        ..open
    };
    let probe = ItemContext {
        kind: ItemKind::Probe,
        ..open
    };
    let done = ItemContext {
        status: ItemStatus::Done,
        ..open
    };
    use Role::*;
    // (item, role, on the team) → may change it, may mark it done.
    let table = [
        (open, Viewer, true, false, false),
        (open, Engineer, false, false, false),
        (open, Engineer, true, true, true),
        (open, ReleaseManager, false, true, true),
        (finished, ReleaseManager, true, false, false),
        (close_gated, Engineer, true, true, true),
        (closed, ReleaseManager, true, false, false),
        (approval, Engineer, true, true, false),
        (probe, Engineer, true, true, false),
        (done, Engineer, true, true, false),
    ];
    for (n, (ctx, role, member, change, mark_done)) in table.into_iter().enumerate() {
        assert_eq!(may_change(&ctx, role, member).is_ok(), change, "row {n}");
        assert_eq!(may_mark_done(&ctx, role, member), mark_done, "row {n}");
        // The whole check of a change refuses exactly where `may_change` does.
        let note = ItemChange {
            note: Some(Some("checked".into())),
            ..ItemChange::default()
        };
        assert_eq!(
            check_item_change(ctx, role, member, &[], note).is_ok(),
            change,
            "row {n}"
        );
    }
}

#[test]
fn a_sign_off_refusal_is_the_check_of_a_sign_off_without_its_comment() {
    let policy = [Role::ReleaseManager, Role::Approver];
    let by = |user: &str, role, verdict| SignoffFacts {
        user_id: user.into(),
        role,
        verdict,
    };
    let approver_in = [by("ann", Role::Approver, Verdict::Approve)];
    let rejected = [by("ann", Role::Approver, Verdict::Reject)];
    let approved = [
        by("ann", Role::Approver, Verdict::Approve),
        by("rob", Role::ReleaseManager, Verdict::Approve),
    ];
    let ctx = |status, signoffs| SignoffContext {
        run_status: Preparing,
        run_closed: false,
        gate: Gate::Deploy,
        status,
        policy: &policy,
        signoffs,
        workers: &["eve"],
    };
    let pending = ItemStatus::Pending;
    use Role::*;
    // (context, signer, role, verdict asked about) → the refusal.
    type Row<'a> = (
        SignoffContext<'a>,
        &'a str,
        Role,
        Option<Verdict>,
        Option<Refusal>,
    );
    let table: [Row<'_>; 11] = [
        (ctx(pending, &[]), "bea", Approver, None, None),
        (
            ctx(pending, &[]),
            "eve",
            Approver,
            None,
            Some(Refusal::OwnWork),
        ),
        (
            ctx(pending, &[]),
            "bea",
            Engineer,
            None,
            Some(Refusal::RoleNotAsked),
        ),
        (
            ctx(pending, &approver_in),
            "ann",
            Approver,
            None,
            Some(Refusal::AlreadySigned),
        ),
        // The approver's slot is taken: a second approver may still reject, not approve.
        (ctx(pending, &approver_in), "bea", Approver, None, None),
        (
            ctx(pending, &approver_in),
            "bea",
            Approver,
            Some(Verdict::Approve),
            Some(Refusal::RoleFilled),
        ),
        (
            ctx(pending, &approver_in),
            "bea",
            Admin,
            Some(Verdict::Approve),
            None,
        ),
        (
            ctx(ItemStatus::Blocked, &rejected),
            "bea",
            Approver,
            None,
            Some(Refusal::Rejected),
        ),
        (
            ctx(ItemStatus::Done, &approved),
            "bea",
            Approver,
            None,
            Some(Refusal::Approved),
        ),
        (
            ctx(ItemStatus::Skipped, &[]),
            "bea",
            Approver,
            None,
            Some(Refusal::Skipped),
        ),
        (
            SignoffContext {
                run_status: Completed,
                ..ctx(pending, &[])
            },
            "bea",
            Approver,
            None,
            Some(Refusal::Locked),
        ),
    ];
    for (n, (ctx, user, role, verdict, expected)) in table.into_iter().enumerate() {
        assert_eq!(
            refusal(&ctx, user, user, role, verdict),
            expected,
            "row {n}"
        );
        // The check refuses a sign-off (with a comment) exactly where a refusal stands.
        for v in verdict.map_or(vec![Verdict::Approve, Verdict::Reject], |v| vec![v]) {
            let checked = check_signoff(&ctx, user, user, role, v, Some("looked at it"));
            assert_eq!(
                checked.is_err(),
                refusal(&ctx, user, user, role, Some(v)).is_some(),
                "row {n}, {v:?}"
            );
        }
    }
    let none = SignoffContext {
        policy: &[],
        ..ctx(pending, &[])
    };
    assert_eq!(
        refusal(&none, "bea", "bea", Approver, None),
        Some(Refusal::NotAnApprovalItem)
    );
}

#[test]
fn skipping_a_required_item_is_a_waiver_only_a_release_manager_may_grant() {
    let ctx = ItemContext {
        run_status: Preparing,
        run_closed: false,
        gate: Gate::Deploy,
        required: true,
        kind: ItemKind::Manual,
        status: ItemStatus::Pending,
        evidence_required: false,
        record: None,
    };
    let skip = ItemChange {
        status: Some(ItemStatus::Skipped),
        reason: Some("covered by the staging rehearsal".into()),
        ..ItemChange::default()
    };
    assert!(matches!(
        check_item_change(ctx, Role::Engineer, true, &[], skip.clone()),
        Err(ItemError::Forbidden(_))
    ));
    let waived = check_item_change(ctx, Role::ReleaseManager, true, &[], skip).expect("a waiver");
    assert!(waived.waiver);
    let no_reason = ItemChange {
        status: Some(ItemStatus::Skipped),
        ..ItemChange::default()
    };
    assert!(matches!(
        check_item_change(ctx, Role::ReleaseManager, true, &[], no_reason),
        Err(ItemError::Invalid {
            field: "reason",
            ..
        })
    ));
    let optional = ItemContext {
        required: false,
        ..ctx
    };
    let skip_optional = ItemChange {
        status: Some(ItemStatus::Skipped),
        reason: Some("not this time".into()),
        ..ItemChange::default()
    };
    let skipped =
        check_item_change(optional, Role::Engineer, true, &[], skip_optional).expect("allowed");
    assert!(!skipped.waiver);
}

#[test]
fn a_decision_needs_a_rationale_and_the_run_at_its_stage() {
    let t = edulibra();
    let point = t.decision_point("go_no_go").expect("point");
    let decide = |status, outcome, rationale: &str, criteria, confirmed| {
        check_decision(
            status, false, point, outcome, rationale, criteria, confirmed,
        )
    };
    assert!(decide(Preparing, Outcome::Go, "  ", vec![], true).is_err());
    assert!(decide(Deploying, Outcome::Go, "ready", vec![], true).is_err());
    let d = decide(Preparing, Outcome::Go, " ready ", vec![], true).expect("ok");
    assert_eq!(d.rationale, "ready");
    assert_eq!(
        d.criteria.len(),
        point.criteria.len(),
        "every criterion is recorded"
    );
    assert!(d.moves_run_to.is_none());
    let abort = decide(Preparing, Outcome::Abort, "no", vec![], false).expect("ok");
    assert_eq!(abort.moves_run_to, Some(Aborted));
    assert!(!abort.unmet_confirmed, "only a go needs confirming");
    assert!(decide(Preparing, Outcome::Rollback, "no", vec![], false).is_err());
}

#[test]
fn a_go_with_a_criterion_not_met_or_unknown_needs_a_confirmation_that_is_recorded() {
    let t = edulibra();
    let point = t.decision_point("go_no_go").expect("point");
    let assessed = |last: CriterionResult| -> Vec<CriterionInput> {
        let n = point.criteria.len();
        point
            .criteria
            .iter()
            .enumerate()
            .map(|(i, c)| CriterionInput {
                criterion: c.clone(),
                result: if i + 1 == n {
                    last
                } else {
                    CriterionResult::Met
                },
                observed: None,
            })
            .collect()
    };
    let go = |criteria, confirmed| {
        check_decision(
            Preparing,
            false,
            point,
            Outcome::Go,
            "r",
            criteria,
            confirmed,
        )
    };
    for last in [CriterionResult::NotMet, CriterionResult::Unknown] {
        let refused = go(assessed(last), false).expect_err("unconfirmed");
        let DecisionError::Invalid { field, message } = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(field, "unmet_confirmed");
        assert!(message.contains("No sev-1 incident open"), "{message}");
        assert!(
            !message.contains("Rollback procedure rehearsed"),
            "only the unmet are named: {message}"
        );
        assert!(go(assessed(last), true).expect("confirmed").unmet_confirmed);
    }
    // All met: nothing to confirm, and a confirmation sent anyway records nothing.
    assert!(
        !go(assessed(CriterionResult::Met), false)
            .expect("met")
            .unmet_confirmed
    );
    assert!(
        !go(assessed(CriterionResult::Met), true)
            .expect("met")
            .unmet_confirmed
    );
    // The rule the web app asks by: a go's unmet criteria, in order; nothing for a hold.
    let mixed = [
        ("a", CriterionResult::Met),
        ("b", CriterionResult::Unknown),
        ("c", CriterionResult::NotMet),
    ];
    assert_eq!(go_without(Outcome::Go, mixed), ["b", "c"]);
    assert!(go_without(Outcome::Hold, mixed).is_empty());
    // Hold needs no confirmation whatever the criteria say.
    let hold = check_decision(Preparing, false, point, Outcome::Hold, "r", vec![], false);
    assert!(!hold.expect("hold").unmet_confirmed);
}

#[test]
fn a_criterion_the_checklist_answers_is_met_once_every_counted_item_is_done_or_waived() {
    use ItemStatus::*;
    type Counted = &'static [(&'static str, ItemStatus)];
    let table: &[(Counted, CriterionResult, &str)] = &[
        (&[], CriterionResult::Unknown, "no applicable item counts"),
        (
            &[("1.1.4", Done), ("1.3.2", Skipped)],
            CriterionResult::Met,
            "2 of 2 done or waived",
        ),
        (
            &[("1.1.4", Done), ("1.3.2", InProgress)],
            CriterionResult::NotMet,
            "1 of 2 done or waived; open: 1.3.2 in progress",
        ),
        (
            &[
                ("1", Failed),
                ("2", Pending),
                ("3", Blocked),
                ("4", Pending),
                ("5", Pending),
                ("6", Pending),
                ("7", Pending),
            ],
            CriterionResult::NotMet,
            "0 of 7 done or waived; open: 1 failed, 2 pending, 3 blocked, 4 pending, 5 pending and 2 more",
        ),
    ];
    for (items, result, observed) in table {
        assert_eq!(
            assess_items(items.iter().copied()),
            (*result, (*observed).to_owned()),
            "{items:?}"
        );
    }
}

/// One step a user might take.
#[derive(Debug, Clone)]
enum Step {
    Transition(TransitionAction),
    Item(usize, ItemStatus),
    Decide(usize, Outcome),
    /// Marks done every item of a gate, one by one (makes the later stages reachable).
    SettleGate(Gate),
}

fn step() -> impl Strategy<Value = Step> {
    // Aborting ends most sequences at once, so it is drawn rarely.
    let action = prop_oneof![
        30 => Just(Start),
        50 => Just(Advance),
        30 => Just(Complete),
        1 => Just(Abort),
        20 => Just(FinishRollback),
        30 => Just(Close),
    ];
    let status = prop_oneof![
        6 => Just(ItemStatus::Done),
        1 => prop::sample::select(ItemStatus::ALL.to_vec()),
    ];
    let outcome = prop_oneof![
        60 => Just(Outcome::Go),
        20 => Just(Outcome::Hold),
        10 => Just(Outcome::Rollback),
        1 => Just(Outcome::Abort),
    ];
    prop_oneof![
        4 => action.prop_map(Step::Transition),
        6 => (0..33usize, status).prop_map(|(i, s)| Step::Item(i, s)),
        3 => (0..3usize, outcome).prop_map(|(p, o)| Step::Decide(p, o)),
        2 => prop::sample::select(Gate::ALL.to_vec()).prop_map(Step::SettleGate),
    ]
}

/// A run in memory, changed only through the domain's rules.
struct Sim {
    template: Template,
    facts: RunFacts,
    decisions: Vec<(String, Outcome)>,
    signoffs: Vec<Vec<SignoffFacts>>,
}

impl Sim {
    fn gates_settled(&self, gates: &[Gate]) -> bool {
        self.facts.items.iter().all(|i| {
            !gates.contains(&i.gate)
                || !i.required
                || !item_applies(i.applies, self.facts.status)
                || match &i.probe {
                    // A probe item is settled by a fresh passing result, or a waiver.
                    Some(p) => {
                        i.status == ItemStatus::Skipped || p.problem(self.facts.now).is_none()
                    }
                    None => i.status.is_settled(),
                }
        })
    }

    /// Applies a step; returns how many changes it made.
    fn apply(&mut self, step: &Step) -> usize {
        match *step {
            Step::SettleGate(gate) => {
                let of_gate: Vec<usize> = (0..self.facts.items.len())
                    .filter(|&i| self.facts.items[i].gate == gate)
                    .collect();
                of_gate
                    .into_iter()
                    .map(|i| self.apply(&Step::Item(i, ItemStatus::Done)))
                    .sum()
            }
            Step::Transition(action) => match plan_transition(&self.facts, action) {
                Ok(plan) if plan.changes() => {
                    self.facts.status = plan.to;
                    self.facts.closed |= plan.closes;
                    1
                }
                Ok(_) | Err(_) => 0,
            },
            Step::Item(index, status) => {
                let item = self.facts.items[index].clone();
                let spec = self
                    .template
                    .items()
                    .nth(index)
                    .map(|(_, _, _, s)| s.clone())
                    .expect("item");
                let ctx = ItemContext {
                    run_status: self.facts.status,
                    run_closed: self.facts.closed,
                    gate: item.gate,
                    required: item.required,
                    kind: spec.kind,
                    status: item.status,
                    evidence_required: spec.evidence_required,
                    record: spec.record,
                };
                let change = ItemChange {
                    status: Some(status),
                    reason: (status == ItemStatus::Skipped).then(|| "not needed".to_owned()),
                    ..ItemChange::default()
                };
                match check_item_change(ctx, Role::ReleaseManager, true, &[], change) {
                    Ok(c) if c.change.status.is_some_and(|s| s != item.status) => {
                        // Reworking an approval item drops its sign-offs.
                        self.signoffs[index].clear();
                        self.facts.items[index].status = status;
                        1
                    }
                    // Approval items are done only through sign-offs: give the missing ones,
                    // each by a distinct signer of the role asked for.
                    Err(ItemError::NeedsSignoff) => {
                        let policy = spec.approval_policy();
                        let mut changes = 0;
                        for (n, role) in missing_approvals(&policy, &self.signoffs[index])
                            .into_iter()
                            .enumerate()
                        {
                            let user = format!("signer-{n}-{}", role.as_str());
                            let ctx = SignoffContext {
                                run_status: self.facts.status,
                                run_closed: self.facts.closed,
                                gate: item.gate,
                                status: self.facts.items[index].status,
                                policy: &policy,
                                signoffs: &self.signoffs[index],
                                workers: &["release-manager"],
                            };
                            if let Ok(effect) =
                                check_signoff(&ctx, &user, &user, role, Verdict::Approve, None)
                            {
                                self.signoffs[index].push(SignoffFacts {
                                    user_id: user,
                                    role,
                                    verdict: Verdict::Approve,
                                });
                                if let Some(s) = effect.new_status {
                                    self.facts.items[index].status = s;
                                }
                                changes += 1;
                            }
                        }
                        changes
                    }
                    // Probe items are done or failed by their check's result.
                    Err(ItemError::NeedsCheck) => {
                        let passed = status == ItemStatus::Done;
                        let now = self.facts.now;
                        let item = &mut self.facts.items[index];
                        if let Some(probe) = item.probe.as_mut() {
                            probe.latest = Some((now, passed, "checked".to_owned()));
                        }
                        item.status = status;
                        1
                    }
                    // Retrospective items are done when the retrospective is published (of a
                    // finished run; their gate, close, keeps them editable then).
                    Err(ItemError::NeedsRetrospective) => {
                        self.facts.items[index].status = status;
                        1
                    }
                    Ok(_) | Err(_) => 0,
                }
            }
            Step::Decide(point, outcome) => {
                let spec = self.template.decision_points()[point].clone();
                match check_decision(
                    self.facts.status,
                    self.facts.closed,
                    &spec,
                    outcome,
                    "because",
                    vec![],
                    true,
                ) {
                    Ok(d) => {
                        self.decisions.push((spec.key.clone(), d.outcome));
                        self.facts.points[point].latest = Some(d.outcome);
                        if let Some(to) = d.moves_run_to {
                            self.facts.status = to;
                        }
                        1
                    }
                    Err(_) => 0,
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_action_sequences_keep_the_run_invariants(steps in prop::collection::vec(step(), 1..250)) {
        let template = edulibra();
        let mut sim = Sim { facts: fresh_facts(&template), template, decisions: Vec::new(), signoffs: vec![Vec::new(); 33] };
        let mut changes = 0usize;
        for step in &steps {
            let before_status = sim.facts.status;
            let before_closed = sim.facts.closed;
            let before_decisions = sim.decisions.clone();
            let changed = sim.apply(step);
            changes += changed;
            // A decision never changes after it is recorded: the log only grows.
            prop_assert_eq!(&sim.decisions[..before_decisions.len()], &before_decisions[..]);
            // A run never completes with a required gate item open.
            if sim.facts.status == Completed && before_status != Completed {
                prop_assert!(sim.gates_settled(&[Gate::Deploy, Gate::Verify, Gate::Complete]));
                prop_assert_eq!(sim.facts.points[2].latest, Some(Outcome::Go));
            }
            if sim.facts.status == Deploying && before_status == Preparing {
                prop_assert!(sim.gates_settled(&[Gate::Deploy]));
                prop_assert_eq!(sim.facts.points[0].latest, Some(Outcome::Go));
            }
            // Nor closes with a required close item open.
            if sim.facts.closed && !before_closed {
                prop_assert!(sim.gates_settled(&[Gate::Close]));
            }
            // A closed run never moves again.
            if before_closed {
                prop_assert!(sim.facts.closed);
                prop_assert_eq!(sim.facts.status, before_status);
            }
            // What the run offers is exactly what would succeed.
            for offer in available_transitions(&sim.facts) {
                prop_assert_eq!(offer.allowed, plan_transition(&sim.facts, offer.action).is_ok());
            }
        }
        if std::env::var_os("SHIPSHAPE_SIM_STATS").is_some() {
            eprintln!("reached {:?} closed={} after {changes} changes", sim.facts.status, sim.facts.closed);
        }
    }

    #[test]
    fn settling_every_listed_blocker_lets_the_transition_through(steps in prop::collection::vec(step(), 1..150)) {
        let template = edulibra();
        let mut sim = Sim { facts: fresh_facts(&template), template, decisions: Vec::new(), signoffs: vec![Vec::new(); 33] };
        for step in &steps {
            sim.apply(step);
        }
        for action in TransitionAction::ALL {
            if let Err(TransitionError::Blocked { blockers, .. }) = plan_transition(&sim.facts, action) {
                let mut facts = sim.facts.clone();
                for b in &blockers {
                    match b {
                        Blocker::Item { item_id, .. } => {
                            let now = facts.now;
                            let item = facts.items.iter_mut().find(|i| &i.id == item_id).expect("listed item exists");
                            item.status = ItemStatus::Done;
                            if let Some(probe) = item.probe.as_mut() {
                                probe.latest = Some((now, true, "passed".to_owned()));
                            }
                        }
                        Blocker::Decision { point_key, .. } => {
                            let point = facts.points.iter_mut().find(|p| &p.key == point_key).expect("listed point exists");
                            point.latest = Some(Outcome::Go);
                        }
                        Blocker::Issue { issue_id, .. } => {
                            facts.blocking_issues.retain(|i| &i.id != issue_id);
                        }
                        Blocker::Lock { .. } | Blocker::Freeze { .. } | Blocker::Promotion { .. } => {
                            facts.environment_blockers.retain(|e| e != b);
                        }
                    }
                }
                prop_assert!(plan_transition(&facts, action).is_ok(), "the blockers of {} were not all listed", action.as_str());
            }
        }
    }
}

#[test]
fn a_probe_item_gates_by_its_latest_result_and_its_age() {
    let template = edulibra();
    let mut facts = fresh_facts(&template);
    facts.status = Preparing;
    for item in &mut facts.items {
        item.status = ItemStatus::Done;
    }
    let probe_index = facts
        .items
        .iter()
        .position(|i| i.probe.is_some() && i.gate == Gate::Deploy)
        .expect("the template's pre-deployment health check is a probe");
    let reason_of = |facts: &RunFacts| {
        shipshape_domain::run::blockers(facts, TransitionAction::Advance)
            .into_iter()
            .find_map(|b| match b {
                Blocker::Item {
                    item_id, reason, ..
                } if item_id == facts.items[probe_index].id => Some(reason),
                _ => None,
            })
    };
    assert_eq!(
        reason_of(&facts),
        Some(Some("not checked yet: run its check".to_owned())),
        "marked done without a result, it still blocks"
    );
    let now = facts.now;
    facts.items[probe_index].probe.as_mut().unwrap().latest =
        Some((now, false, "expected 200, got 503".into()));
    assert_eq!(
        reason_of(&facts),
        Some(Some("expected 200, got 503".to_owned()))
    );
    facts.items[probe_index].probe.as_mut().unwrap().latest =
        Some((now - chrono::Duration::minutes(20), true, "HTTP 200".into()));
    assert_eq!(
        reason_of(&facts),
        Some(Some("last check 20 min ago, limit 15 min".to_owned()))
    );
    facts.items[probe_index].probe.as_mut().unwrap().latest =
        Some((now - chrono::Duration::minutes(2), true, "HTTP 200".into()));
    assert_eq!(reason_of(&facts), None, "a fresh pass settles it");
    facts.items[probe_index].probe.as_mut().unwrap().latest = None;
    facts.items[probe_index].status = ItemStatus::Skipped;
    assert_eq!(
        reason_of(&facts),
        None,
        "a waived probe does not need its check"
    );

    // Once its gate is passed, a probe's pass does not go stale for the later gates (it is no
    // longer repeated); a failing one still stops them.
    facts.status = Deploying;
    facts.items[probe_index].status = ItemStatus::Done;
    facts.items[probe_index].probe.as_mut().unwrap().latest =
        Some((now - chrono::Duration::hours(2), true, "HTTP 200".into()));
    assert_eq!(
        reason_of(&facts),
        None,
        "an old pass of a passed gate counts"
    );
    facts.items[probe_index].probe.as_mut().unwrap().latest =
        Some((now, false, "expected 200, got 503".into()));
    assert_eq!(
        reason_of(&facts),
        Some(Some("expected 200, got 503".to_owned()))
    );
}

#[test]
fn an_item_that_requires_evidence_is_done_only_with_a_link() {
    use shipshape_domain::item::{EvidenceLink, ItemActor, StoredItem, plan_item_change};
    let ctx = ItemContext {
        run_status: Preparing,
        run_closed: false,
        gate: Gate::Deploy,
        required: true,
        kind: ItemKind::Manual,
        status: ItemStatus::InProgress,
        evidence_required: true,
        record: None,
    };
    let link = EvidenceLink {
        label: "Restore log".into(),
        url: "https://ci.example/restore/7".into(),
    };
    let stored = |evidence: &'static [EvidenceLink]| StoredItem {
        id: "i",
        reference: "1.1.4",
        title: "Backup",
        version: 1,
        assignee: None,
        note: None,
        evidence,
        skip_reason: None,
        worked_by: None,
        signoffs: 0,
    };
    let actor = ItemActor {
        username: "ann",
        role: Role::Engineer,
        is_member: true,
    };
    let done = ItemChange {
        status: Some(ItemStatus::Done),
        ..ItemChange::default()
    };
    assert!(matches!(
        plan_item_change(ctx, stored(&[]), actor, &[], done.clone()),
        Err(ItemError::Invalid {
            field: "evidence",
            ..
        })
    ));
    let with_link = ItemChange {
        evidence: Some(vec![link.clone()]),
        ..done.clone()
    };
    let plan = plan_item_change(ctx, stored(&[]), actor, &[], with_link)
        .unwrap()
        .unwrap();
    assert_eq!(plan.evidence, vec![link.clone()]);
    assert_eq!(plan.event.changes.evidence.unwrap().to, vec![link]);
    // The legacy field sets the first link.
    let legacy = ItemChange {
        evidence_url: Some(Some("https://ci.example/restore/8".into())),
        ..done
    };
    let plan = plan_item_change(ctx, stored(&[]), actor, &[], legacy)
        .unwrap()
        .unwrap();
    assert_eq!(plan.evidence[0].label, "Evidence");
    assert_eq!(plan.status, ItemStatus::Done);
    let probe = ItemContext {
        kind: ItemKind::Probe,
        ..ctx
    };
    assert!(matches!(
        check_item_change(
            probe,
            Role::ReleaseManager,
            true,
            &[],
            ItemChange {
                status: Some(ItemStatus::Done),
                ..ItemChange::default()
            }
        ),
        Err(ItemError::NeedsCheck)
    ));
}
