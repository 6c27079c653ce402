"""Drives an EduLibra run from planned to completed and closed through a Python client
generated from openapi/openapi.json, the way a deploy script or bot would.

Usage: PYTHONPATH=<folder holding shipshape_client> python3 client_drive.py BASE_URL PASSWORD
"""

import sys

from shipshape_client import AuthenticatedClient, Client
from shipshape_client.api.auth import get_me, login
from shipshape_client.api.decisions import create_decision, list_decisions
from shipshape_client.api.events import list_events
from shipshape_client.api.items import create_signoff, update_item
from shipshape_client.api.users import create_user
from shipshape_client.api.runs import create_run, create_transition, get_run, list_runs
from shipshape_client.api.templates import create_template, list_templates
from shipshape_client.models import (
    CreateDecisionRequest,
    CreateRunRequest,
    CreateSignoffRequest,
    CreateUserRequest,
    CriterionInput,
    CriterionResult,
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
        }
    )
    created = create_template.sync(client=api, body=draft)
    check(created is not None and created.version == 1, "create_template stores version 1")

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
    check(move(TransitionAction.COMPLETE).status == RunStatus.COMPLETED, "complete")
    finish_gate("close")
    closed = move(TransitionAction.CLOSE)
    check(closed.status == RunStatus.COMPLETED and closed.closed_at is not None, "close")

    check(len(list_decisions.sync(client=api, run_id=run.id)) == 2, "two decisions recorded")
    events = list_events.sync(client=api, run_id=run.id, limit=1000)
    check([e.seq for e in events.items] == list(range(1, len(events.items) + 1)), "events in order without gaps")
    page = list_runs.sync(client=api, status=RunStatus.COMPLETED)
    check(any(r.id == run.id for r in page.items), "the run is listed as completed")
    print(f"generated client drove run {run.id} to completed and closed ({len(events.items)} events)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
