//! Every reply the tests receive is checked against docs/spec/openapi.json:
//! the operation is found by method and path template, the status must be
//! one the operation lists, and a JSON body must match that response's
//! schema (`$ref`s resolved). So the document, the router and the handlers
//! cannot disagree on anything a test exercises without that test failing.
//!
//! The validator is ours and small: it knows the subset of JSON Schema
//! (2020-12, as OpenAPI 3.1 uses it) the document is written in, and
//! refuses a schema that uses any other keyword ([`Document::load`] walks
//! the whole document), so a keyword it would silently skip cannot creep in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use serde_json::{Map, Value};

/// The document the node serves at `/api/openapi.json` (compiled in from
/// the same file).
const OPENAPI: &str = include_str!("../../../docs/spec/openapi.json");

/// The parsed document, loaded and checked once per test process.
pub static DOCUMENT: LazyLock<Document> =
    LazyLock::new(|| Document::load(OPENAPI).unwrap_or_else(|e| panic!("openapi.json: {e}")));

/// Keywords that constrain a value: the validator checks each of them.
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "nullable",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "format",
];
/// Keywords that only describe.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// What the harness saw: one HTTP exchange.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The request path, query included or not.
    pub path: &'a str,
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: &'a BTreeMap<String, String>,
    pub text: &'a str,
}

#[derive(Debug)]
pub struct Document {
    doc: Value,
    /// `(segments of the path template, template)`, in document order.
    templates: Vec<(Vec<String>, String)>,
    patterns: Mutex<HashMap<String, Regex>>,
}

impl Document {
    /// Parses the document and checks that every schema in it uses only
    /// keywords this validator understands, and that every `$ref` resolves.
    pub fn load(text: &str) -> Result<Document, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let templates = doc["paths"]
            .as_object()
            .ok_or("no paths")?
            .keys()
            .map(|template| (segments(template), template.clone()))
            .collect();
        let document = Document {
            doc,
            templates,
            patterns: Mutex::new(HashMap::new()),
        };
        let mut problems = Vec::new();
        if let Some(schemas) = document.doc["components"]["schemas"].as_object() {
            for (name, schema) in schemas {
                document.lint(
                    schema,
                    &format!("#/components/schemas/{name}"),
                    &mut problems,
                );
            }
        }
        let paths = document.doc["paths"].as_object().into_iter().flatten();
        for (template, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    let at = format!("{method} {template} {status}");
                    let Some(response) = document.resolve(response, &at, &mut problems) else {
                        continue;
                    };
                    for (media, content) in response["content"].as_object().into_iter().flatten() {
                        if let Some(schema) = content.get("schema") {
                            document.lint(schema, &format!("{at} {media}"), &mut problems);
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(document)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Walks a schema: only known keywords, patterns that compile, `$ref`s
    /// that resolve.
    fn lint(&self, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            if !schema.is_boolean() {
                problems.push(format!("{at}: a schema is an object or a boolean"));
            }
            return;
        };
        for (keyword, value) in object {
            let at = format!("{at}/{keyword}");
            match keyword.as_str() {
                "$ref" => {
                    if self.pointer(value).is_none() {
                        problems.push(format!("{at}: {value} does not resolve"));
                    }
                }
                "properties" => {
                    for (name, schema) in value.as_object().into_iter().flatten() {
                        self.lint(schema, &format!("{at}/{name}"), problems);
                    }
                }
                "items" | "additionalProperties" | "not" => self.lint(value, &at, problems),
                "allOf" | "anyOf" | "oneOf" => {
                    for (i, schema) in value.as_array().into_iter().flatten().enumerate() {
                        self.lint(schema, &format!("{at}/{i}"), problems);
                    }
                }
                "pattern" => {
                    if let Err(e) = Regex::new(value.as_str().unwrap_or_default()) {
                        problems.push(format!("{at}: {e}"));
                    }
                }
                k if ASSERTIONS.contains(&k) || ANNOTATIONS.contains(&k) => {}
                k => problems.push(format!("{at}: keyword {k:?} is not checked by the harness")),
            }
        }
    }

    /// `#/a/b` within the document.
    fn pointer(&self, reference: &Value) -> Option<&Value> {
        self.doc.pointer(reference.as_str()?.strip_prefix('#')?)
    }

    /// Follows `$ref`s from a response or schema object to the object itself.
    fn resolve<'a>(
        &'a self,
        mut object: &'a Value,
        at: &str,
        problems: &mut Vec<String>,
    ) -> Option<&'a Value> {
        for _ in 0..16 {
            match object.get("$ref") {
                None => return Some(object),
                Some(reference) => match self.pointer(reference) {
                    Some(target) => object = target,
                    None => {
                        problems.push(format!("{at}: {reference} does not resolve"));
                        return None;
                    }
                },
            }
        }
        problems.push(format!("{at}: $ref chain too long"));
        None
    }

    /// The path template a request path falls under: the one with the most
    /// literal segments among those that match.
    pub fn template_of(&self, path: &str) -> Option<&str> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let actual = segments(path);
        self.templates
            .iter()
            .filter(|(template, _)| {
                template.len() == actual.len()
                    && template
                        .iter()
                        .zip(&actual)
                        .all(|(t, a)| t == a || (t.starts_with('{') && !a.is_empty()))
            })
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(_, template)| template.as_str())
    }

    /// Checks one exchange against the document; every disagreement, as
    /// one message.
    pub fn check(&self, exchange: &Exchange) -> Result<(), String> {
        let method = exchange.method.to_ascii_lowercase();
        let path = exchange.path.split(['?', '#']).next().unwrap_or_default();
        let mut problems = Vec::new();
        let Some(template) = self.template_of(path) else {
            // Outside the document: unknown API paths are a 404
            // `unknown_route` (the document's description says so); other
            // paths are the web client's files.
            if path.starts_with("/api/") || path == "/ws" {
                self.check_global_error(exchange, 404, "unknown_route", &mut problems);
            }
            return finish(problems);
        };
        // HEAD is answered like GET, without a body.
        let operation_method = if method == "head" { "get" } else { &method };
        let operation = &self.doc["paths"][template][operation_method];
        if operation.is_null() {
            self.check_global_error(exchange, 405, "method_not_allowed", &mut problems);
            return finish(problems);
        }
        let at = format!("{} {template}", exchange.method);
        let status = exchange.status.to_string();
        // Any operation that takes a bearer token may refuse a third-party
        // client's token for its scopes (the document's description).
        let takes_bearer = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if takes_bearer && exchange.status == 403 && exchange.text.contains("insufficient_scope") {
            self.check_global_error(exchange, 403, "insufficient_scope", &mut problems);
            return finish(problems);
        }
        let responses = &operation["responses"];
        let Some(response) = responses.get(&status).or_else(|| responses.get("default")) else {
            let listed: Vec<&String> = responses
                .as_object()
                .into_iter()
                .flatten()
                .map(|(s, _)| s)
                .collect();
            problems.push(format!(
                "{at}: status {status} is not documented (documented: {listed:?}); body {}",
                exchange.text
            ));
            return finish(problems);
        };
        let Some(response) = self.resolve(response, &at, &mut problems) else {
            return finish(problems);
        };
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            if header["required"] == true
                && !exchange.headers.contains_key(&name.to_ascii_lowercase())
            {
                problems.push(format!("{at} {status}: missing required header {name}"));
            }
        }
        if method == "head" {
            return finish(problems);
        }
        self.check_content(exchange, response, &format!("{at} {status}"), &mut problems);
        finish(problems)
    }

    /// A status and code the document promises for every path (unknown
    /// route, wrong method), outside any operation.
    fn check_global_error(
        &self,
        exchange: &Exchange,
        status: u16,
        code: &str,
        problems: &mut Vec<String>,
    ) {
        let at = format!("{} {}", exchange.method, exchange.path);
        if exchange.status != status {
            problems.push(format!(
                "{at}: not in the document, so {status} {code} is due, got {} {}",
                exchange.status, exchange.text
            ));
            return;
        }
        let body: Value = serde_json::from_str(exchange.text).unwrap_or(Value::Null);
        let schema = serde_json::json!({
            "allOf": [
                { "$ref": "#/components/schemas/Error" },
                { "properties": { "code": { "const": code } } }
            ]
        });
        self.validate(&schema, &body, "body", problems);
    }

    /// The body against the response's declared content.
    fn check_content(
        &self,
        exchange: &Exchange,
        response: &Value,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        let content_type = exchange
            .headers
            .get("content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let Some(content) = response["content"].as_object() else {
            if !exchange.text.is_empty() {
                problems.push(format!(
                    "{at}: the document declares no body, got {}",
                    exchange.text
                ));
            }
            return;
        };
        // `*/*`: a file served with the type sniffed at upload (media).
        let Some(media) = content.get(&content_type).or_else(|| content.get("*/*")) else {
            let declared: Vec<&String> = content.keys().collect();
            problems.push(format!(
                "{at}: content type {content_type:?} is not one of {declared:?}"
            ));
            return;
        };
        let Some(schema) = media.get("schema") else {
            return;
        };
        if content_type != "application/json" {
            return;
        }
        match serde_json::from_str::<Value>(exchange.text) {
            Ok(body) => {
                let violations = self.errors(schema, &body, "body");
                if !violations.is_empty() {
                    problems.push(format!(
                        "{at}: the body does not match its schema: {}",
                        exchange.text
                    ));
                    problems.extend(violations);
                }
            }
            Err(e) => problems.push(format!("{at}: body is not JSON ({e}): {}", exchange.text)),
        }
    }

    /// Validates `value` against `schema`, pushing one message per
    /// violation (`at` is the JSON path of `value`).
    pub fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                problems.push(format!("{at}: no value is allowed here"));
                return;
            }
            Value::Object(schema) => schema,
            _ => {
                problems.push(format!("{at}: schema is not an object"));
                return;
            }
        };
        if let Some(reference) = schema.get("$ref") {
            match self.pointer(reference) {
                Some(target) => self.validate(target, value, at, problems),
                None => problems.push(format!("{at}: {reference} does not resolve")),
            }
        }
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !types.iter().any(|t| has_type(value, t)) {
                problems.push(format!("{at}: {} is not of type {types:?}", short(value)));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            problems.push(format!("{at}: {} is not one of {allowed:?}", short(value)));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            problems.push(format!("{at}: {} is not {constant}", short(value)));
        }
        for schema in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.validate(schema, value, at, problems);
        }
        if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
            let failures: Vec<Vec<String>> = alternatives
                .iter()
                .map(|schema| self.errors(schema, value, at))
                .collect();
            if !failures.iter().any(Vec::is_empty) {
                problems.push(format!(
                    "{at}: {} matches none of anyOf: {failures:?}",
                    short(value)
                ));
            }
        }
        if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
            let n_matching = alternatives
                .iter()
                .filter(|schema| self.errors(schema, value, at).is_empty())
                .count();
            if n_matching != 1 {
                problems.push(format!(
                    "{at}: {} matches {n_matching} of oneOf, not exactly one",
                    short(value)
                ));
            }
        }
        if let Some(schema) = schema.get("not")
            && self.errors(schema, value, at).is_empty()
        {
            problems.push(format!("{at}: {} matches a `not` schema", short(value)));
        }
        match value {
            Value::Object(object) => self.validate_object(schema, object, at, problems),
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && n < min
                {
                    problems.push(format!("{at}: {n} items, fewer than {min}"));
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && n > max
                {
                    problems.push(format!("{at}: {n} items, more than {max}"));
                }
                if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            problems.push(format!("{at}[{i}]: repeats an earlier item"));
                        }
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.validate(item_schema, item, &format!("{at}[{i}]"), problems);
                    }
                }
            }
            Value::String(text) => {
                let n = text.chars().count() as u64;
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && n < min
                {
                    problems.push(format!("{at}: {n} characters, fewer than {min}"));
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && n > max
                {
                    problems.push(format!("{at}: {n} characters, more than {max}"));
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                    && !self.matches(pattern, text)
                {
                    problems.push(format!("{at}: {text:?} does not match /{pattern}/"));
                }
            }
            Value::Number(_) => self.validate_number(schema, value, at, problems),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn validate_object(
        &self,
        schema: &Map<String, Value>,
        object: &Map<String, Value>,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                problems.push(format!("{at}: required field {name:?} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in object {
            let field_at = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => self.validate(field_schema, field, &field_at, problems),
                None => {
                    if let Some(extra) = schema.get("additionalProperties") {
                        if extra == &Value::Bool(false) {
                            problems.push(format!("{field_at}: a field the schema does not list"));
                        } else {
                            self.validate(extra, field, &field_at, problems);
                        }
                    }
                }
            }
        }
    }

    fn validate_number(
        &self,
        schema: &Map<String, Value>,
        value: &Value,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        let bound = |keyword: &str| schema.get(keyword).filter(|v| v.is_number());
        let below = |limit: &Value| compare(value, limit) == Some(std::cmp::Ordering::Less);
        let above = |limit: &Value| compare(value, limit) == Some(std::cmp::Ordering::Greater);
        if let Some(min) = bound("minimum")
            && below(min)
        {
            problems.push(format!("{at}: {value} is below the minimum {min}"));
        }
        if let Some(max) = bound("maximum")
            && above(max)
        {
            problems.push(format!("{at}: {value} is above the maximum {max}"));
        }
        if let Some(min) = bound("exclusiveMinimum")
            && !above(min)
        {
            problems.push(format!("{at}: {value} is not above {min}"));
        }
        if let Some(max) = bound("exclusiveMaximum")
            && !below(max)
        {
            problems.push(format!("{at}: {value} is not below {max}"));
        }
        let range: Option<(i128, i128)> = match schema.get("format").and_then(Value::as_str) {
            Some("uint32") => Some((0, u32::MAX.into())),
            Some("uint64") => Some((0, u64::MAX.into())),
            Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
            Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
            _ => None,
        };
        if let Some((low, high)) = range {
            let in_range = integer(value).is_some_and(|n| (low..=high).contains(&n));
            if !in_range {
                problems.push(format!("{at}: {value} is outside its format's range"));
            }
        }
    }

    /// The violations of `schema` by `value`, without reporting them.
    fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        self.validate(schema, value, at, &mut problems);
        problems
    }

    /// ECMA-262 `pattern` semantics: a search, not an anchored match.
    fn matches(&self, pattern: &str, text: &str) -> bool {
        let mut patterns = self.patterns.lock().unwrap_or_else(|p| p.into_inner());
        let regex = patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).expect("patterns are checked at load"));
        regex.is_match(text)
    }
}

fn finish(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').skip(1).map(str::to_owned).collect()
}

/// JSON Schema types: `integer` is any number with no fraction (so `2.0`
/// is one, as the standard says).
fn has_type(value: &Value, type_name: &str) -> bool {
    match type_name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// An integral JSON number as an `i128`.
fn integer(value: &Value) -> Option<i128> {
    if let Some(n) = value.as_u64() {
        return Some(n.into());
    }
    if let Some(n) = value.as_i64() {
        return Some(n.into());
    }
    let f = value.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128)
}

fn compare(value: &Value, limit: &Value) -> Option<std::cmp::Ordering> {
    match (integer(value), integer(limit)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => value.as_f64()?.partial_cmp(&limit.as_f64()?),
    }
}

/// A value for a message: long bodies are cut.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOM: &str = "!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn check(method: &str, path: &str, status: u16, body: &Value) -> Result<(), String> {
        let headers = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        DOCUMENT.check(&Exchange {
            method,
            path,
            status,
            headers: &headers,
            text: &text,
        })
    }

    #[track_caller]
    fn refused(outcome: Result<(), String>, needle: &str) {
        match outcome {
            Ok(()) => panic!("the check passed; expected a report containing {needle:?}"),
            Err(report) => assert!(report.contains(needle), "report lacks {needle:?}: {report}"),
        }
    }

    /// The whole document is within the validator's subset and its refs
    /// resolve (loading it checks that).
    #[test]
    fn the_document_is_checkable() {
        assert!(DOCUMENT.template_of("/api/v1/rooms").is_some());
    }

    #[test]
    fn conforming_replies_pass() {
        let health = json!({ "status": "ok", "node_id": format!("~{}", "a".repeat(52)), "version": "0.1.0", "moderation": "ready" });
        check("GET", "/healthz", 200, &health).unwrap();
        let error = json!({ "code": "unknown_room", "message": "no such room" });
        check("GET", &format!("/api/v1/rooms/{ROOM}"), 404, &error).unwrap();
        let unknown = json!({ "code": "unknown_route", "message": "no route" });
        check("GET", "/api/v1/nothing/here", 404, &unknown).unwrap();
        let wrong_method = json!({ "code": "method_not_allowed", "message": "no" });
        check("PATCH", "/api/v1/me", 405, &wrong_method).unwrap();
    }

    /// Deliberately wrong fixtures: the check must report each.
    #[test]
    fn violations_are_reported() {
        let node_id = format!("~{}", "a".repeat(52));
        // A required field missing, a field the schema does not list, a
        // wrong type, a pattern broken.
        refused(
            check(
                "GET",
                "/healthz",
                200,
                &json!({ "node_id": node_id, "version": "1" }),
            ),
            "required field \"status\"",
        );
        refused(
            check(
                "GET",
                "/healthz",
                200,
                &json!({ "status": "ok", "node_id": node_id, "version": "1", "extra": 1 }),
            ),
            "body.extra: a field the schema does not list",
        );
        refused(
            check(
                "GET",
                "/healthz",
                200,
                &json!({ "status": "ok", "node_id": node_id, "version": 1 }),
            ),
            "body.version: 1 is not of type",
        );
        refused(
            check(
                "GET",
                "/healthz",
                200,
                &json!({ "status": "ok", "node_id": "~UPPER", "version": "1" }),
            ),
            "does not match",
        );
        // A status the operation does not list.
        refused(
            check(
                "GET",
                "/healthz",
                418,
                &json!({ "code": "teapot", "message": "short and stout" }),
            ),
            "status 418 is not documented",
        );
        // An error code the status does not list.
        refused(
            check(
                "GET",
                &format!("/api/v1/rooms/{ROOM}"),
                404,
                &json!({ "code": "no_such_thing", "message": "m" }),
            ),
            "is not one of",
        );
        // A body that is not JSON where JSON is declared.
        let headers = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        refused(
            DOCUMENT.check(&Exchange {
                method: "GET",
                path: "/healthz",
                status: 200,
                headers: &headers,
                text: "ok",
            }),
            "not JSON",
        );
        // A route the document does not have must be a 404 unknown_route.
        refused(
            check("GET", "/api/v1/undocumented", 200, &json!({})),
            "404 unknown_route is due",
        );
        // A 429 without its required Retry-After header.
        refused(
            check(
                "POST",
                &format!("/api/v1/rooms/{ROOM}/messages"),
                429,
                &json!({ "code": "rate_limited", "message": "slow down" }),
            ),
            "missing required header Retry-After",
        );
    }

    /// Table: each keyword of the subset, one passing and one failing value.
    #[test]
    fn keywords() {
        let cases: &[(Value, Value, bool)] = &[
            (json!({ "type": "integer" }), json!(2), true),
            (json!({ "type": "integer" }), json!(2.0), true),
            (json!({ "type": "integer" }), json!(2.5), false),
            (json!({ "type": ["integer", "null"] }), json!(null), true),
            (
                json!({ "type": "string", "nullable": true }),
                json!(null),
                true,
            ),
            (
                json!({ "type": "integer", "minimum": 1, "maximum": 3 }),
                json!(3),
                true,
            ),
            (
                json!({ "type": "integer", "minimum": 1, "maximum": 3 }),
                json!(4),
                false,
            ),
            (
                json!({ "type": "integer", "maximum": 4294967295u64 }),
                json!(4294967296u64),
                false,
            ),
            (json!({ "format": "uint32" }), json!(4294967296u64), false),
            (json!({ "format": "uint64" }), json!(-1), false),
            (json!({ "exclusiveMinimum": 0 }), json!(0), false),
            (json!({ "enum": ["a", "b"] }), json!("c"), false),
            (json!({ "const": "a" }), json!("a"), true),
            (json!({ "minLength": 2, "maxLength": 3 }), json!("é"), false),
            (json!({ "maxLength": 3 }), json!("ééé"), true),
            (json!({ "pattern": "^[0-9]+$" }), json!("12a"), false),
            (
                json!({ "items": { "type": "string" }, "maxItems": 2 }),
                json!(["a", 1]),
                false,
            ),
            (json!({ "maxItems": 1 }), json!([1, 2]), false),
            (json!({ "uniqueItems": true }), json!([1, 1]), false),
            (
                json!({ "anyOf": [{ "type": "string" }, { "type": "null" }] }),
                json!(1),
                false,
            ),
            (
                json!({ "oneOf": [{ "type": "integer" }, { "type": "number" }] }),
                json!(1),
                false,
            ),
            (
                json!({ "oneOf": [{ "type": "integer" }, { "type": "string" }] }),
                json!(1),
                true,
            ),
            (json!({ "not": { "type": "null" } }), json!(null), false),
            (
                json!({ "additionalProperties": { "type": "integer" } }),
                json!({ "a": "x" }),
                false,
            ),
            (
                json!({ "$ref": "#/components/schemas/RoomId" }),
                json!(ROOM),
                true,
            ),
            (
                json!({ "$ref": "#/components/schemas/RoomId" }),
                json!("!short"),
                false,
            ),
        ];
        for (schema, value, ok) in cases {
            let problems = DOCUMENT.errors(schema, value, "v");
            assert_eq!(
                problems.is_empty(),
                *ok,
                "{schema} on {value}: {problems:?}"
            );
        }
    }

    #[test]
    fn unknown_keywords_and_dangling_refs_are_refused() {
        let doc = json!({
            "openapi": "3.1.0",
            "paths": {},
            "components": { "schemas": {
                "A": { "type": "string", "propertyNames": { "maxLength": 1 } },
                "B": { "$ref": "#/components/schemas/Missing" }
            } }
        });
        let report = Document::load(&doc.to_string()).unwrap_err();
        assert!(report.contains("propertyNames"), "{report}");
        assert!(report.contains("does not resolve"), "{report}");
    }
}
