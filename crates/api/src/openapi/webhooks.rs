//! The document's `webhooks`: one entry per kind of delivery a subscriber receives, with its
//! Standard Webhooks headers and its body (`{type, timestamp, data}`, `data` the typed event),
//! so a receiver can generate its types from the document as a client does.

use serde_json::{Map, Value, json};
use shipshape_domain::environment::EnvironmentEventType;
use shipshape_domain::event::EventType;
use shipshape_domain::webhook::TEST_EVENT_TYPE;

fn header(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": true,
        "description": description,
        "schema": { "type": "string" },
    })
}

fn operation(kind: &str, summary: &str, data: Value) -> Value {
    json!({
        "post": {
            "tags": ["webhooks"],
            "summary": summary,
            "description": format!(
                "Sent to subscriptions of `{kind}` in the `standard` format as a Standard \
                 Webhooks delivery. Verify `webhook-signature` (space-separated `v1,<base64>` \
                 signatures: HMAC-SHA256 under the subscription's secret of \
                 `<webhook-id>.<webhook-timestamp>.<body>`) before trusting the body; during a \
                 secret rotation two signatures are sent. `webhook-id` is the same on every \
                 attempt. Subscriptions in the `slack` format receive a Slack message \
                 (`text`, `blocks`) with the same headers instead."
            ),
            "parameters": [
                header("webhook-id", "The delivery's id: the same on every attempt (drop repeats)."),
                header("webhook-timestamp", "When this attempt was signed, in seconds since the Unix epoch."),
                header("webhook-signature", "Space-separated signatures, each `v1,<base64 HMAC-SHA256>`."),
            ],
            "requestBody": {
                "required": true,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["type", "timestamp", "data"],
                            "properties": {
                                "type": { "type": "string", "enum": [kind], "description": "The kind of delivery." },
                                "timestamp": { "type": "string", "format": "date-time", "description": "When the event happened." },
                                "data": data,
                            },
                            "additionalProperties": false,
                        }
                    }
                }
            },
            "responses": {
                "2XX": { "description": "Received: any 2xx answer counts as delivered. Anything else (or no answer within the timeout, or a redirect, which is not followed) is retried with backoff for about a day." }
            }
        }
    })
}

/// Adds the `webhooks` section and the `webhooks` tag.
pub fn apply(doc: &mut Value) {
    let mut hooks = Map::new();
    for kind in EventType::ALL {
        hooks.insert(
            kind.as_str().to_owned(),
            operation(
                kind.as_str(),
                kind.describe(),
                json!({ "$ref": format!("#/components/schemas/{}", kind.schema_name()) }),
            ),
        );
    }
    for kind in EnvironmentEventType::ALL {
        let summary = match kind {
            EnvironmentEventType::EnvironmentLocked => {
                "An environment was locked (by a release manager, or by the server when a run \
                 began to roll back)."
            }
            EnvironmentEventType::EnvironmentUnlocked => "An environment was unlocked.",
        };
        hooks.insert(
            kind.as_str().to_owned(),
            operation(
                kind.as_str(),
                summary,
                json!({ "$ref": "#/components/schemas/EnvironmentEvent" }),
            ),
        );
    }
    hooks.insert(
        TEST_EVENT_TYPE.to_owned(),
        operation(
            TEST_EVENT_TYPE,
            "A test event, sent on request (`POST /api/v1/webhooks/{webhook_id}/test`).",
            json!({
                "type": "object",
                "required": ["subscription_id", "message"],
                "properties": {
                    "subscription_id": { "type": "string", "description": "The subscription tested." },
                    "requested_by": { "type": ["string", "null"], "description": "Who asked for it." },
                    "message": { "type": "string", "description": "A sentence saying what this is." },
                },
                "additionalProperties": false,
            }),
        ),
    );
    doc["webhooks"] = Value::Object(hooks);
}
