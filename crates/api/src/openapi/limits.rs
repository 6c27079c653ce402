//! The limits the server enforces, stated in the document, so that a generated client can
//! check a request before it sends it and a fuzzer finds no value the document allows and the
//! server refuses.
//!
//! utoipa's attributes take only literal patterns, and some rules need keywords it does not
//! model on a struct (`anyOf`, `if`/`then`); so the limits are applied here, to the JSON of
//! the generated document, built from the domain's own constants and character rules. A field
//! named here that the document no longer has fails the OpenAPI test (`apply` reports it).

use serde_json::{Map, Value, json};
use shipshape_domain::announcement::MAX_RECIPIENTS;
use shipshape_domain::decision::{MAX_OBSERVED_LEN, MAX_RATIONALE_LEN};
use shipshape_domain::role::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use shipshape_domain::run::MAX_DOWNTIME_MINUTES;
use shipshape_domain::template::{
    MAX_APPROVERS, MAX_CRITERIA, MAX_DECISION_POINTS, MAX_LINE_LEN, MAX_PARTS, MAX_PROSE_BLOCKS,
    MAX_SECTION_ITEMS, MAX_SECTIONS, MAX_TEXT_LEN,
};
use shipshape_domain::text::{EmailAddress, MAX_EMAIL_LEN};
use shipshape_domain::text::{HttpUrl, Label, Note, TextRule, Username, pattern_class};
use shipshape_domain::webhook::MAX_EVENT_TYPES;

use crate::routes::tokens::MAX_TOKEN_DAYS;

/// A template's one-line text (names, titles, criteria): kept verbatim, so no white space at
/// either end, and never an HTML comment marker (it would break the Markdown form).
fn template_line() -> Value {
    let f = pattern_class(&[]);
    json!({
        "minLength": 1,
        "maxLength": MAX_LINE_LEN,
        "pattern": format!("^(?!.*(?:<!--|-->))[^\\s{f}](?:[^{f}]*[^\\s{f}])?$"),
    })
}

/// A template's multi-line text (guidance, prose): verbatim, newlines only, no line ending in
/// white space, and no line that Markdown would read as a heading or an item.
fn template_text() -> Value {
    let f = pattern_class(&['\n']);
    json!({
        "minLength": 1,
        "maxLength": MAX_TEXT_LEN,
        "pattern": format!(
            "^(?![\\s\\S]*(?:<!--|-->))(?![\\s\\S]*(?:^|\\n)[^\\S\\n]*(?:#|- \\[))\
             (?![\\s\\S]*[^\\S\\n](?:\\n|$))[^\\s{f}](?:[^{f}]*[^\\s{f}])?$"
        ),
    })
}

fn password() -> Value {
    json!({
        "minLength": MIN_PASSWORD_LEN,
        "maxLength": MAX_PASSWORD_LEN,
        "pattern": "^[^\\u0000]*$",
    })
}

fn items(min: usize, max: usize) -> Value {
    json!({"minItems": min, "maxItems": max})
}

/// An `If-Match` value: `*` or one ETag this API gives out (empty, like absent, sets no
/// condition).
fn if_match() -> Value {
    json!({"type": "string", "pattern": "^(?:|\\*|(?:W/)?\"[0-9]+\")$"})
}

/// A run list cursor as the API returns it: a creation time in microseconds since 1970 (at
/// most 16 digits: before the year 2287, so every cursor of this form is one the server takes)
/// and a run's id.
fn cursor() -> Value {
    json!({
        "type": "string",
        "pattern": "^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    })
}

/// The value at `path`, if the document has it (indexing would add what it lacks).
fn at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, key| v.get_mut(*key))
}

/// Merges `extra` into the object at `target`.
fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// Applies every limit to the document; returns the places it names that the document does
/// not have (none, when the two agree).
pub fn apply(doc: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    let downtime = json!({"minimum": 0, "maximum": MAX_DOWNTIME_MINUTES});
    let url = HttpUrl::schema();
    let label = || Label::RULE.schema(true);
    let text = Note::RULE.schema(false);
    let commit_sha = json!({"pattern": "^[0-9a-fA-F]{4,64}$"});
    let fields: Vec<(&str, &str, Value)> = vec![
        ("LoginRequest", "username", json!({"minLength": 1})),
        ("CreateUserRequest", "username", Username::schema()),
        ("CreateUserRequest", "password", password()),
        ("ChangePasswordRequest", "new_password", password()),
        ("CreateTokenRequest", "name", label()),
        ("CreateTokenRequest", "scopes", json!({"minItems": 1})),
        (
            "CreateTokenRequest",
            "expires_in_days",
            json!({"minimum": 1, "maximum": MAX_TOKEN_DAYS}),
        ),
        ("AddMemberRequest", "username", Username::schema()),
        ("AddMemberRequest", "run_role", label()),
        ("CreateRunRequest", "template_id", json!({"format": "uuid"})),
        (
            "CreateRunRequest",
            "template_version",
            json!({"minimum": 1}),
        ),
        ("CreateRunRequest", "product", label()),
        ("CreateRunRequest", "release_version", label()),
        ("CreateRunRequest", "environment", label()),
        (
            "CreateRunRequest",
            "expected_downtime_minutes",
            downtime.clone(),
        ),
        ("UpdateRunRequest", "release_version", label()),
        ("UpdateRunRequest", "expected_downtime_minutes", downtime),
        ("CreateRunRequest", "commit_sha", commit_sha.clone()),
        ("UpdateRunRequest", "commit_sha", commit_sha),
        ("UpdateItemRequest", "assignee", Label::RULE.schema(false)),
        ("UpdateItemRequest", "note", text.clone()),
        ("UpdateItemRequest", "reason", text.clone()),
        (
            "UpdateItemRequest",
            "evidence_url",
            // White space alone clears it, as the server trims it (Rust's white space: not the
            // control characters U+001C–U+001F that Python's `\s` also takes).
            json!({"anyOf": [
                url,
                {"type": "string", "pattern": "^[^\\S\\u001c-\\u001f]*$"},
                {"type": "null"},
            ]}),
        ),
        (
            "UpdateItemRequest",
            "evidence",
            json!({"maxItems": shipshape_domain::item::MAX_EVIDENCE_LINKS}),
        ),
        ("EvidenceLink", "label", label()),
        ("EvidenceLink", "url", HttpUrl::schema()),
        (
            "PutEnvironmentRequest",
            "base_url",
            // White space alone removes it, as the server trims it.
            json!({"anyOf": [
                HttpUrl::schema(),
                {"type": "string", "pattern": "^[^\\S\\u001c-\\u001f]*$"},
                {"type": "null"},
            ]}),
        ),
        (
            "PutEnvironmentRequest",
            "description",
            TextRule::prose(shipshape_domain::environment::MAX_DESCRIPTION_LEN).schema(false),
        ),
        (
            "PutEnvironmentRequest",
            "position",
            json!({"minimum": 0, "maximum": shipshape_domain::environment::MAX_POSITION}),
        ),
        (
            "PutEnvironmentRequest",
            "promotes_from",
            Label::RULE.schema(false),
        ),
        (
            "PutEnvironmentRequest",
            "dashboards",
            json!({"maxItems": shipshape_domain::environment::MAX_DASHBOARDS}),
        ),
        (
            "PutEnvironmentRequest",
            "contacts",
            json!({"maxItems": shipshape_domain::environment::MAX_CONTACTS}),
        ),
        ("EnvironmentLink", "label", label()),
        ("EnvironmentLink", "url", HttpUrl::schema()),
        ("EscalationContact", "name", label()),
        ("EscalationContact", "role", label()),
        ("EscalationContact", "reach", label()),
        (
            "EscalationContact",
            "level",
            json!({"minimum": 1, "maximum": shipshape_domain::environment::MAX_ESCALATION_LEVEL}),
        ),
        ("EscalationContact", "hours", Label::RULE.schema(false)),
        ("LockEnvironmentRequest", "reason", Note::RULE.schema(true)),
        ("UnlockEnvironmentRequest", "note", Note::RULE.schema(true)),
        ("CreateFreezeRequest", "reason", Note::RULE.schema(true)),
        (
            "CreateFreezeRequest",
            "start",
            json!({"minLength": 1, "maxLength": 64}),
        ),
        (
            "CreateFreezeRequest",
            "end",
            json!({"minLength": 1, "maxLength": 64}),
        ),
        ("CreateFreezeRequest", "time_zone", json!({"maxLength": 64})),
        (
            "CreateFreezeRequest",
            "until",
            json!({"pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
        ),
        (
            "ProbeSpec",
            "url",
            json!({"minLength": 1, "maxLength": shipshape_domain::text::MAX_URL_LEN, "pattern": "^(https?://|\\{base_url\\})"}),
        ),
        (
            "ProbeSpec",
            "status",
            json!({"minimum": 100, "maximum": 599}),
        ),
        (
            "ProbeSpec",
            "max_latency_ms",
            json!({"minimum": 1, "maximum": shipshape_domain::probe::MAX_LATENCY_MS}),
        ),
        (
            "ProbeSpec",
            "ttl_secs",
            json!({"minimum": shipshape_domain::probe::MIN_INTERVAL_SECS, "maximum": shipshape_domain::probe::MAX_TTL_SECS}),
        ),
        (
            "ProbeSpec",
            "every_secs",
            json!({"minimum": shipshape_domain::probe::MIN_INTERVAL_SECS, "maximum": shipshape_domain::probe::MAX_TTL_SECS}),
        ),
        (
            "DecisionPointSpec",
            "deadline_secs",
            json!({"minimum": shipshape_domain::template::MIN_DEADLINE_SECS, "maximum": shipshape_domain::template::MAX_DEADLINE_SECS}),
        ),
        ("TransitionRequest", "reason", text.clone()),
        ("CreateSignoffRequest", "comment", text),
        (
            "CreateDecisionRequest",
            "rationale",
            TextRule::prose(MAX_RATIONALE_LEN).schema(true),
        ),
        (
            "CreateDecisionRequest",
            "point_key",
            json!({"pattern": "^[a-z0-9_-]{1,64}$"}),
        ),
        (
            "CriterionInput",
            "observed",
            TextRule::prose(MAX_OBSERVED_LEN).schema(false),
        ),
        ("TemplateDraft", "name", template_line()),
        ("TemplateDraft", "title", template_line()),
        ("TemplateDraft", "parts", items(1, MAX_PARTS)),
        ("TemplateDraft", "preamble", items(0, MAX_PROSE_BLOCKS)),
        ("TemplateDraft", "epilogue", items(0, MAX_PROSE_BLOCKS)),
        (
            "TemplateDraft",
            "decision_points",
            items(0, MAX_DECISION_POINTS),
        ),
        ("Part", "title", template_line()),
        ("Part", "sections", items(1, MAX_SECTIONS)),
        ("Section", "title", template_line()),
        ("Section", "items", items(1, MAX_SECTION_ITEMS)),
        ("ItemSpec", "title", template_line()),
        ("ItemSpec", "guidance", template_text()),
        ("ItemSpec", "approvers", items(0, MAX_APPROVERS)),
        (
            "DecisionPointSpec",
            "key",
            json!({"minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9_-]+$"}),
        ),
        ("DecisionPointSpec", "title", template_line()),
        ("DecisionPointSpec", "criteria", items(0, MAX_CRITERIA)),
        ("CreateIssueRequest", "title", label()),
        ("CreateIssueRequest", "owner", Label::RULE.schema(false)),
        ("CreateIssueRequest", "notes", Note::RULE.schema(false)),
        (
            "CreateIssueRequest",
            "item_ids",
            items(0, shipshape_domain::records::MAX_ISSUE_ITEMS),
        ),
        ("UpdateIssueRequest", "title", label()),
        ("UpdateIssueRequest", "owner", Label::RULE.schema(false)),
        ("UpdateIssueRequest", "notes", Note::RULE.schema(false)),
        (
            "UpdateIssueRequest",
            "item_ids",
            items(0, shipshape_domain::records::MAX_ISSUE_ITEMS),
        ),
        (
            "UpdateIssueRequest",
            "accepted_reason",
            Note::RULE.schema(true),
        ),
        (
            "PutRetrospectiveRequest",
            "went_well",
            Note::RULE.schema(false),
        ),
        (
            "PutRetrospectiveRequest",
            "went_badly",
            Note::RULE.schema(false),
        ),
        (
            "PutRetrospectiveRequest",
            "root_cause",
            Note::RULE.schema(false),
        ),
        (
            "PutRetrospectiveRequest",
            "lessons",
            Note::RULE.schema(false),
        ),
        ("CreateActionItemRequest", "title", label()),
        ("CreateActionItemRequest", "assignee", Username::schema()),
        ("UpdateActionItemRequest", "title", label()),
        ("UpdateActionItemRequest", "assignee", Username::schema()),
        ("CreateProposalRequest", "summary", label()),
        (
            "CreateProposalRequest",
            "base_version",
            json!({"minimum": 1}),
        ),
        ("ReviewProposalRequest", "reason", Note::RULE.schema(false)),
        ("CreateWebhookRequest", "url", HttpUrl::schema()),
        (
            "CreateWebhookRequest",
            "description",
            Label::RULE.schema(false),
        ),
        ("CreateWebhookRequest", "product", Label::RULE.schema(false)),
        (
            "CreateWebhookRequest",
            "environment",
            Label::RULE.schema(false),
        ),
        (
            "CreateWebhookRequest",
            "event_types",
            items(1, MAX_EVENT_TYPES),
        ),
        (
            "UpdateWebhookRequest",
            "url",
            json!({"anyOf": [HttpUrl::schema(), {"type": "null"}]}),
        ),
        (
            "UpdateWebhookRequest",
            "description",
            Label::RULE.schema(false),
        ),
        ("UpdateWebhookRequest", "product", Label::RULE.schema(false)),
        (
            "UpdateWebhookRequest",
            "environment",
            Label::RULE.schema(false),
        ),
        (
            "UpdateWebhookRequest",
            "event_types",
            items(1, MAX_EVENT_TYPES),
        ),
        (
            "UpdateNotificationsRequest",
            "email",
            // An empty string removes the address.
            json!({"anyOf": [
                {"type": "string", "maxLength": MAX_EMAIL_LEN, "pattern": EmailAddress::schema()["pattern"]},
                {"type": "string", "maxLength": 0},
                {"type": "null"},
            ]}),
        ),
        ("SendAnnouncementRequest", "subject", label()),
        ("SendAnnouncementRequest", "body", Note::RULE.schema(true)),
        (
            "SendAnnouncementRequest",
            "recipients",
            json!({"maxItems": MAX_RECIPIENTS, "items": {"type": "string", "maxLength": MAX_EMAIL_LEN, "pattern": EmailAddress::schema()["pattern"]}}),
        ),
        (
            "SendAnnouncementRequest",
            "subscription_ids",
            json!({"maxItems": MAX_RECIPIENTS}),
        ),
        ("ProseBlock", "heading", template_line()),
        ("ProseBlock", "body", template_text()),
    ];
    for (schema, field, limits) in fields {
        let Some(target) = at(doc, &["components", "schemas", schema, "properties", field]) else {
            missing.push(format!("{schema}.{field}"));
            continue;
        };
        if limits.get("anyOf").is_some() {
            // The field's own type is replaced by the alternatives.
            let description = target["description"].clone();
            *target = limits;
            target["description"] = description;
        } else {
            merge(target, &limits);
        }
    }
    let criteria = [
        "components",
        "schemas",
        "DecisionPointSpec",
        "properties",
        "criteria",
    ];
    match at(doc, &criteria).and_then(|c| c.get_mut("items")) {
        Some(items) => merge(items, &template_line()),
        None => missing.push("DecisionPointSpec.criteria".into()),
    }

    // Changes must change something; a skip, a forced transition and a rejection must say why.
    // (`minProperties` rather than an `anyOf` of the fields that count: client generators
    // drop an object schema that has one.)
    let non_blank = || {
        let mut v = Note::RULE.schema(true);
        v["type"] = json!("string");
        v
    };
    let whole: Vec<(&str, Value)> = vec![
        ("UpdateUserRequest", json!({"minProperties": 1})),
        (
            "UpdateItemRequest",
            json!({
                "minProperties": 1,
                "if": {"required": ["status"], "properties": {"status": {"const": "skipped"}}},
                "then": {"required": ["reason"], "properties": {"reason": non_blank()}},
            }),
        ),
        ("UpdateRunRequest", json!({"minProperties": 1})),
        (
            "TransitionRequest",
            json!({
                "if": {"required": ["force"], "properties": {"force": {"const": true}}},
                "then": {"required": ["reason"], "properties": {"reason": non_blank()}},
            }),
        ),
        (
            "CreateSignoffRequest",
            json!({
                "if": {"properties": {"verdict": {"const": "reject"}}},
                "then": {"required": ["comment"], "properties": {"comment": non_blank()}},
            }),
        ),
    ];
    for (schema, extra) in whole {
        match at(doc, &["components", "schemas", schema]) {
            Some(target) => merge(target, &extra),
            None => missing.push(schema.to_owned()),
        }
    }

    // Parameters and headers.
    let mut seen = Map::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for op in ops.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for p in params {
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    let schema = match name.as_str() {
                        "If-Match" => if_match(),
                        "cursor" => cursor(),
                        "Last-Event-ID" => {
                            json!({"type": "integer", "format": "int64", "minimum": 0})
                        }
                        "product" | "environment" if p["in"] == "query" => {
                            let mut v = label();
                            v["type"] = json!("string");
                            v
                        }
                        // An environment's name, in its path.
                        "name" if p["in"] == "path" => {
                            let mut v = label();
                            v["type"] = json!("string");
                            v
                        }
                        "runs" if p["in"] == "query" => {
                            let id = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
                            json!({"type": "string", "pattern": format!("^{id}(?:,{id}){{0,99}}$")})
                        }
                        "version" if p["in"] == "query" => {
                            json!({"type": "integer", "format": "int32", "minimum": 1})
                        }
                        _ => continue,
                    };
                    seen.insert(name, Value::Bool(true));
                    p["schema"] = schema;
                }
            }
        }
    }
    for name in [
        "If-Match",
        "cursor",
        "Last-Event-ID",
        "product",
        "environment",
        "name",
        "runs",
        "version",
    ] {
        if !seen.contains_key(name) {
            missing.push(format!("parameter {name}"));
        }
    }

    // An event stream is a sequence of Server-Sent Events, each with its `data` an `Event`;
    // the all-runs stream opens with a `ready` message naming its starting position.
    let event = json!({"$ref": "#/components/schemas/EventType"});
    let data = |schema: Value| json!({"type": "string", "contentMediaType": "application/json", "contentSchema": schema});
    let run_event = json!({"$ref": "#/components/schemas/Event"});
    let ready = json!({
        "type": "object",
        "required": ["position"],
        "properties": {"position": {"type": "integer", "format": "int64", "minimum": 0}},
    });
    let streams = [
        (
            "/api/v1/runs/{run_id}/events/stream",
            "One Server-Sent Event: `id` is the event's sequence number, `event` its type, `data` the event as JSON; the first message only sets `retry`.",
            event.clone(),
            data(run_event.clone()),
        ),
        (
            "/api/v1/events/stream",
            "One Server-Sent Event: `id` is the event's position in the all-runs log, `event` its type, `data` the event as JSON. The first message only sets `retry`; the second is `ready`, with `data` `{\"position\": …}` and `id` the position the stream starts after.",
            json!({"anyOf": [event, {"type": "string", "const": "ready"}]}),
            data(json!({"anyOf": [run_event, ready]})),
        ),
    ];
    for (path, description, event, data) in streams {
        let content = [
            "paths",
            path,
            "get",
            "responses",
            "200",
            "content",
            "text/event-stream",
        ];
        match at(doc, &content) {
            Some(content) => {
                content["schema"] = json!({
                    "type": "object",
                    "description": description,
                    "properties": {
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "event": event,
                        "retry": {"type": "integer"},
                        "data": data,
                    },
                });
            }
            None => missing.push(format!("the response of {path}")),
        }
    }
    missing
}
