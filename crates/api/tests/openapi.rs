//! The committed OpenAPI document must be exactly what the code generates, and must meet the
//! house rules: every operation has an operationId, a tag, a summary, error responses and a
//! security requirement; every schema property has a description.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::Value;

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json");
    std::fs::read_to_string(path).expect("openapi/openapi.json exists (run `just openapi`)")
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = shipshape_api::openapi::document_json();
    assert!(
        committed().trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `just openapi` and commit the result"
    );
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn every_operation_is_documented_with_id_tag_summary_errors_and_security() {
    let doc: Value = serde_json::from_str(&shipshape_api::openapi::document_json()).expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let ops = operations(&doc);
    assert!(ops.len() >= 19, "all operations are in the document");
    for (path, method, op) in ops {
        let name = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: operationId"));
        assert!(
            [
                "get_", "list_", "create_", "update_", "delete_", "login", "logout", "healthz",
                "readyz",
            ]
            .iter()
            .any(|p| id.starts_with(p)),
            "{name}: operationId `{id}` is <verb>_<resource>"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{name}: tag"
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: summary"
        );
        assert!(op["security"].is_array(), "{name}: security requirement");
        let responses = op["responses"].as_object().expect("responses");
        let scoped = op["security"][0]["bearer"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if scoped {
            assert!(
                responses.contains_key("403"),
                "{name}: documents 403 for a missing role or scope"
            );
        }
        if path.starts_with("/api/v1") {
            assert!(
                responses.keys().any(|k| k.starts_with('4')),
                "{name}: documents its error responses"
            );
        }
        for (code, r) in responses {
            assert!(
                r["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name} {code}: description"
            );
            if code.starts_with('4') || code.starts_with('5') {
                assert!(
                    r["content"]["application/problem+json"].is_object(),
                    "{name} {code}: a problem+json body"
                );
            }
        }
    }
}

#[test]
fn every_schema_property_has_a_description() {
    let doc: Value = serde_json::from_str(&shipshape_api::openapi::document_json()).expect("json");
    let mut missing = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        let mut stack = vec![schema.clone()];
        while let Some(s) = stack.pop() {
            if let Some(props) = s["properties"].as_object() {
                for (prop, p) in props {
                    // A serde tag (`"kind": {"enum": ["item"]}`) names its variant itself.
                    let discriminator = p["enum"].as_array().is_some_and(|e| e.len() == 1);
                    let described = discriminator
                        || p["description"].is_string()
                        || p["allOf"].is_array()
                        || p["oneOf"]
                            .as_array()
                            .is_some_and(|v| v.iter().any(|x| x["description"].is_string()));
                    if !described {
                        missing.push(format!("{name}.{prop}"));
                    }
                }
            }
            for key in ["oneOf", "allOf", "anyOf"] {
                if let Some(v) = s[key].as_array() {
                    stack.extend(v.iter().cloned());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:?}"
    );
}

#[test]
fn the_document_states_the_limits_the_server_enforces() {
    let doc = shipshape_api::openapi::document_value();
    assert!(
        doc.get("x-missing-limits").is_none(),
        "limits name fields the document no longer has: {}",
        doc["x-missing-limits"]
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CreateUserRequest"]["properties"]["password"]["minLength"],
        shipshape_domain::role::MIN_PASSWORD_LEN
    );
    assert_eq!(
        schemas["CreateRunRequest"]["properties"]["product"]["maxLength"],
        shipshape_domain::text::MAX_LABEL_LEN
    );
    assert_eq!(schemas["UpdateRunRequest"]["minProperties"], 1);
    assert_eq!(
        schemas["TemplateDraft"]["properties"]["parts"]["maxItems"],
        shipshape_domain::template::MAX_PARTS
    );
    let pattern = schemas["CreateRunRequest"]["properties"]["product"]["pattern"]
        .as_str()
        .expect("a pattern");
    assert!(
        pattern.contains("\\u202e"),
        "bidirectional overrides are refused: {pattern}"
    );
}

#[test]
fn the_documented_event_types_are_the_wire_spellings() {
    let doc: Value = serde_json::from_str(&committed()).expect("JSON");
    let documented: Vec<&str> = doc["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .expect("EventType is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let spelled: Vec<&str> = shipshape_domain::wire::EventType::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(documented, spelled);
}
