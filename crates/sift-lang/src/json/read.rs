//! Reading the JSON tree: shape checks, schema checks and limits, each fault
//! reported with a JSON pointer to where it is.

use serde_json::{Map, Value};

use super::duration_from_json;
use crate::check::{
    Literal, Op, Target, cmp_from_json_name, did_you_mean_hint, ignore_case_error, scalar,
    supports, text_operand, unknown_name, unsupported_message,
};
use crate::{
    CmpOp, Condition, ConditionError, CountTest, Duration, ErrorKind, FieldTest, MAX_DEPTH,
    MAX_NODES, Scalar, Schema,
};

/// Reads and checks `value`; see [`crate::from_json`].
pub(super) fn read(value: &Value, schema: &dyn Schema) -> Result<Condition, ConditionError> {
    let mut reader = Reader { schema, nodes: 0 };
    reader.condition(value, "", 1, Scope::Contact)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Contact,
    /// Inside an event's `where`: field names are the event's properties.
    Event,
}

/// The node kinds, by the key that identifies them, with the keys each allows.
const KINDS: [(&str, &[&str]); 7] = [
    ("all", &["all"]),
    ("any", &["any"]),
    ("not", &["not"]),
    ("field", &["field", "op", "value", "ignore_case"]),
    ("event", &["event", "where", "count", "in_last"]),
    (
        "event_sum",
        &["event_sum", "property", "where", "op", "value", "in_last"],
    ),
    ("in_segment", &["in_segment"]),
];

const KIND_LIST: &str =
    "\"all\", \"any\", \"not\", \"field\", \"event\", \"event_sum\" or \"in_segment\"";

fn error(kind: ErrorKind, path: &str, message: impl Into<String>) -> ConditionError {
    ConditionError {
        kind,
        message: message.into(),
        position: None,
        path: Some(path.to_string()),
        hint: None,
        did_you_mean: None,
    }
}

fn invalid(path: &str, message: impl Into<String>) -> ConditionError {
    error(ErrorKind::InvalidTree, path, message)
}

/// `path` extended by one JSON pointer token (`~` and `/` escaped per RFC 6901).
fn child_path(path: &str, token: &str) -> String {
    format!("{path}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// What a JSON value is, for "got ..." in messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => crate::print::quote(text),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// The value of a key known to be present (`null` otherwise, which every
/// caller rejects with a message), so that no lookup can panic.
fn member<'v>(object: &'v Map<String, Value>, key: &str) -> &'v Value {
    static NULL: Value = Value::Null;
    object.get(key).unwrap_or(&NULL)
}

/// A present, non-null optional key.
fn optional<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|value| !value.is_null())
}

struct Reader<'s> {
    schema: &'s dyn Schema,
    nodes: usize,
}

impl Reader<'_> {
    /// One node at `path`, `depth` levels down (the root is 1).
    fn condition(
        &mut self,
        value: &Value,
        path: &str,
        depth: usize,
        scope: Scope,
    ) -> Result<Condition, ConditionError> {
        // Checked before recursing, so a hostile tree can't exhaust the stack.
        let too_complex = |message: String| error(ErrorKind::TooComplex, path, message);
        if depth > MAX_DEPTH {
            return Err(too_complex(format!(
                "the condition is nested too deeply (at most {MAX_DEPTH} levels)"
            )));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(too_complex(format!(
                "the condition is too large (at most {MAX_NODES} nodes)"
            )));
        }
        let Value::Object(object) = value else {
            return Err(invalid(
                path,
                format!(
                    "expected a condition object with one of {KIND_LIST}, got {}",
                    describe(value)
                ),
            ));
        };
        let kinds: Vec<&str> = KINDS
            .iter()
            .map(|(kind, _)| *kind)
            .filter(|kind| object.contains_key(*kind))
            .collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                return Err(invalid(
                    path,
                    format!("expected a condition object with one of {KIND_LIST}"),
                ));
            }
            [first, second, ..] => {
                return Err(invalid(
                    path,
                    format!(
                        "a condition has exactly one of {KIND_LIST}; this one has \"{first}\" and \"{second}\""
                    ),
                ));
            }
        };
        let allowed = KINDS
            .iter()
            .find(|(name, _)| *name == kind)
            .map_or(&[][..], |(_, keys)| *keys);
        if let Some(key) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(invalid(
                &child_path(path, key),
                format!(
                    "unknown key \"{key}\" in a \"{kind}\" condition (it takes {})",
                    allowed.join(", ")
                ),
            ));
        }
        if scope == Scope::Event && matches!(kind, "event" | "event_sum" | "in_segment") {
            return Err(invalid(
                path,
                format!(
                    "an event filter tests the event's properties: \"{kind}\" can't be used in \"where\""
                ),
            ));
        }
        match kind {
            "all" | "any" => self.group(object, kind, path, depth, scope),
            "not" => {
                let inner = self.condition(
                    member(object, "not"),
                    &child_path(path, "not"),
                    depth + 1,
                    scope,
                )?;
                Ok(Condition::Not(Box::new(inner)))
            }
            "field" => self.field(object, path, scope),
            "event" => self.event(object, path, depth),
            "event_sum" => self.event_sum(object, path, depth),
            _ => self.segment(object, path),
        }
    }

    fn group(
        &mut self,
        object: &Map<String, Value>,
        kind: &str,
        path: &str,
        depth: usize,
        scope: Scope,
    ) -> Result<Condition, ConditionError> {
        let key_path = child_path(path, kind);
        let Some(items) = member(object, kind).as_array() else {
            return Err(invalid(
                &key_path,
                format!(
                    "expected an array of conditions, got {}",
                    describe(member(object, kind))
                ),
            ));
        };
        if items.is_empty() && (kind == "any" || depth > 1) {
            return Err(invalid(
                &key_path,
                match kind {
                    "any" => "\"any\" needs at least one condition",
                    _ => "an empty \"all\" is only allowed as the whole condition",
                },
            ));
        }
        let mut children = Vec::with_capacity(items.len());
        for (idx, item) in items.iter().enumerate() {
            children.push(self.condition(
                item,
                &child_path(&key_path, &idx.to_string()),
                depth + 1,
                scope,
            )?);
        }
        Ok(match kind {
            "all" => Condition::All(children),
            _ => Condition::Any(children),
        })
    }

    fn field(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        scope: Scope,
    ) -> Result<Condition, ConditionError> {
        let field_path = child_path(path, "field");
        let field = non_empty_string(member(object, "field"), &field_path, "a field name")?;
        let target = match scope {
            Scope::Event => Target::Property,
            Scope::Contact => match self.schema.field_type(field) {
                Some(ty) => Target::Field { name: field, ty },
                None => {
                    let known = self.schema.field_names();
                    let (message, guess) = unknown_name("field", field, &known);
                    let mut err = error(ErrorKind::UnknownField, &field_path, message);
                    err.hint = guess.as_deref().map(|g| did_you_mean_hint(g).into());
                    err.did_you_mean = guess.map(String::into_boxed_str);
                    return Err(err);
                }
            },
        };
        let op_path = child_path(path, "op");
        let op = match object.get("op") {
            Some(Value::String(name)) => Op::from_json_name(name).ok_or_else(|| {
                invalid(
                    &op_path,
                    format!(
                        "unknown op \"{name}\" (expected eq, ne, lt, lte, gt, gte, contains, not_contains, \
                         starts_with, ends_with, in, not_in, between, is_set, is_not_set, in_last, \
                         before_ago or after_ago)"
                    ),
                )
            })?,
            Some(other) => return Err(invalid(&op_path, format!("expected the op as a string, got {}", describe(other)))),
            None => return Err(invalid(path, "a \"field\" condition needs an \"op\"")),
        };
        if let Target::Field { ty, .. } = target
            && !supports(ty, op)
        {
            return Err(error(
                ErrorKind::UnsupportedOperator,
                &op_path,
                unsupported_message(ty, op, true),
            ));
        }
        let value_path = child_path(path, "value");
        let value = optional(object, "value");
        let test = match (op, value) {
            (Op::IsSet, None) => FieldTest::IsSet,
            (Op::IsNotSet, None) => FieldTest::IsNotSet,
            (Op::IsSet | Op::IsNotSet, Some(_)) => {
                return Err(invalid(
                    &value_path,
                    format!("\"{}\" takes no value", op.json_name()),
                ));
            }
            (_, None) => {
                return Err(invalid(
                    path,
                    format!("\"{}\" needs a \"value\"", op.json_name()),
                ));
            }
            (_, Some(value)) => field_test(target, op, value, &value_path)?,
        };
        let case_path = child_path(path, "ignore_case");
        let ignore_case = match optional(object, "ignore_case") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => {
                if let Some(message) = ignore_case_error(&test, true) {
                    return Err(error(ErrorKind::InvalidValue, &case_path, message));
                }
                true
            }
            Some(other) => {
                return Err(invalid(
                    &case_path,
                    format!("expected true or false, got {}", describe(other)),
                ));
            }
        };
        Ok(Condition::Field {
            field: field.to_string(),
            test,
            ignore_case,
        })
    }

    fn event(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Condition, ConditionError> {
        let event_type = event_type(object, "event", path)?;
        let filter = self.filter(object, path, depth)?;
        let count = match optional(object, "count") {
            None => None,
            Some(count) => Some(read_count(count, &child_path(path, "count"))?),
        };
        Ok(Condition::Event {
            event_type: event_type.to_string(),
            filter,
            count,
            in_last: in_last(object, path)?,
        })
    }

    fn event_sum(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Condition, ConditionError> {
        let event_type = event_type(object, "event_sum", path)?;
        let property_path = child_path(path, "property");
        let property = match object.get("property") {
            Some(property) => non_empty_string(property, &property_path, "a property name")?,
            None => {
                return Err(invalid(
                    path,
                    "an \"event_sum\" condition needs a \"property\"",
                ));
            }
        };
        let filter = self.filter(object, path, depth)?;
        let op = read_cmp(object.get("op"), path)?;
        let value_path = child_path(path, "value");
        let value = match object.get("value").map(|value| literal(value, &value_path)) {
            Some(Ok(Literal::Number(value))) => value,
            Some(Ok(other)) => {
                let message = format!("expected a number, got {}", other.describe());
                return Err(error(ErrorKind::InvalidValue, &value_path, message));
            }
            Some(Err(err)) => return Err(err),
            None => {
                return Err(invalid(
                    path,
                    "an \"event_sum\" condition needs a \"value\"",
                ));
            }
        };
        Ok(Condition::EventSum {
            event_type: event_type.to_string(),
            property: property.to_string(),
            filter,
            op,
            value,
            in_last: in_last(object, path)?,
        })
    }

    fn filter(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Option<Box<Condition>>, ConditionError> {
        match optional(object, "where") {
            None => Ok(None),
            Some(filter) => {
                let filter =
                    self.condition(filter, &child_path(path, "where"), depth + 1, Scope::Event)?;
                Ok(Some(Box::new(filter)))
            }
        }
    }

    fn segment(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
    ) -> Result<Condition, ConditionError> {
        let id_path = child_path(path, "in_segment");
        let id = non_empty_string(member(object, "in_segment"), &id_path, "a segment id")?;
        if self.schema.segment_name(id).is_none() {
            return Err(error(
                ErrorKind::UnknownSegment,
                &id_path,
                format!("unknown segment \"{id}\""),
            ));
        }
        Ok(Condition::InSegment(id.to_string()))
    }
}

fn non_empty_string<'v>(
    value: &'v Value,
    path: &str,
    what: &str,
) -> Result<&'v str, ConditionError> {
    match value {
        Value::String(text) if !text.is_empty() => Ok(text),
        other => Err(invalid(
            path,
            format!(
                "expected {what} (a non-empty string), got {}",
                describe(other)
            ),
        )),
    }
}

fn literal(value: &Value, path: &str) -> Result<Literal, ConditionError> {
    match value {
        Value::String(text) => Ok(Literal::String(text.clone())),
        Value::Bool(flag) => Ok(Literal::Boolean(*flag)),
        Value::Number(number) => match number.as_f64() {
            Some(number) if number.is_finite() => Ok(Literal::Number(number)),
            _ => Err(error(
                ErrorKind::InvalidValue,
                path,
                format!("the number {number} is out of range"),
            )),
        },
        other => Err(error(
            ErrorKind::InvalidValue,
            path,
            format!(
                "expected a string, number or boolean, got {}",
                describe(other)
            ),
        )),
    }
}

fn typed(target: Target<'_>, value: &Value, path: &str) -> Result<Scalar, ConditionError> {
    scalar(target, literal(value, path)?)
        .map_err(|message| error(ErrorKind::InvalidValue, path, message))
}

fn duration_value(value: &Value, path: &str) -> Result<Duration, ConditionError> {
    value.as_str().and_then(duration_from_json).ok_or_else(|| {
        error(
            ErrorKind::InvalidValue,
            path,
            format!(
                "expected a duration like \"30d\" (units m, h, d, w, mo, y), got {}",
                describe(value)
            ),
        )
    })
}

/// The test of a field condition whose op takes a value.
fn field_test(
    target: Target<'_>,
    op: Op,
    value: &Value,
    path: &str,
) -> Result<FieldTest, ConditionError> {
    Ok(match op {
        Op::Cmp(cmp) => FieldTest::Compare(cmp, typed(target, value, path)?),
        Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith => {
            let text = text_operand(target, op, literal(value, path)?)
                .map_err(|message| error(ErrorKind::InvalidValue, path, message))?;
            match op {
                Op::Contains => FieldTest::Contains(text),
                Op::NotContains => FieldTest::NotContains(text),
                Op::StartsWith => FieldTest::StartsWith(text),
                _ => FieldTest::EndsWith(text),
            }
        }
        Op::In | Op::NotIn => {
            let Some(items) = value.as_array() else {
                return Err(invalid(
                    path,
                    format!(
                        "\"{}\" takes an array of values, got {}",
                        op.json_name(),
                        describe(value)
                    ),
                ));
            };
            let mut values = Vec::with_capacity(items.len());
            for (idx, item) in items.iter().enumerate() {
                values.push(typed(target, item, &child_path(path, &idx.to_string()))?);
            }
            if op == Op::In {
                FieldTest::In(values)
            } else {
                FieldTest::NotIn(values)
            }
        }
        Op::Between => match value.as_array().map(Vec::as_slice) {
            Some([low, high]) => FieldTest::Between(
                typed(target, low, &child_path(path, "0"))?,
                typed(target, high, &child_path(path, "1"))?,
            ),
            _ => {
                return Err(invalid(
                    path,
                    format!("\"between\" takes [low, high], got {}", describe(value)),
                ));
            }
        },
        Op::InLast => FieldTest::InLast(duration_value(value, path)?),
        Op::BeforeAgo => FieldTest::BeforeAgo(duration_value(value, path)?),
        Op::AfterAgo => FieldTest::AfterAgo(duration_value(value, path)?),
        Op::IsSet => FieldTest::IsSet,
        Op::IsNotSet => FieldTest::IsNotSet,
    })
}

fn read_cmp(value: Option<&Value>, path: &str) -> Result<CmpOp, ConditionError> {
    let op_path = child_path(path, "op");
    match value {
        Some(Value::String(name)) => cmp_from_json_name(name).ok_or_else(|| {
            invalid(
                &op_path,
                format!("unknown op \"{name}\" (expected eq, ne, lt, lte, gt or gte)"),
            )
        }),
        Some(other) => Err(invalid(
            &op_path,
            format!(
                "expected eq, ne, lt, lte, gt or gte, got {}",
                describe(other)
            ),
        )),
        None => Err(invalid(
            path,
            "expected an \"op\" (eq, ne, lt, lte, gt or gte)",
        )),
    }
}

/// `{"op": OP, "value": N}` with N a whole number.
fn read_count(value: &Value, path: &str) -> Result<CountTest, ConditionError> {
    let Value::Object(object) = value else {
        return Err(invalid(
            path,
            format!(
                "expected {{\"op\": ..., \"value\": N}}, got {}",
                describe(value)
            ),
        ));
    };
    if let Some(key) = object
        .keys()
        .find(|key| !matches!(key.as_str(), "op" | "value"))
    {
        return Err(invalid(
            &child_path(path, key),
            format!("unknown key \"{key}\" in \"count\" (it takes op, value)"),
        ));
    }
    let op = read_cmp(object.get("op"), path)?;
    let value_path = child_path(path, "value");
    match object.get("value") {
        Some(number) => match number.as_u64() {
            Some(value) => Ok(CountTest { op, value }),
            None => Err(error(
                ErrorKind::InvalidValue,
                &value_path,
                format!("expected a whole number of times, got {}", describe(number)),
            )),
        },
        None => Err(invalid(path, "\"count\" needs a \"value\"")),
    }
}

fn in_last(object: &Map<String, Value>, path: &str) -> Result<Option<Duration>, ConditionError> {
    optional(object, "in_last")
        .map(|value| duration_value(value, &child_path(path, "in_last")))
        .transpose()
}

/// The event type under `key` (`event` or `event_sum`): a non-empty string.
fn event_type<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, ConditionError> {
    non_empty_string(member(object, key), &child_path(path, key), "an event type")
}
