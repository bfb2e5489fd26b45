//! Checks a JSON value against the subset of JSON Schema (2020-12) that
//! docs/verify-report.schema.json uses: type, const, enum, required,
//! properties, additionalProperties: false, items, minItems, maxItems,
//! minimum, oneOf and local `$ref`s.

#![allow(dead_code)]

use serde_json::Value;

/// Every way `value` breaks `schema`, as `path: problem` lines.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors);
    errors
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            root.pointer(pointer)
                .unwrap_or_else(|| panic!("schema $ref {r} does not resolve"))
        }
        None => schema,
    }
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("schema type {other} is not supported here"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if let Some(t) = schema.get("type") {
        let names: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type in schema at {path}"),
        };
        if !names.iter().any(|n| type_matches(n, v)) {
            errors.push(format!("{path}: {v} is not of type {names:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(v) {
            errors.push(format!("{path}: {v} is not one of {options:?}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("oneOf") {
        let passing = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(root, o, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            errors.push(format!(
                "{path}: matches {passing} of oneOf, not exactly one"
            ));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), v.as_i64()) {
        if n < min {
            errors.push(format!("{path}: {n} < minimum {min}"));
        }
    }
    if let Value::Object(map) = v {
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{path}: required field `{r}` is missing"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, child) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(root, s, child, &format!("{path}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: field `{k}` is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let Value::Array(items) = v {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                errors.push(format!("{path}: fewer than {min} items"));
            }
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if (items.len() as u64) > max {
                errors.push(format!("{path}: more than {max} items"));
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(root, s, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
}

/// The repository's verify report schema.
pub fn verify_report_schema() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify-report.schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/verify-report.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}
