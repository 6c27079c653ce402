"""Drives an EduLibra run from planned to completed and closed (its probe items checked
against a target this script serves on localhost; an issue that holds up its completion, its
retrospective with an action item, a template proposal accepted, and its report), a second one through an override, a
waiver, a rejected sign-off, team changes and a rollback, and a third whose decision deadline
comes due, through a Python client generated from openapi/openapi.json, the way a deploy
script or bot would; then decodes every event of the logs into its typed class.

Usage: PYTHONPATH=<folder holding shipshape_client> python3 client_drive.py BASE_URL PASSWORD
"""

import datetime
import http.server
import json
import sys
import threading
import time

from shipshape_client import AuthenticatedClient, Client
from shipshape_client.api.announcements import create_announcement, get_announcement_draft
from shipshape_client.api.auth import get_me, login
from shipshape_client.api.webhooks import create_webhook
from shipshape_client.api.decisions import create_decision, list_decisions
from shipshape_client.api.events import list_events
from shipshape_client.api.environments import (
    create_freeze_window,
    get_calendar,
    get_environment,
    update_environment,
    update_environment_lock,
)
from shipshape_client.api.items import create_check, create_signoff, list_checks, update_item
from shipshape_client.api.team import create_member, delete_member
from shipshape_client.api.users import create_user
from shipshape_client.api.runs import create_run, create_transition, get_run, list_runs, update_run
from shipshape_client.api.templates import create_template, list_templates, update_template_proposal
from shipshape_client.api.records import (
    create_action_item,
    create_issue,
    create_template_proposal,
    get_run_report,
    update_action_item,
    update_issue,
    update_retrospective,
)
from shipshape_client import models
from shipshape_client.models import (
    AddMemberRequest,
    AnnouncementDraft,
    AnnouncementKind,
    AnnouncementReceipt,
    CreateWebhookRequest,
    CreatedWebhook,
    SendAnnouncementRequest,
    CreateDecisionRequest,
    CreateRunRequest,
    CreateSignoffRequest,
    CreateUserRequest,
    CriterionInput,
    CriterionResult,
    EvidenceLink,
    ProbeResult,
    ProbeResultPage,
    PutEnvironmentRequest,
    ItemStatus,
    LoginRequest,
    Outcome,
    Problem,
    Run,
    RunItem,
    Role,
    RunStatus,
    Signoff,
    TemplateDraft,
    TransitionAction,
    TransitionRequest,
    UpdateItemRequest,
    UpdateRunRequest,
    Verdict,
)


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def items(run: Run):
    for part in run.parts:
        for section in part.sections:
            yield from section.items


class Target(http.server.BaseHTTPRequestHandler):
    """What the EduLibra template's probes check: /healthz, and /version serving 4.2.0."""

    def do_GET(self):
        body = {"/healthz": {"status": "ok"}, "/version": {"version": "4.2.0"}}.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args):
        pass


def serve_target() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The server under test may reach only `localhost`.
    return f"http://localhost:{server.server_address[1]}"


def main(base_url: str, password: str) -> None:
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    token = login.sync(client=anonymous, body=LoginRequest(username="admin", password=password))
    check(token is not None and token.token_type == "Bearer", "login returns a bearer token")
    api = AuthenticatedClient(base_url=base_url, token=token.access_token, raise_on_unexpected_status=True)
    me = get_me.sync(client=api)
    check(me.username == "admin", "get_me names the signed-in user")

    # Approval items are done through sign-offs by people other than those who did the work.
    signers = {}
    for name, role in (("signing-approver", Role.APPROVER), ("signing-manager", Role.RELEASE_MANAGER)):
        secret = f"{name}-password"
        create_user.sync(client=api, body=CreateUserRequest(username=name, password=secret, role=role))
        t = login.sync(client=anonymous, body=LoginRequest(username=name, password=secret))
        signers[role] = AuthenticatedClient(base_url=base_url, token=t.access_token, raise_on_unexpected_status=True)

    draft = TemplateDraft.from_dict(
        {
            "name": "Hotfix",
            "parts": [{"title": "Checks", "sections": [{"title": "1. Before", "items": [{"title": "Backup taken", "gate": "deploy"}]}]}],
            "decision_points": [
                {"key": "go_no_go", "title": "Go/No-Go", "stage": "preparing", "criteria": ["Backup taken"],
                 "deadline_secs": 60, "default_outcome": "abort"}
            ],
        }
    )
    created = create_template.sync(client=api, body=draft)
    check(created is not None and created.version == 1, "create_template stores version 1")
    # A hotfix run whose Go/No-Go comes due while the rest of this drive goes on: its reminder
    # is logged 40 s after it starts.
    hotfix = create_run.sync(
        client=api,
        body=CreateRunRequest(template_id=created.id, product="Hotfix", release_version="1", environment="hotfix"),
    )
    create_transition.sync(client=api, run_id=hotfix.id, body=TransitionRequest(action=TransitionAction.START))
    hotfix_started = time.monotonic()

    target = serve_target()
    env = update_environment.sync(client=api, name="production", body=PutEnvironmentRequest(base_url=target))
    check(env is not None and env.base_url == target, "the environment's base URL is set")
    contact = models.EscalationContact(name="Dana Whitfield", role="Database on-call", reach="+49 30 555 0101", level=1)
    qa = update_environment.sync(client=api, name="qa", body=PutEnvironmentRequest(position=1, contacts=[contact]))
    check(isinstance(qa, models.Environment) and qa.contacts[0].name == "Dana Whitfield", "an environment's contacts")
    frozen = create_freeze_window.sync(
        client=api,
        name="qa",
        body=models.CreateFreezeRequest(
            reason="Year-end closing", recurrence=models.Recurrence.YEARLY, start="12-28", end="12-31", time_zone="Europe/Berlin"
        ),
    )
    check(isinstance(frozen, models.FreezeWindow) and frozen.recurrence == models.Recurrence.YEARLY, "a yearly freeze window")
    now = datetime.datetime.now(datetime.timezone.utc)
    calendar = get_calendar.sync(client=api, from_=now, to=now + datetime.timedelta(days=390), environment="qa")
    check(
        isinstance(calendar, models.Calendar) and any(e.kind == models.CalendarKind.FREEZE for e in calendar.entries),
        "the calendar shows the freeze",
    )

    templates = list_templates.sync(client=api)
    edulibra = next(t for t in templates if t.builtin)
    check(edulibra.item_count == 33, "the built-in template has 33 items")

    run = create_run.sync(
        client=api,
        body=CreateRunRequest(
            template_id=edulibra.id,
            product="EduLibra",
            release_version="4.2.0",
            environment="production",
            expected_downtime_minutes=15,
        ),
    )
    check(isinstance(run, Run) and run.status == RunStatus.PLANNED, "create_run returns a planned run")

    def move(action: TransitionAction):
        return create_transition.sync(client=api, run_id=run.id, body=TransitionRequest(action=action, reason="scripted"))

    def finish_gate(gate: str):
        current = get_run.sync(client=api, run_id=run.id)
        for item in items(current):
            if item.gate.value == gate and item.applicable and item.status != ItemStatus.DONE and item.approval:
                for role in item.approval.missing:
                    signoff = create_signoff.sync(
                        client=signers[role],
                        run_id=run.id,
                        item_id=item.id,
                        body=CreateSignoffRequest(verdict=Verdict.APPROVE, comment="reviewed"),
                    )
                    check(isinstance(signoff, Signoff), f"sign-off on {item.reference}")
            elif item.gate.value == gate and item.applicable and item.probe is not None:
                result = create_check.sync(client=api, run_id=run.id, item_id=item.id)
                check(isinstance(result, ProbeResult) and result.passed, f"the check of {item.reference} passes: {result}")
                page = list_checks.sync(client=api, run_id=run.id, item_id=item.id)
                check(isinstance(page, ProbeResultPage) and page.items[0].id == result.id, "the result is its evidence")
            elif item.gate.value == gate and item.applicable and item.status != ItemStatus.DONE and item.record == models.RecordKind.RETROSPECTIVE:
                check(False, f"{item.reference} is done by the retrospective, published before its gate")
            elif item.gate.value == gate and item.applicable and item.status != ItemStatus.DONE and item.evidence_required:
                done = update_item.sync(
                    client=api,
                    run_id=run.id,
                    item_id=item.id,
                    body=UpdateItemRequest(
                        status=ItemStatus.DONE,
                        evidence=[EvidenceLink(label="Backup job", url="https://ci.example/backup/1")],
                    ),
                    if_match=f'"{item.version}"',
                )
                check(isinstance(done, RunItem) and done.evidence[0].label == "Backup job", f"item {item.reference} done with evidence")
            elif item.gate.value == gate and item.applicable and item.status != ItemStatus.DONE:
                done = update_item.sync(
                    client=api,
                    run_id=run.id,
                    item_id=item.id,
                    body=UpdateItemRequest(status=ItemStatus.DONE, evidence_url="https://ci.example/job/1"),
                    if_match=f'"{item.version}"',
                )
                check(isinstance(done, RunItem) and done.status == ItemStatus.DONE, f"item {item.reference} done")

    def decide(point_key: str):
        current = get_run.sync(client=api, run_id=run.id)
        point = next(p for p in current.decision_points if p.key == point_key)
        decision = create_decision.sync(
            client=api,
            run_id=run.id,
            body=CreateDecisionRequest(
                point_key=point_key,
                outcome=Outcome.GO,
                rationale="all criteria met",
                criteria=[CriterionInput(criterion=c, result=CriterionResult.MET, observed="ok") for c in point.criteria],
            ),
        )
        check(decision is not None and decision.outcome == Outcome.GO, f"decision at {point_key}")

    check(move(TransitionAction.START).status == RunStatus.PREPARING, "start")
    # A chat channel hears the schedule (this server may reach only localhost, where nothing
    # listens: the delivery is queued and retried, which is all this drive needs).
    hook = create_webhook.sync(
        client=api,
        body=CreateWebhookRequest.from_dict(
            {"url": "http://localhost:9/chat", "format": "slack", "event_types": ["run_transitioned"]}
        ),
    )
    check(isinstance(hook, CreatedWebhook) and hook.secret.startswith("whsec_"), "a chat subscription")
    draft = get_announcement_draft.sync(client=api, run_id=run.id, kind=AnnouncementKind.SCHEDULE, offset_minutes=60)
    check(isinstance(draft, AnnouncementDraft) and "Expected downtime: about 15 minutes." in draft.body, "a drafted announcement")
    receipt = create_announcement.sync(
        client=api,
        run_id=run.id,
        body=SendAnnouncementRequest.from_dict(
            {"kind": "schedule", "subject": draft.subject, "body": draft.body, "subscription_ids": [hook.subscription.id]}
        ),
    )
    check(isinstance(receipt, AnnouncementReceipt) and receipt.seq > 1, "the announcement is in the log")
    refused = move(TransitionAction.ADVANCE)
    check(isinstance(refused, Problem) and refused.code == "gate_blocked", "a gate refusal is a problem")
    check(len(refused.blockers) == 19, "18 deploy items and the Go/No-Go decision block the deployment")

    finish_gate("deploy")
    decide("go_no_go")
    check(move(TransitionAction.ADVANCE).status == RunStatus.DEPLOYING, "advance to deploying")
    finish_gate("verify")
    check(move(TransitionAction.ADVANCE).status == RunStatus.VERIFYING, "advance to verifying")
    finish_gate("complete")
    decide("post_deployment_verification")
    # A major issue stops the completion until it is resolved.
    issue = create_issue.sync(
        client=api, run_id=run.id, body=models.CreateIssueRequest(title="Search results stale", severity=models.Severity.SEV2)
    )
    check(isinstance(issue, models.Issue) and issue.blocks_completion, "a sev2 issue blocks completion")
    refused = move(TransitionAction.COMPLETE)
    check(isinstance(refused, Problem) and refused.blockers[0].kind == "issue", "the issue is the blocker")
    resolved = update_issue.sync(
        client=api, run_id=run.id, issue_id=issue.id,
        body=models.UpdateIssueRequest(status=models.IssueStatus.RESOLVED), if_match=f'"{issue.version}"',
    )
    check(isinstance(resolved, models.Issue) and not resolved.blocks_completion, "a resolved issue no longer blocks")
    check(move(TransitionAction.COMPLETE).status == RunStatus.COMPLETED, "complete")
    # The retrospective completes its checklist items; its action item goes to a signer.
    retro = update_retrospective.sync(
        client=api, run_id=run.id,
        body=models.PutRetrospectiveRequest(lessons="Reindex before the cache warms.", status=models.RetroStatus.PUBLISHED),
    )
    check(isinstance(retro, models.Retrospective) and retro.status == models.RetroStatus.PUBLISHED, "a published retrospective")
    due = (datetime.date.today() + datetime.timedelta(days=7))
    action = create_action_item.sync(
        client=api, run_id=run.id,
        body=models.CreateActionItemRequest(title="Automate the warm-up", assignee="signing-approver", due_on=due),
    )
    check(isinstance(action, models.ActionItem) and action.due_on == due, "an action item")
    done = update_action_item.sync(
        client=api, run_id=run.id, action_id=action.id,
        body=models.UpdateActionItemRequest(status=models.ActionStatus.DONE), if_match=f'"{action.version}"',
    )
    check(isinstance(done, models.ActionItem) and done.status == models.ActionStatus.DONE, "the action item is done")
    # The lesson, proposed as the template's next version and accepted.
    answer = api.get_httpx_client().get(f"/api/v1/templates/{edulibra.id}", headers={"accept": "text/markdown"})
    markdown = answer.text.replace(
        "### 2. Monitoring and Support\n",
        "### 2. Monitoring and Support\n- [ ] Cache warm-up is verified. <!-- shipshape gate=complete -->\n",
    )
    proposal = create_template_proposal.sync(
        client=api, run_id=run.id,
        body=models.CreateProposalRequest(
            base_version=int(answer.headers["etag"].strip('"')), summary="Verify the cache warm-up", markdown=markdown
        ),
    )
    check(isinstance(proposal, models.TemplateProposal) and any(l.op == models.DiffOp.ADD for l in proposal.diff), "a proposal with its diff")
    accepted = update_template_proposal.sync(
        client=api, proposal_id=proposal.id, body=models.ReviewProposalRequest(status=models.ProposalStatus.ACCEPTED)
    )
    check(isinstance(accepted, models.TemplateProposal) and accepted.accepted_version is not None, "the proposal is accepted")
    finish_gate("close")
    closed = move(TransitionAction.CLOSE)
    check(closed.status == RunStatus.COMPLETED and closed.closed_at is not None, "close")

    check(len(list_decisions.sync(client=api, run_id=run.id)) == 2, "two decisions recorded")
    report = get_run_report.sync(client=api, run_id=run.id)
    check(isinstance(report, models.RunReport) and report.chain.verified and report.retrospective is not None,
          "the run's report, with its retrospective and a verified chain")
    events = list_events.sync(client=api, run_id=run.id, limit=1000)
    check([e.seq for e in events.items] == list(range(1, len(events.items) + 1)), "events in order without gaps")
    page = list_runs.sync(client=api, status=RunStatus.COMPLETED)
    check(any(r.id == run.id for r in page.items), "the run is listed as completed")
    print(f"generated client drove run {run.id} to completed and closed ({len(events.items)} events)")

    rolled_back = drive_a_rollback(api, signers, edulibra.id)
    # The hotfix run's deadline: reminded 40 s in, its default recorded at 60 s.
    while time.monotonic() - hotfix_started < 90:
        log = list_events.sync(client=api, run_id=hotfix.id, limit=1000)
        if any(e.type_.value == "decision_recorded" for e in log.items):
            break
        time.sleep(1)
    aborted = get_run.sync(client=api, run_id=hotfix.id)
    check(aborted.status == RunStatus.ABORTED, f"the hotfix's deadline recorded its default, abort: {aborted.status}")
    kinds = set()
    for run_id in (run.id, rolled_back, hotfix.id):
        kinds |= decode_events(api, run_id)
    every_kind = {k.value for k in models.EventType}
    check(set(TYPED) == every_kind, f"this drive knows every kind the document declares: {every_kind ^ set(TYPED)}")
    check(kinds == every_kind, f"both logs hold every kind of event: missing {every_kind - kinds}")
    print(f"every event of both logs decoded into its typed class ({len(kinds)} kinds)")


# Each event type's typed classes in the generated client: the event and its payload.
TYPED = {
    "run_created": ("RunCreatedEvent", "RunCreated"),
    "run_updated": ("RunUpdatedEvent", "RunUpdated"),
    "run_transitioned": ("RunTransitionedEvent", "RunTransitioned"),
    "item_updated": ("ItemUpdatedEvent", "ItemUpdated"),
    "decision_recorded": ("DecisionRecordedEvent", "DecisionRecorded"),
    "run_overridden": ("RunOverriddenEvent", "RunOverridden"),
    "member_added": ("MemberAddedEvent", "MemberChanged"),
    "member_removed": ("MemberRemovedEvent", "MemberChanged"),
    "signoff_recorded": ("SignoffRecordedEvent", "SignoffRecorded"),
    "announcement_sent": ("AnnouncementSentEvent", "AnnouncementSent"),
    "probe_checked": ("ProbeCheckedEvent", "ProbeChecked"),
    "decision_due": ("DecisionDueEvent", "DecisionDue"),
    "issue_logged": ("IssueLoggedEvent", "IssueLogged"),
    "issue_updated": ("IssueUpdatedEvent", "IssueUpdated"),
    "retrospective_saved": ("RetrospectiveSavedEvent", "RetrospectiveSaved"),
    "action_item_created": ("ActionItemCreatedEvent", "ActionItemChanged"),
    "action_item_updated": ("ActionItemUpdatedEvent", "ActionItemChanged"),
    "template_proposed": ("TemplateProposedEvent", "TemplateProposed"),
    "proposal_reviewed": ("ProposalReviewedEvent", "ProposalReviewed"),
}


def decode_events(api, run_id: str) -> set:
    """Every event of a run's log is its own typed class with a typed payload: no dict, no
    untyped fallback. Returns the kinds seen."""
    page = list_events.sync(client=api, run_id=run_id, limit=1000)
    kinds = set()
    for event in page.items:
        kind = event.type_.value
        event_class, payload_class = TYPED[kind]
        check(type(event).__name__ == event_class, f"event {event.seq} decodes as {event_class}, not {type(event).__name__}")
        check(type(event.payload).__name__ == payload_class, f"event {event.seq} payload decodes as {payload_class}")
        check(not event.additional_properties and not event.payload.additional_properties,
              f"event {event.seq} has no fields outside its schema")
        check(len(event.hash_) == 64 and len(event.prev_hash) == 64, f"event {event.seq} carries its hashes")
        kinds.add(kind)
    by_kind = {e.type_.value: e for e in page.items}
    if "item_updated" in by_kind:
        changes = by_kind["item_updated"].payload.changes
        check(isinstance(changes, models.ItemChanges), "item changes are typed")
    if "decision_recorded" in by_kind:
        criteria = by_kind["decision_recorded"].payload.criteria
        check(all(isinstance(c, models.CriterionAssessment) for c in criteria), "criteria are typed")
    return kinds


def drive_a_rollback(api, signers, template_id: str) -> str:
    """A run that is changed, staffed, forced past its gate, waived, rejected, and rolled
    back: every other kind of event."""
    run = create_run.sync(
        client=api,
        body=CreateRunRequest(template_id=template_id, product="EduLibra", release_version="4.3.0", environment="staging"),
    )
    check(isinstance(run, Run), "a second run")
    updated = update_run.sync(client=api, run_id=run.id, body=UpdateRunRequest(expected_downtime_minutes=30))
    check(isinstance(updated, Run), "the run's schedule changes")
    create_member.sync(client=api, run_id=run.id, body=AddMemberRequest(username="signing-approver", run_role="reviewer"))
    create_member.sync(client=api, run_id=run.id, body=AddMemberRequest(username="signing-manager", run_role="lead"))
    members = {m.username: m for m in get_run.sync(client=api, run_id=run.id).members}
    delete_member.sync_detailed(client=api, run_id=run.id, user_id=members["signing-manager"].user_id)

    current = get_run.sync(client=api, run_id=run.id)
    required = next(i for i in items(current) if i.required and not i.approval and i.gate.value == "deploy")
    waived = update_item.sync(
        client=api,
        run_id=run.id,
        item_id=required.id,
        body=UpdateItemRequest(status=ItemStatus.SKIPPED, reason="covered by the 4.2.0 run"),
    )
    check(isinstance(waived, RunItem) and waived.status == ItemStatus.SKIPPED, "a waiver")
    approval = next(i for i in items(current) if i.approval and Role.APPROVER in i.approval.missing)
    worked = update_item.sync(
        client=api, run_id=run.id, item_id=approval.id, body=UpdateItemRequest(note="scripts written")
    )
    check(isinstance(worked, RunItem), "work on an approval item")
    rejected = create_signoff.sync(
        client=signers[Role.APPROVER],
        run_id=run.id,
        item_id=approval.id,
        body=CreateSignoffRequest(verdict=Verdict.REJECT, comment="the down migration is missing"),
    )
    check(isinstance(rejected, Signoff) and rejected.verdict == Verdict.REJECT, "a rejected sign-off")

    started = create_transition.sync(client=api, run_id=run.id, body=TransitionRequest(action=TransitionAction.START))
    check(started.status == RunStatus.PREPARING, "start")
    forced = create_transition.sync(
        client=api,
        run_id=run.id,
        body=TransitionRequest(action=TransitionAction.ADVANCE, force=True, reason="hotfix for a live outage"),
    )
    check(isinstance(forced, Run) and forced.status == RunStatus.DEPLOYING, "a forced advance")
    rollback = create_decision.sync(
        client=api,
        run_id=run.id,
        body=CreateDecisionRequest(point_key="deployment_checkpoint", outcome=Outcome.ROLLBACK, rationale="error rate 7%"),
    )
    check(rollback is not None and rollback.outcome == Outcome.ROLLBACK, "a rollback decision")
    finished = create_transition.sync(
        client=api, run_id=run.id, body=TransitionRequest(action=TransitionAction.FINISH_ROLLBACK)
    )
    check(finished.status == RunStatus.ROLLED_BACK, "rolled back")
    staging = get_environment.sync(client=api, name="staging")
    check(
        isinstance(staging, models.Environment) and staging.lock is not None and staging.lock.locked_by == "system",
        "the rollback locked its environment",
    )
    lifted = update_environment_lock.sync(
        client=api, name="staging", lock_id=staging.lock.id, body=models.UnlockEnvironmentRequest(note="root cause understood")
    )
    check(isinstance(lifted, models.EnvironmentLock) and lifted.unlocked_by == "admin", "unlocked with a note")
    return run.id


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
