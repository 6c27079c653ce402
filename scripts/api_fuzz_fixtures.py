"""Creates what the API fuzz run needs: an admin token, a template, a run with its items and an
issue, a user, an API token, and a template proposal; writes the token and a schemathesis configuration that pins the path
parameters to them. Standard library only.

Usage: api_fuzz_fixtures.py BASE_URL ADMIN_PASSWORD OUT_DIR
"""

import json
import os
import sys
import urllib.request

base, password, out = sys.argv[1], sys.argv[2], sys.argv[3]


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or b"null")


token = call("POST", "/api/v1/auth/login", {"username": "admin", "password": password})["access_token"]
template = call(
    "POST",
    "/api/v1/templates",
    {
        "name": "Fuzz target",
        "parts": [{"title": "Part", "sections": [{"title": "1. Section", "items": [
            {"title": "Manual item", "gate": "deploy"},
            {"title": "Approval item", "gate": "deploy", "kind": "approval"},
        ]}]}],
        "decision_points": [{"key": "go_no_go", "title": "Go/No-Go", "stage": "preparing", "criteria": ["All green"]}],
    },
    token,
)
run = call(
    "POST",
    "/api/v1/runs",
    {"template_id": template["id"], "product": "Fuzz", "release_version": "1", "environment": "fuzz"},
    token,
)
item = run["parts"][0]["sections"][0]["items"][0]
user = call("POST", "/api/v1/users", {"username": "fuzz-user", "password": "fuzz-user-password", "role": "engineer"}, token)
api_token = call("POST", "/api/v1/tokens", {"name": "fuzz", "scopes": ["runs:read"], "expires_in_days": 1}, token)
# A webhook to localhost port 9, where nothing listens (the server allows only localhost here).
webhook = call(
    "POST",
    "/api/v1/webhooks",
    {"url": "http://localhost:9/hook", "event_types": ["run_created", "item_updated"]},
    token,
)["subscription"]
delivery = call("POST", f"/api/v1/webhooks/{webhook['id']}/test", {}, token)
# An issue of the run, and a template proposal from a second run that was aborted (a
# proposal comes from a finished run).
issue = call("POST", f"/api/v1/runs/{run['id']}/issues", {"title": "Fuzz issue", "severity": "sev3"}, token)
done = call(
    "POST",
    "/api/v1/runs",
    {"template_id": template["id"], "product": "Fuzz", "release_version": "2", "environment": "fuzz-done"},
    token,
)
call("POST", f"/api/v1/runs/{done['id']}/transitions", {"action": "abort", "reason": "fuzz"}, token)
req = urllib.request.Request(base + f"/api/v1/templates/{template['id']}")
req.add_header("accept", "text/markdown")
req.add_header("authorization", "Bearer " + token)
with urllib.request.urlopen(req) as res:
    markdown = res.read().decode()
proposal = call(
    "POST",
    f"/api/v1/runs/{done['id']}/template-proposals",
    {"base_version": template["version"], "summary": "Fuzz", "markdown": markdown.replace("Manual item", "Manual item, reworded")},
    token,
)

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "token"), "w") as f:
    f.write(token)
with open(os.path.join(out, "schemathesis.toml"), "w") as f:
    f.write(
        f"""max-stream-events = 1

[parameters]
"path.run_id" = "{run['id']}"
"path.item_id" = "{item['id']}"
"path.user_id" = "{user['id']}"
"path.template_id" = "{template['id']}"
"path.token_id" = "{api_token['token']['id']}"
"path.webhook_id" = "{webhook['id']}"
"path.delivery_id" = "{delivery['id']}"
"path.issue_id" = "{issue['id']}"
"path.proposal_id" = "{proposal['id']}"

# A stream follows the log until the client leaves: read what is there, then leave.
[[operations]]
include-operation-id = ["get_event_stream", "get_all_events_stream"]
request-timeout = 1

# A stale ETag is answered 412, and a change the rules refuse in the run's current state 409:
# both are right for values the document allows, which cannot know the run's state.
# (And 422 for an Idempotency-Key that the generator sends again with another request.)
[[operations]]
include-operation-id = ["create_transition"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 412, 422, 429]

# Every POST takes an Idempotency-Key: one the generator sends again with another request is
# refused 422 (`idempotency_key_reused`), and one the other worker is still being served
# with 409 (`idempotency_key_in_use`). (The operations below list both already.)
[[operations]]
include-operation-id = ["create_signoff", "create_token", "create_user", "create_webhook_secret", "create_test_delivery"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 422, 429]

# These also answer 422 for what a schema cannot say: a window that ends before it starts
# (across two fields, or against the stored run), a decision point or a team member that this
# run does not have, a template version that does not exist, the structure of a Markdown
# document, a webhook target the outbound guard refuses, a redelivery to an inactive
# subscription, a delivery-log cursor that is not one of the subscription's deliveries, and
# an announcement of a kind the run's stage does not allow, or to a subscription that is not
# an active one, a check of an item that is not a probe (the pinned item is a manual one), an
# environment name outside the text rule of names, an issue's owner not on the team or items
# not of the run, an action item's assignee who is not an active user or a due date in the
# past, and a template proposal's Markdown that is not a template, a freeze window's times
# in its recurrence's form (or one that overlaps another, or never occurs), a lock's end
# that is not in the future, a calendar period that ends before it starts, an insights period
# that is empty, longer than two years or before 1970 (or a product, environment or item
# reference outside the text rule of names), and a commit time in the future; and 409 for
# records of a run that is not finished (the pinned run is planned), an environment that
# runs name (deleted) or that is locked already, and a lock lifted already. Every value the document forbids must
# still be refused, and none may be a 5xx.
[[operations]]
include-operation-id = ["create_run", "update_run", "update_item", "create_decision", "create_claim", "create_member", "create_template", "create_template_version", "create_webhook", "update_webhook", "create_redelivery", "list_deliveries", "create_announcement", "create_check", "list_checks", "update_environment", "create_issue", "update_issue", "update_retrospective", "create_action_item", "update_action_item", "create_template_proposal", "update_template_proposal", "delete_environment", "create_environment_lock", "update_environment_lock", "create_freeze_window", "get_calendar", "get_delivery_insights", "get_checklist_insights", "list_item_insight_runs"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 412, 422, 429]
"""
    )
