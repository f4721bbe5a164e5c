//! Statically evaluated Python values, and what could not be evaluated (`Deferred`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Span;

/// A Python value folded at compile time.
///
/// Anything the static evaluator cannot fold (a function call, an attribute of an
/// imported module, an f-string) is kept as `Deferred` with its source text, so each
/// backend decides whether that is an error or a value to compute at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// A dict whose keys are all strings. Other dicts are `Deferred`.
    Dict(BTreeMap<String, Value>),
    Deferred {
        source_text: String,
        span: Span,
    },
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// Numbers, and strings that spell a number (Metaflow accepts `cpu="0.5"`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn is_deferred(&self) -> bool {
        matches!(self, Value::Deferred { .. })
    }

    /// The Python type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Deferred { .. } => "expression",
        }
    }

    /// The value as plain JSON (no type tags), for manifests and the runtime.
    /// `Deferred` becomes `None`: there is no value to give.
    pub fn to_plain_json(&self) -> Option<PlainJson> {
        Some(match self {
            Value::None => PlainJson::Null,
            Value::Bool(b) => PlainJson::Bool(*b),
            Value::Int(i) => PlainJson::Int(*i),
            Value::Float(f) => PlainJson::Float(*f),
            Value::Str(s) => PlainJson::Str(s.clone()),
            Value::List(items) => PlainJson::List(
                items
                    .iter()
                    .map(Value::to_plain_json)
                    .collect::<Option<_>>()?,
            ),
            Value::Dict(map) => PlainJson::Dict(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), v.to_plain_json()?)))
                    .collect::<Option<_>>()?,
            ),
            Value::Deferred { .. } => return None,
        })
    }
}

/// A value as untagged JSON: what a user would write in a JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlainJson {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PlainJson>),
    Dict(BTreeMap<String, PlainJson>),
}
