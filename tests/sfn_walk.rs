//! End-to-end wiring of the Step Functions target: a small interpreter of the Amazon
//! States Language follows the generated state machine the way Step Functions would
//! (Pass, Task with the Batch and S3 integrations, Retry and Catch, Parallel, inline
//! and distributed Map, Choice, Succeed, Fail, payload templates, JSONPath and the
//! intrinsic functions), runs every Batch job's `flowc-shim` command, resolved from the
//! generated job definitions, as a local process against a local store, and the run it
//! leaves must hold the same steps, tasks and artifacts as `flowc run` of the same flow.
//!
//! The interpreter knows only the subset of ASL that flowc emits and fails on anything
//! else (an unknown state type, field, resource, intrinsic function or path syntax), so
//! a change in the generator cannot make it pass by being ignored.
//!
//! What it maps to this machine: the jobs' `flowc-shim` (the image's path) to the built
//! binary; the datastore root `s3://flowc-walk/sfn/store` in a command to a local store
//! directory, and an S3 object `flowc-walk` / `sfn/store/<rest>` to `<store>/<rest>`
//! (the shim's local and S3 layouts are the same below the root). Retry waits are
//! recorded, not slept; Map iterations and Parallel branches run one after another.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowc::backends::sfn::{sfn, CodePackageRef, MapMode, Platform, SfnConfig};
use flowc::FrontendOptions;
use serde_json::{json, Map as Object, Value as Json};

#[allow(dead_code)]
mod support;

use support::{
    contents, flowc_run_id, package, python, shim, workspace_root, MissingManifest, RunContents,
    Scratch,
};

/// The datastore root the documents name, and its bucket and key prefix.
const DATASTORE_ROOT: &str = "s3://flowc-walk/sfn/store";
const BUCKET: &str = "flowc-walk";
const KEY_PREFIX: &str = "sfn/store/";
/// Where the job definitions say the shim is in the image.
const SHIM_IN_IMAGE: &str = "/opt/flowc/bin/flowc-shim";
/// The execution's name, hence the run id.
const EXECUTION_NAME: &str = "walk-3b9e1c";
/// How many state transitions one execution may take before the walk is called a
/// runaway loop.
const MAX_TRANSITIONS: usize = 5_000;
/// Batch's status reason for a container that exited on its own, which is what a
/// local process failure corresponds to.
const EXITED_REASON: &str = "Essential container in task exited";

// ---------------------------------------------------------------------------------
// How a state ends other than by moving on.

#[derive(Debug, Clone, PartialEq)]
enum Stop {
    /// An error the state machine may retry or catch: `States.TaskFailed`, a Fail
    /// state's error (`fail_state` names that state), an S3 error.
    Error {
        error: String,
        cause: String,
        fail_state: Option<String>,
    },
    /// What no catcher handles: `States.Runtime` (a path matching nothing, a value of
    /// the wrong type), or something the walker does not model. The walk fails.
    Fatal(String),
}

fn fatal<T>(message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Fatal(message.into()))
}

fn runtime<T>(message: impl std::fmt::Display) -> Result<T, Stop> {
    Err(Stop::Fatal(format!("States.Runtime: {message}")))
}

fn raise<T>(error: &str, cause: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Error {
        error: error.to_owned(),
        cause: cause.into(),
        fail_state: None,
    })
}

/// Fails on any key of `value` outside `keys`: a field the walker would otherwise
/// silently ignore.
fn known_keys(value: &Json, what: &str, keys: &[&str]) -> Result<(), Stop> {
    let Some(object) = value.as_object() else {
        return fatal(format!("{what} is not an object: {value}"));
    };
    for key in object.keys() {
        if !keys.contains(&key.as_str()) {
            return fatal(format!(
                "{what} has the field `{key}`, which is not modelled"
            ));
        }
    }
    Ok(())
}

fn str_field<'v>(value: &'v Json, key: &str, what: &str) -> Result<&'v str, Stop> {
    match value.get(key) {
        Some(Json::String(s)) => Ok(s),
        Some(other) => fatal(format!("{what}: `{key}` is not a string: {other}")),
        None => fatal(format!("{what} has no `{key}`")),
    }
}

// ---------------------------------------------------------------------------------
// The context object (`$$`).

#[derive(Debug, Clone)]
struct Ctx {
    execution_name: String,
    execution_input: Json,
    state_name: String,
    retry_count: u64,
    map_item: Option<(usize, Json)>,
}

impl Ctx {
    fn new(execution_name: &str, execution_input: Json) -> Self {
        Ctx {
            execution_name: execution_name.to_owned(),
            execution_input,
            state_name: String::new(),
            retry_count: 0,
            map_item: None,
        }
    }

    fn object(&self) -> Json {
        let mut object = json!({
            "Execution": {"Name": self.execution_name, "Input": self.execution_input},
            "State": {"Name": self.state_name, "RetryCount": self.retry_count},
        });
        if let Some((index, value)) = &self.map_item {
            object["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        object
    }
}

// ---------------------------------------------------------------------------------
// JSONPath: `$`, `$$`, `.field` and `[*]`, nothing else.

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    All,
}

/// `(is the context object, segments)` of a path.
fn parse_path(text: &str) -> Result<(bool, Vec<Seg>), Stop> {
    let (context, mut rest) = if let Some(rest) = text.strip_prefix("$$") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('$') {
        (false, rest)
    } else {
        return fatal(format!("`{text}` is not a JSONPath"));
    };
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[*]") {
            segs.push(Seg::All);
            rest = after;
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            if end == 0 {
                return fatal(format!("path syntax in `{text}` is not modelled"));
            }
            segs.push(Seg::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else {
            return fatal(format!("path syntax in `{text}` is not modelled"));
        }
    }
    Ok((context, segs))
}

fn select(value: &Json, segs: &[Seg], text: &str) -> Result<Json, Stop> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(value.clone());
    };
    match first {
        Seg::Field(name) => match value.get(name) {
            Some(inner) if value.is_object() => select(inner, rest, text),
            _ => runtime(format!("the path `{text}` matches nothing in {value}")),
        },
        Seg::All => {
            let Some(items) = value.as_array() else {
                return runtime(format!("`[*]` of `{text}` applied to {value}"));
            };
            items
                .iter()
                .map(|item| select(item, rest, text))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
        }
    }
}

fn read_path(text: &str, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    let (context, segs) = parse_path(text)?;
    if context {
        select(&ctx.object(), &segs, text)
    } else {
        select(input, &segs, text)
    }
}

/// `ResultPath`: `value` placed at `path` in `target`, objects created on the way.
fn write_path(target: Json, path: &str, value: Json) -> Result<Json, Stop> {
    let (context, segs) = parse_path(path)?;
    if context {
        return fatal(format!("a ResultPath into the context object: `{path}`"));
    }
    let mut target = target;
    let mut slot = &mut target;
    for seg in &segs {
        let Seg::Field(name) = seg else {
            return fatal(format!("a ResultPath with `[*]`: `{path}`"));
        };
        let Some(object) = slot.as_object_mut() else {
            return runtime(format!("ResultPath `{path}` goes through a non-object"));
        };
        slot = object.entry(name.clone()).or_insert_with(|| json!({}));
    }
    *slot = value;
    Ok(target)
}

// ---------------------------------------------------------------------------------
// Intrinsic functions.

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A string literal, each character with whether it was escaped (`\{` is a brace,
    /// not a placeholder, to `States.Format`).
    Str(Vec<(char, bool)>),
    Lit(Json),
    Path(String),
    Call(String, Vec<Arg>),
}

struct IntrinsicParser<'t> {
    chars: Vec<char>,
    pos: usize,
    text: &'t str,
}

impl IntrinsicParser<'_> {
    fn parse(text: &str) -> Result<Arg, Stop> {
        let mut parser = IntrinsicParser {
            chars: text.chars().collect(),
            pos: 0,
            text,
        };
        let call = parser.call()?;
        parser.skip_space();
        if parser.pos != parser.chars.len() {
            return fatal(format!("trailing text in the intrinsic `{text}`"));
        }
        Ok(call)
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn bad<T>(&self, what: &str) -> Result<T, Stop> {
        fatal(format!(
            "{what} at character {} of the intrinsic `{}`",
            self.pos, self.text
        ))
    }

    fn call(&mut self) -> Result<Arg, Stop> {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !name.starts_with("States.") {
            return self.bad("not an intrinsic function");
        }
        if self.chars.get(self.pos) != Some(&'(') {
            return self.bad("`(` expected");
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_space();
        if self.chars.get(self.pos) == Some(&')') {
            self.pos += 1;
            return Ok(Arg::Call(name, args));
        }
        loop {
            self.skip_space();
            args.push(self.arg()?);
            self.skip_space();
            match self.chars.get(self.pos) {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Arg::Call(name, args));
                }
                _ => return self.bad("`,` or `)` expected"),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, Stop> {
        match self.chars.get(self.pos) {
            Some('\'') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.chars.get(self.pos) {
                        None => return self.bad("unterminated string"),
                        Some('\'') => {
                            self.pos += 1;
                            return Ok(Arg::Str(out));
                        }
                        Some('\\') => match self.chars.get(self.pos + 1) {
                            Some(&c @ ('\'' | '{' | '}' | '\\')) => {
                                out.push((c, true));
                                self.pos += 2;
                            }
                            _ => return self.bad("an escape that is not modelled"),
                        },
                        Some(&c) => {
                            out.push((c, false));
                            self.pos += 1;
                        }
                    }
                }
            }
            Some('$') => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| !matches!(c, ',' | ')') && !c.is_whitespace())
                {
                    self.pos += 1;
                }
                Ok(Arg::Path(self.chars[start..self.pos].iter().collect()))
            }
            Some(c) if c.is_ascii_digit() || *c == '-' => {
                let start = self.pos;
                self.pos += 1;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<serde_json::Number>(&text) {
                    Ok(n) => Ok(Arg::Lit(Json::Number(n))),
                    Err(_) => self.bad("a malformed number"),
                }
            }
            Some('S') => self.call(),
            Some(_) => {
                for (word, value) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    let end = self.pos + word.len();
                    if self.chars.len() >= end
                        && self.chars[self.pos..end].iter().copied().eq(word.chars())
                    {
                        self.pos = end;
                        return Ok(Arg::Lit(value));
                    }
                }
                self.bad("an argument that is not modelled")
            }
            None => self.bad("an argument expected"),
        }
    }
}

fn plain(text: &[(char, bool)]) -> String {
    text.iter().map(|(c, _)| c).collect()
}

fn eval_arg(arg: &Arg, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    match arg {
        Arg::Str(text) => Ok(Json::String(plain(text))),
        Arg::Lit(value) => Ok(value.clone()),
        Arg::Path(path) => read_path(path, input, ctx),
        Arg::Call(name, args) => call_intrinsic(name, args, input, ctx),
    }
}

fn call_intrinsic(name: &str, args: &[Arg], input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    let values = |from: usize| -> Result<Vec<Json>, Stop> {
        args.iter()
            .skip(from)
            .map(|a| eval_arg(a, input, ctx))
            .collect()
    };
    let arity = |n: usize| -> Result<(), Stop> {
        if args.len() == n {
            Ok(())
        } else {
            runtime(format!("{name} takes {n} arguments, given {}", args.len()))
        }
    };
    match name {
        "States.Array" => Ok(Json::Array(values(0)?)),
        "States.Format" => {
            let Some(Arg::Str(template)) = args.first() else {
                return runtime("States.Format's first argument is not a string literal");
            };
            format_intrinsic(template, &values(1)?)
        }
        "States.JsonMerge" => {
            arity(3)?;
            let v = values(0)?;
            if v[2] != Json::Bool(false) {
                return fatal("States.JsonMerge with a deep merge is not modelled");
            }
            let (Some(left), Some(right)) = (v[0].as_object(), v[1].as_object()) else {
                return runtime(format!(
                    "States.JsonMerge of non-objects: {} {}",
                    v[0], v[1]
                ));
            };
            let mut merged = left.clone();
            for (key, value) in right {
                merged.insert(key.clone(), value.clone());
            }
            Ok(Json::Object(merged))
        }
        "States.JsonToString" => {
            arity(1)?;
            let v = values(0)?;
            serde_json::to_string(&v[0])
                .map(Json::String)
                .or_else(runtime)
        }
        "States.StringToJson" => {
            arity(1)?;
            let v = values(0)?;
            let Some(text) = v[0].as_str() else {
                return runtime(format!("States.StringToJson of a non-string: {}", v[0]));
            };
            serde_json::from_str(text).or_else(|e| runtime(format!("States.StringToJson: {e}")))
        }
        "States.MathAdd" => {
            arity(2)?;
            let v = values(0)?;
            let (Some(a), Some(b)) = (v[0].as_i64(), v[1].as_i64()) else {
                return runtime(format!("States.MathAdd of non-integers: {} {}", v[0], v[1]));
            };
            a.checked_add(b)
                .map(Json::from)
                .ok_or_else(|| Stop::Fatal("States.MathAdd overflows".to_owned()))
        }
        other => fatal(format!("the intrinsic function `{other}` is not modelled")),
    }
}

/// `States.Format`: each unescaped `{}` takes the next argument; strings go in as they
/// are, numbers, booleans and null as their JSON text; the counts must agree.
fn format_intrinsic(template: &[(char, bool)], args: &[Json]) -> Result<Json, Stop> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut i = 0;
    while i < template.len() {
        match template[i] {
            ('{', false) => {
                if template.get(i + 1) != Some(&('}', false)) {
                    return runtime("States.Format: an unescaped `{` that opens no placeholder");
                }
                let Some(arg) = next.next() else {
                    return runtime("States.Format: more placeholders than arguments");
                };
                match arg {
                    Json::String(s) => out.push_str(s),
                    Json::Number(_) | Json::Bool(_) | Json::Null => out.push_str(&arg.to_string()),
                    _ => return runtime(format!("States.Format of a non-scalar: {arg}")),
                }
                i += 2;
            }
            ('}', false) => return runtime("States.Format: an unescaped `}`"),
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    if next.next().is_some() {
        return runtime("States.Format: more arguments than placeholders");
    }
    Ok(Json::String(out))
}

/// A `.$` value: a path or an intrinsic function.
fn eval_expr(text: &str, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    if text.starts_with('$') {
        read_path(text, input, ctx)
    } else if text.starts_with("States.") {
        eval_arg(&IntrinsicParser::parse(text)?, input, ctx)
    } else {
        fatal(format!(
            "`{text}` is neither a path nor an intrinsic function"
        ))
    }
}

/// A payload template (`Parameters`, `ItemSelector`, `ResultSelector`): keys ending in
/// `.$` are evaluated, nested objects are templates too, everything else is copied.
fn eval_template(template: &Json, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    let Some(object) = template.as_object() else {
        return fatal(format!("a payload template is not an object: {template}"));
    };
    let mut out = Object::new();
    for (key, value) in object {
        if let Some(key) = key.strip_suffix(".$") {
            let Some(text) = value.as_str() else {
                return fatal(format!("`{key}.$` is not a string: {value}"));
            };
            out.insert(key.to_owned(), eval_expr(text, input, ctx)?);
        } else if value.is_object() {
            out.insert(key.clone(), eval_template(value, input, ctx)?);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(Json::Object(out))
}

// ---------------------------------------------------------------------------------
// Input and output processing.

fn input_path(state: &Json, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
    match state.get("InputPath") {
        None => Ok(input.clone()),
        Some(Json::Null) => Ok(json!({})),
        Some(Json::String(path)) => read_path(path, input, ctx),
        Some(other) => fatal(format!("InputPath {other}")),
    }
}

/// `ResultSelector`, `ResultPath` and `OutputPath` of a state whose raw input was
/// `input` and whose result is `result`.
fn output(state: &Json, input: &Json, result: Json, ctx: &Ctx) -> Result<Json, Stop> {
    let result = match state.get("ResultSelector") {
        Some(selector) => eval_template(selector, &result, ctx)?,
        None => result,
    };
    let merged = match state.get("ResultPath") {
        None => result,
        Some(Json::Null) => input.clone(),
        Some(Json::String(path)) => write_path(input.clone(), path, result)?,
        Some(other) => return fatal(format!("ResultPath {other}")),
    };
    match state.get("OutputPath") {
        None => Ok(merged),
        Some(Json::Null) => Ok(json!({})),
        Some(Json::String(path)) => read_path(path, &merged, ctx),
        Some(other) => fatal(format!("OutputPath {other}")),
    }
}

fn transition(name: &str, state: &Json) -> Result<Option<String>, Stop> {
    match (state.get("Next"), state.get("End")) {
        (Some(Json::String(next)), None) => Ok(Some(next.clone())),
        (None, Some(Json::Bool(true))) => Ok(None),
        _ => fatal(format!(
            "state `{name}` needs exactly one of `Next` and `End: true`"
        )),
    }
}

fn error_matches(equals: &Json, error: &str) -> Result<bool, Stop> {
    let Some(names) = equals.as_array() else {
        return fatal(format!("ErrorEquals is not a list: {equals}"));
    };
    Ok(names
        .iter()
        .any(|n| n.as_str() == Some("States.ALL") || n.as_str() == Some(error)))
}

/// A Batch `evaluateOnExit` pattern: exact, or a prefix ending in `*`.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => text.starts_with(prefix),
        None => pattern == text,
    }
}

// ---------------------------------------------------------------------------------
// The walker.

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Succeeded(Json),
    Failed {
        error: String,
        cause: String,
        fail_state: Option<String>,
    },
}

struct Walker {
    job_definitions: BTreeMap<String, Json>,
    store: PathBuf,
    work: PathBuf,
    jobs: usize,
    map_runs: usize,
    transitions: usize,
    /// Every job run, retry wait and Fail state, for the failure message.
    log: Vec<String>,
}

impl Walker {
    fn new(job_definitions: &Json, store: &Path, work: &Path) -> Result<Self, Stop> {
        let Some(list) = job_definitions.as_array() else {
            return fatal("the job definitions are not a list");
        };
        let mut by_name = BTreeMap::new();
        for definition in list {
            let name = str_field(definition, "jobDefinitionName", "a job definition")?;
            if by_name
                .insert(name.to_owned(), definition.clone())
                .is_some()
            {
                return fatal(format!("two job definitions are named `{name}`"));
            }
        }
        Ok(Walker {
            job_definitions: by_name,
            store: store.to_path_buf(),
            work: work.to_path_buf(),
            jobs: 0,
            map_runs: 0,
            transitions: 0,
            log: Vec::new(),
        })
    }

    /// Starts an execution named `name` with `input`, as `StartExecution` would.
    fn execute(&mut self, machine: &Json, name: &str, input: Json) -> Result<Outcome, String> {
        let ctx = Ctx::new(name, input.clone());
        match self.run_machine(machine, input, &ctx, "the state machine") {
            Ok(output) => Ok(Outcome::Succeeded(output)),
            Err(Stop::Error {
                error,
                cause,
                fail_state,
            }) => Ok(Outcome::Failed {
                error,
                cause,
                fail_state,
            }),
            Err(Stop::Fatal(message)) => Err(message),
        }
    }

    fn run_machine(
        &mut self,
        machine: &Json,
        input: Json,
        ctx: &Ctx,
        what: &str,
    ) -> Result<Json, Stop> {
        let Some(states) = machine.get("States").and_then(Json::as_object) else {
            return fatal(format!("{what} has no `States`"));
        };
        let mut name = str_field(machine, "StartAt", what)?.to_owned();
        let mut input = input;
        loop {
            self.transitions += 1;
            if self.transitions > MAX_TRANSITIONS {
                return fatal(format!(
                    "more than {MAX_TRANSITIONS} transitions: a runaway loop"
                ));
            }
            let Some(state) = states.get(&name) else {
                return fatal(format!("{what} has no state `{name}`"));
            };
            let mut ctx = ctx.clone();
            ctx.state_name = name.clone();
            ctx.retry_count = 0;
            let (out, next) = self.run_state(&name, state, input, &ctx)?;
            match next {
                Some(next) => {
                    name = next;
                    input = out;
                }
                None => return Ok(out),
            }
        }
    }

    fn run_state(
        &mut self,
        name: &str,
        state: &Json,
        input: Json,
        ctx: &Ctx,
    ) -> Result<(Json, Option<String>), Stop> {
        let kind = str_field(state, "Type", &format!("state `{name}`"))?;
        let what = format!("{kind} state `{name}`");
        match kind {
            "Pass" => {
                known_keys(
                    state,
                    &what,
                    &[
                        "Type",
                        "Comment",
                        "InputPath",
                        "Parameters",
                        "Result",
                        "ResultPath",
                        "OutputPath",
                        "Next",
                        "End",
                    ],
                )?;
                let effective = input_path(state, &input, ctx)?;
                let effective = match state.get("Parameters") {
                    Some(template) => eval_template(template, &effective, ctx)?,
                    None => effective,
                };
                let result = state.get("Result").cloned().unwrap_or(effective);
                Ok((
                    output(state, &input, result, ctx)?,
                    transition(name, state)?,
                ))
            }
            "Task" | "Parallel" | "Map" => {
                let mut keys = vec![
                    "Type",
                    "Comment",
                    "InputPath",
                    "ResultSelector",
                    "ResultPath",
                    "OutputPath",
                    "Retry",
                    "Catch",
                    "Next",
                    "End",
                ];
                keys.extend_from_slice(match kind {
                    "Task" => &["Resource", "Parameters", "TimeoutSeconds"][..],
                    "Parallel" => &["Branches"][..],
                    _ => &[
                        "ItemProcessor",
                        "ItemsPath",
                        "ItemReader",
                        "ItemSelector",
                        "MaxConcurrency",
                        "ResultWriter",
                        "Label",
                    ][..],
                });
                known_keys(state, &what, &keys)?;
                let next = transition(name, state)?;
                self.with_retry_and_catch(name, state, input, ctx, next)
            }
            "Choice" => {
                known_keys(state, &what, &["Type", "Comment", "Choices", "Default"])?;
                let Some(rules) = state.get("Choices").and_then(Json::as_array) else {
                    return fatal(format!("{what} has no `Choices` list"));
                };
                for rule in rules {
                    if self.rule_holds(rule, &input, ctx, true)? {
                        let next = str_field(rule, "Next", &what)?;
                        return Ok((input, Some(next.to_owned())));
                    }
                }
                match state.get("Default") {
                    Some(Json::String(default)) => Ok((input, Some(default.clone()))),
                    Some(other) => fatal(format!("{what}: Default {other}")),
                    None => raise(
                        "States.NoChoiceMatched",
                        format!("no choice of `{name}` matched {input}"),
                    ),
                }
            }
            "Succeed" => {
                known_keys(
                    state,
                    &what,
                    &["Type", "Comment", "InputPath", "OutputPath"],
                )?;
                let effective = input_path(state, &input, ctx)?;
                Ok((output(state, &effective, effective.clone(), ctx)?, None))
            }
            "Fail" => {
                known_keys(state, &what, &["Type", "Comment", "Error", "Cause"])?;
                let error = str_field(state, "Error", &what)?.to_owned();
                let cause = str_field(state, "Cause", &what)?.to_owned();
                self.log
                    .push(format!("{name}: fails with {error}: {cause}"));
                Err(Stop::Error {
                    error,
                    cause,
                    fail_state: Some(name.to_owned()),
                })
            }
            other => fatal(format!(
                "state `{name}` has the type `{other}`, which is not modelled"
            )),
        }
    }

    /// A Choice rule; `top` rules carry `Next`, nested ones (under And/Or/Not) do not.
    fn rule_holds(&self, rule: &Json, input: &Json, ctx: &Ctx, top: bool) -> Result<bool, Stop> {
        let Some(object) = rule.as_object() else {
            return fatal(format!("a Choice rule is not an object: {rule}"));
        };
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        if top {
            if !keys.contains(&"Next") {
                return fatal(format!("a Choice rule without `Next`: {rule}"));
            }
            keys.retain(|k| *k != "Next");
        }
        keys.retain(|k| *k != "Comment");
        let rules = |key: &str| -> Result<Vec<bool>, Stop> {
            let Some(list) = rule.get(key).and_then(Json::as_array) else {
                return fatal(format!("`{key}` is not a list: {rule}"));
            };
            list.iter()
                .map(|r| self.rule_holds(r, input, ctx, false))
                .collect()
        };
        match keys.as_slice() {
            ["And"] => Ok(rules("And")?.iter().all(|b| *b)),
            ["Or"] => Ok(rules("Or")?.iter().any(|b| *b)),
            ["Not"] => match rule.get("Not") {
                Some(inner) => Ok(!self.rule_holds(inner, input, ctx, false)?),
                None => fatal("`Not` without a rule"),
            },
            [a, b] if *a == "Variable" || *b == "Variable" => {
                let operator = if *a == "Variable" { *b } else { *a };
                let variable = str_field(rule, "Variable", "a Choice rule")?;
                let expected = &rule[operator];
                const OPERATORS: [&str; 4] = [
                    "IsPresent",
                    "StringEquals",
                    "NumericEquals",
                    "BooleanEquals",
                ];
                if !OPERATORS.contains(&operator) {
                    return fatal(format!("the comparison `{operator}` is not modelled"));
                }
                let value = match parse_path(variable)? {
                    (true, segs) => select(&ctx.object(), &segs, variable),
                    (false, segs) => select(input, &segs, variable),
                };
                if operator == "IsPresent" {
                    return Ok(value.is_ok() == (expected == &Json::Bool(true)));
                }
                let value = value?;
                match operator {
                    "StringEquals" => match (value.as_str(), expected.as_str()) {
                        (Some(v), Some(e)) => Ok(v == e),
                        (None, Some(_)) => Ok(false),
                        _ => fatal(format!("StringEquals of a non-string: {rule}")),
                    },
                    "NumericEquals" => match (value.as_f64(), expected.as_f64()) {
                        (Some(v), Some(e)) => Ok(v == e),
                        (None, Some(_)) => Ok(false),
                        _ => fatal(format!("NumericEquals of a non-number: {rule}")),
                    },
                    "BooleanEquals" => match (value.as_bool(), expected.as_bool()) {
                        (Some(v), Some(e)) => Ok(v == e),
                        (None, Some(_)) => Ok(false),
                        _ => fatal(format!("BooleanEquals of a non-boolean: {rule}")),
                    },
                    other => fatal(format!("the comparison `{other}` is not modelled")),
                }
            }
            _ => fatal(format!("a Choice rule that is not modelled: {rule}")),
        }
    }

    /// Runs a Task, Parallel or Map with its `Retry` and `Catch`.
    fn with_retry_and_catch(
        &mut self,
        name: &str,
        state: &Json,
        input: Json,
        ctx: &Ctx,
        next: Option<String>,
    ) -> Result<(Json, Option<String>), Stop> {
        let retriers = match state.get("Retry") {
            None => Vec::new(),
            Some(Json::Array(list)) => list.clone(),
            Some(other) => return fatal(format!("Retry of `{name}` is not a list: {other}")),
        };
        for retrier in &retriers {
            known_keys(
                retrier,
                &format!("a retrier of `{name}`"),
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                ],
            )?;
        }
        let mut attempts = vec![0u64; retriers.len()];
        let mut ctx = ctx.clone();
        loop {
            let error = match self.run_work(name, state, &input, &ctx) {
                Ok(out) => return Ok((out, next)),
                Err(Stop::Fatal(message)) => return Err(Stop::Fatal(message)),
                Err(Stop::Error {
                    error,
                    cause,
                    fail_state,
                }) => (error, cause, fail_state),
            };
            let mut retried = false;
            for (i, retrier) in retriers.iter().enumerate() {
                if !error_matches(&retrier["ErrorEquals"], &error.0)? {
                    continue;
                }
                let max = retrier
                    .get("MaxAttempts")
                    .and_then(Json::as_u64)
                    .unwrap_or(3);
                let interval = retrier
                    .get("IntervalSeconds")
                    .and_then(Json::as_u64)
                    .unwrap_or(1);
                let backoff = retrier
                    .get("BackoffRate")
                    .and_then(Json::as_f64)
                    .unwrap_or(2.0);
                if attempts[i] < max {
                    let wait = interval as f64 * backoff.powi(attempts[i] as i32);
                    attempts[i] += 1;
                    ctx.retry_count += 1;
                    self.log.push(format!(
                        "{name}: {} caught by a retrier, retry {} after {wait}s",
                        error.0, ctx.retry_count
                    ));
                    retried = true;
                }
                // The first retrier whose errors match decides, whether it retries or not.
                break;
            }
            if retried {
                continue;
            }
            let catchers = match state.get("Catch") {
                None => Vec::new(),
                Some(Json::Array(list)) => list.clone(),
                Some(other) => return fatal(format!("Catch of `{name}` is not a list: {other}")),
            };
            for catcher in &catchers {
                known_keys(
                    catcher,
                    &format!("a catcher of `{name}`"),
                    &["ErrorEquals", "ResultPath", "Next"],
                )?;
                if !error_matches(&catcher["ErrorEquals"], &error.0)? {
                    continue;
                }
                let caught = json!({"Error": error.0, "Cause": error.1});
                let out = match catcher.get("ResultPath") {
                    None => caught,
                    Some(Json::Null) => input.clone(),
                    Some(Json::String(path)) => write_path(input.clone(), path, caught)?,
                    Some(other) => return fatal(format!("a catcher's ResultPath {other}")),
                };
                let to = str_field(catcher, "Next", "a catcher")?;
                self.log
                    .push(format!("{name}: {} caught, to `{to}`", error.0));
                return Ok((out, Some(to.to_owned())));
            }
            return Err(Stop::Error {
                error: error.0,
                cause: error.1,
                fail_state: error.2,
            });
        }
    }

    /// One attempt of a Task, Parallel or Map: its output, after result processing.
    fn run_work(
        &mut self,
        name: &str,
        state: &Json,
        input: &Json,
        ctx: &Ctx,
    ) -> Result<Json, Stop> {
        let effective = input_path(state, input, ctx)?;
        let result = match state["Type"].as_str() {
            Some("Task") => self.run_task(name, state, &effective, ctx)?,
            Some("Parallel") => {
                let Some(branches) = state.get("Branches").and_then(Json::as_array) else {
                    return fatal(format!("Parallel `{name}` has no `Branches` list"));
                };
                let mut results = Vec::new();
                for (i, branch) in branches.iter().enumerate() {
                    known_keys(branch, "a branch", &["Comment", "StartAt", "States"])?;
                    let what = format!("branch {i} of `{name}`");
                    results.push(self.run_machine(branch, effective.clone(), ctx, &what)?);
                }
                Json::Array(results)
            }
            _ => self.run_map(name, state, &effective, ctx)?,
        };
        output(state, input, result, ctx)
    }

    fn run_task(
        &mut self,
        name: &str,
        state: &Json,
        input: &Json,
        ctx: &Ctx,
    ) -> Result<Json, Stop> {
        let resource = str_field(state, "Resource", &format!("Task `{name}`"))?;
        let parameters = match state.get("Parameters") {
            Some(template) => eval_template(template, input, ctx)?,
            None => input.clone(),
        };
        let timeout = state.get("TimeoutSeconds").and_then(Json::as_u64);
        match resource {
            "arn:aws:states:::batch:submitJob.sync" => self.submit_job(name, &parameters, timeout),
            "arn:aws:states:::aws-sdk:s3:getObject" => {
                known_keys(&parameters, "s3:getObject", &["Bucket", "Key"])?;
                let path = self.s3_object(
                    str_field(&parameters, "Bucket", "s3:getObject")?,
                    str_field(&parameters, "Key", "s3:getObject")?,
                )?;
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let Ok(body) = String::from_utf8(bytes) else {
                            return fatal(format!("{} is not UTF-8", path.display()));
                        };
                        Ok(json!({
                            "Body": body,
                            "ContentLength": body.len(),
                            "ContentType": "application/octet-stream",
                        }))
                    }
                    Err(e) => raise(
                        "S3.NoSuchKeyException",
                        format!("{}: {e}", parameters["Key"]),
                    ),
                }
            }
            other => fatal(format!(
                "Task `{name}` uses the resource `{other}`, which is not modelled"
            )),
        }
    }

    /// The local file of S3 object `bucket`/`key`: under the datastore's prefix only.
    fn s3_object(&self, bucket: &str, key: &str) -> Result<PathBuf, Stop> {
        if bucket != BUCKET {
            return fatal(format!(
                "an S3 access outside the datastore: bucket `{bucket}`"
            ));
        }
        let Some(rest) = key.strip_prefix(KEY_PREFIX) else {
            return fatal(format!("an S3 key outside the datastore root: `{key}`"));
        };
        if rest
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return fatal(format!("an S3 key with an empty or relative part: `{key}`"));
        }
        Ok(self.store.join(rest))
    }

    /// `batch:submitJob.sync`: the job definition with the overrides, run to its end.
    fn submit_job(
        &mut self,
        name: &str,
        parameters: &Json,
        timeout: Option<u64>,
    ) -> Result<Json, Stop> {
        let what = format!("the job of `{name}`");
        known_keys(
            parameters,
            &what,
            &[
                "JobName",
                "JobQueue",
                "JobDefinition",
                "ContainerOverrides",
                "Parameters",
            ],
        )?;
        let job_name = str_field(parameters, "JobName", &what)?.to_owned();
        let queue = str_field(parameters, "JobQueue", &what)?.to_owned();
        let definition_name = str_field(parameters, "JobDefinition", &what)?;
        let Some(definition) = self.job_definitions.get(definition_name).cloned() else {
            return fatal(format!(
                "{what} names the job definition `{definition_name}`, which is not generated"
            ));
        };
        if definition["type"] != "container" {
            return fatal(format!(
                "job definition `{definition_name}` is not a container job"
            ));
        }
        let container = &definition["containerProperties"];
        let overrides = parameters
            .get("ContainerOverrides")
            .cloned()
            .unwrap_or(json!({}));
        known_keys(
            &overrides,
            "ContainerOverrides",
            &["Command", "Environment"],
        )?;
        let strings = |value: &Json, what: &str| -> Result<Vec<String>, Stop> {
            let Some(list) = value.as_array() else {
                return fatal(format!("{what} is not a list: {value}"));
            };
            list.iter()
                .map(|v| match v.as_str() {
                    Some(s) => Ok(s.to_owned()),
                    None => fatal(format!("{what} holds a non-string: {v}")),
                })
                .collect()
        };
        let command = match overrides.get("Command") {
            Some(command) => strings(command, "ContainerOverrides.Command")?,
            None => {
                // Batch's parameter substitution: the definition's defaults, then the
                // submitted `Parameters`.
                let mut values = BTreeMap::new();
                for source in [definition.get("parameters"), parameters.get("Parameters")]
                    .into_iter()
                    .flatten()
                {
                    for (k, v) in source.as_object().into_iter().flatten() {
                        let Some(v) = v.as_str() else {
                            return fatal(format!("Batch parameter `{k}` is not a string"));
                        };
                        values.insert(k.clone(), v.to_owned());
                    }
                }
                let mut command = strings(&container["command"], "the definition's command")?;
                for arg in &mut command {
                    if let Some(key) = arg.strip_prefix("Ref::") {
                        let Some(value) = values.get(key) else {
                            return fatal(format!("{what}: `Ref::{key}` has no value"));
                        };
                        *arg = value.clone();
                    }
                }
                command
            }
        };
        let mut env = BTreeMap::new();
        for variable in container
            .get("environment")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            env.insert(
                str_field(variable, "name", "an environment variable")?.to_owned(),
                str_field(variable, "value", "an environment variable")?.to_owned(),
            );
        }
        if let Some(list) = overrides.get("Environment") {
            for variable in list.as_array().into_iter().flatten() {
                env.insert(
                    str_field(variable, "Name", "an environment override")?.to_owned(),
                    str_field(variable, "Value", "an environment override")?.to_owned(),
                );
            }
        }
        let Some((program, args)) = command.split_first() else {
            return fatal(format!("{what} has an empty command"));
        };
        if program != SHIM_IN_IMAGE {
            return fatal(format!("{what} runs `{program}`, not the image's shim"));
        }
        // The shim's datastore root becomes the local store; the job may name no
        // other root (parameter values, which travel inside JSON, may mention S3).
        let mut local_args = Vec::new();
        let mut root_named = false;
        for (i, arg) in args.iter().enumerate() {
            let is_root = i > 0 && args[i - 1] == "--datastore-root";
            if is_root && arg != DATASTORE_ROOT {
                return fatal(format!("{what} names the datastore root `{arg}`"));
            }
            if is_root {
                root_named = true;
                local_args.push(self.store.to_string_lossy().into_owned());
            } else if arg.starts_with("s3://") {
                return fatal(format!("{what} passes the S3 location `{arg}`"));
            } else {
                local_args.push(arg.clone());
            }
        }
        if !root_named {
            return fatal(format!("{what} names no datastore root"));
        }
        // Batch's own retries (`retryStrategy`): a local failure has the status reason
        // of a container that exited, which `evaluateOnExit` decides about.
        let strategy = definition.get("retryStrategy");
        let batch_attempts = strategy
            .and_then(|s| s.get("attempts"))
            .and_then(Json::as_u64)
            .unwrap_or(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let exit = self.run_job(&job_name, &local_args, &env, timeout)?;
            let description = json!({
                "JobName": job_name,
                "JobQueue": queue,
                "JobDefinition": definition_name,
                "JobId": format!("job-{}", self.jobs),
                "Status": if exit == Some(0) { "SUCCEEDED" } else { "FAILED" },
                "StatusReason": EXITED_REASON,
                "Attempts": attempt,
                "Container": {"Command": command, "ExitCode": exit},
            });
            if exit == Some(0) {
                return Ok(description);
            }
            let Some(code) = exit else {
                return raise(
                    "States.Timeout",
                    format!("{what} ran over {timeout:?} seconds"),
                );
            };
            if attempt < batch_attempts && self.batch_retries(strategy, code)? {
                self.log.push(format!("{name}: Batch retries the job"));
                continue;
            }
            return raise("States.TaskFailed", description.to_string());
        }
    }

    /// Whether the job definition's `evaluateOnExit` retries a job that exited with
    /// `code` (rules in order; no rule matching retries).
    fn batch_retries(&self, strategy: Option<&Json>, code: i32) -> Result<bool, Stop> {
        for rule in strategy
            .and_then(|s| s.get("evaluateOnExit"))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            known_keys(
                rule,
                "an evaluateOnExit rule",
                &["onStatusReason", "onReason", "onExitCode", "action"],
            )?;
            let holds = |key: &str, text: &str| {
                rule.get(key)
                    .and_then(Json::as_str)
                    .is_none_or(|pattern| glob(pattern, text))
            };
            if holds("onStatusReason", EXITED_REASON)
                && holds("onReason", "")
                && holds("onExitCode", &code.to_string())
            {
                return match rule.get("action").and_then(Json::as_str) {
                    Some("RETRY") => Ok(true),
                    Some("EXIT") => Ok(false),
                    other => fatal(format!("an evaluateOnExit action {other:?}")),
                };
            }
        }
        Ok(true)
    }

    /// Runs one container: the exit code, or `None` when it ran out of time.
    fn run_job(
        &mut self,
        job_name: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        timeout: Option<u64>,
    ) -> Result<Option<i32>, Stop> {
        self.jobs += 1;
        // Every job starts in a fresh working directory, as a container would.
        let dir = self.work.join(format!("job-{}", self.jobs));
        std::fs::create_dir_all(&dir)
            .or_else(|e| fatal(format!("cannot create {}: {e}", dir.display())))?;
        let log_path = dir.join("log.txt");
        let log = File::create(&log_path)
            .or_else(|e| fatal(format!("cannot create the job log: {e}")))?;
        let log_err = log
            .try_clone()
            .or_else(|e| fatal(format!("cannot share the job log: {e}")))?;
        let mut child = Command::new(shim())
            .args(args)
            .envs(env)
            .env("FLOWC_PYTHON", python())
            .env_remove("FLOWC_DATASTORE_ROOT")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .or_else(|e| fatal(format!("cannot run the shim: {e}")))?;
        let started = Instant::now();
        let limit = timeout.map(Duration::from_secs);
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status.code().unwrap_or(-1)),
                Ok(None) => {}
                Err(e) => return fatal(format!("cannot wait for the shim: {e}")),
            }
            if limit.is_some_and(|l| started.elapsed() > l) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        self.log.push(format!(
            "{job_name}: flowc-shim {}\n  exit {code:?}\n{text}",
            args.join(" ")
        ));
        Ok(code)
    }

    fn run_map(&mut self, name: &str, state: &Json, input: &Json, ctx: &Ctx) -> Result<Json, Stop> {
        let what = format!("Map `{name}`");
        let Some(processor) = state.get("ItemProcessor") else {
            return fatal(format!("{what} has no ItemProcessor"));
        };
        known_keys(
            processor,
            "an ItemProcessor",
            &["ProcessorConfig", "StartAt", "States"],
        )?;
        let config = processor
            .get("ProcessorConfig")
            .cloned()
            .unwrap_or(json!({}));
        known_keys(&config, "a ProcessorConfig", &["Mode", "ExecutionType"])?;
        let distributed = match config.get("Mode").and_then(Json::as_str) {
            None | Some("INLINE") => false,
            Some("DISTRIBUTED") => {
                match config.get("ExecutionType").and_then(Json::as_str) {
                    Some("STANDARD") => {}
                    other => return fatal(format!("{what}: ExecutionType {other:?}")),
                }
                true
            }
            Some(other) => return fatal(format!("{what}: Mode `{other}`")),
        };
        if !distributed
            && ["ItemReader", "ResultWriter", "Label"]
                .iter()
                .any(|k| state.get(k).is_some())
        {
            return fatal(format!("{what} is inline but has distributed Map fields"));
        }
        match state.get("MaxConcurrency") {
            None => {}
            Some(n) if n.as_u64().is_some() => {}
            Some(other) => return fatal(format!("{what}: MaxConcurrency {other}")),
        }
        let items = match (state.get("ItemReader"), state.get("ItemsPath")) {
            (Some(reader), None) => {
                known_keys(
                    reader,
                    "an ItemReader",
                    &["Resource", "ReaderConfig", "Parameters"],
                )?;
                if reader.get("Resource").and_then(Json::as_str)
                    != Some("arn:aws:states:::s3:getObject")
                {
                    return fatal(format!(
                        "{what}: an ItemReader resource {:?}",
                        reader.get("Resource")
                    ));
                }
                let reader_config = reader.get("ReaderConfig").cloned().unwrap_or(json!({}));
                known_keys(&reader_config, "a ReaderConfig", &["InputType"])?;
                if reader_config.get("InputType").and_then(Json::as_str) != Some("JSON") {
                    return fatal(format!("{what}: a ReaderConfig other than JSON"));
                }
                let parameters =
                    eval_template(reader.get("Parameters").unwrap_or(&Json::Null), input, ctx)?;
                known_keys(
                    &parameters,
                    "the ItemReader's Parameters",
                    &["Bucket", "Key"],
                )?;
                let path = self.s3_object(
                    str_field(&parameters, "Bucket", "ItemReader")?,
                    str_field(&parameters, "Key", "ItemReader")?,
                )?;
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) => {
                        return raise(
                            "States.ItemReaderFailed",
                            format!("{}: {e}", path.display()),
                        )
                    }
                };
                serde_json::from_str::<Json>(&text)
                    .or_else(|e| raise("States.ItemReaderFailed", format!("not JSON: {e}")))?
            }
            (None, Some(Json::String(path))) => read_path(path, input, ctx)?,
            (None, None) => input.clone(),
            _ => {
                return fatal(format!(
                    "{what}: both ItemReader and ItemsPath, or a bad ItemsPath"
                ))
            }
        };
        let Some(items) = items.as_array() else {
            return runtime(format!("the items of `{name}` are not a list: {items}"));
        };
        self.map_runs += 1;
        let map_run = format!("{EXECUTION_NAME}-maprun-{}", self.map_runs);
        let mut results = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut item_ctx = ctx.clone();
            item_ctx.map_item = Some((index, item.clone()));
            let selected = match state.get("ItemSelector") {
                Some(selector) => eval_template(selector, input, &item_ctx)?,
                None => item.clone(),
            };
            // A distributed Map's iterations are child executions: names and inputs of
            // their own, so nothing of the parent's context reaches them but through
            // the selected item.
            let child_ctx = if distributed {
                Ctx::new(&format!("{map_run}-{index}"), selected.clone())
            } else {
                let mut c = ctx.clone();
                c.map_item = None;
                c
            };
            let iteration = format!("iteration {index} of `{name}`");
            match self.run_machine(processor, selected, &child_ctx, &iteration) {
                Ok(out) => results.push(out),
                Err(Stop::Error {
                    error,
                    cause,
                    fail_state,
                }) if distributed => {
                    self.log.push(format!(
                        "{iteration} failed: {error}: {cause} ({fail_state:?})"
                    ));
                    // A distributed Map tolerates no failed child by default.
                    return raise(
                        "States.ExceedToleratedFailureThreshold",
                        format!("{iteration} failed with {error}"),
                    );
                }
                Err(stop) => return Err(stop),
            }
        }
        let results = Json::Array(results);
        match state.get("ResultWriter") {
            None => Ok(results),
            Some(writer) => {
                known_keys(writer, "a ResultWriter", &["Resource", "Parameters"])?;
                if writer.get("Resource").and_then(Json::as_str)
                    != Some("arn:aws:states:::s3:putObject")
                {
                    return fatal(format!(
                        "{what}: a ResultWriter resource {:?}",
                        writer.get("Resource")
                    ));
                }
                let parameters =
                    eval_template(writer.get("Parameters").unwrap_or(&Json::Null), input, ctx)?;
                known_keys(
                    &parameters,
                    "the ResultWriter's Parameters",
                    &["Bucket", "Prefix"],
                )?;
                let bucket = str_field(&parameters, "Bucket", "ResultWriter")?;
                let prefix = str_field(&parameters, "Prefix", "ResultWriter")?;
                let manifest_key = format!("{prefix}/{map_run}/manifest.json");
                let results_key = format!("{prefix}/{map_run}/SUCCEEDED_0.json");
                for (key, body) in [
                    (&results_key, results.to_string()),
                    (
                        &manifest_key,
                        json!({"ResultFiles": {"SUCCEEDED": [{"Key": results_key}]}}).to_string(),
                    ),
                ] {
                    let path = self.s3_object(bucket, key)?;
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).or_else(|e| fatal(format!("{e}")))?;
                    }
                    std::fs::write(&path, body).or_else(|e| fatal(format!("{e}")))?;
                }
                Ok(json!({
                    "MapRunArn": map_run,
                    "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
                }))
            }
        }
    }
}

/// Every state name of `machine`, its branches and Map bodies, refusing a name used
/// twice: Step Functions wants them unique across the whole machine.
fn unique_state_names(machine: &Json, names: &mut Vec<String>) -> Result<(), Stop> {
    let Some(states) = machine.get("States").and_then(Json::as_object) else {
        return fatal("a scope without `States`");
    };
    for (name, state) in states {
        if names.contains(name) {
            return fatal(format!("the state name `{name}` is used twice"));
        }
        names.push(name.clone());
        for branch in state
            .get("Branches")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            unique_state_names(branch, names)?;
        }
        if let Some(processor) = state.get("ItemProcessor") {
            unique_state_names(processor, names)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// A flow compiled, walked, and compared with `flowc run`.

fn check(flow_file: &Path, options: &FrontendOptions) -> flowc_ir::Flow {
    let text = std::fs::read_to_string(flow_file).expect("flow file");
    let name = flow_file.to_string_lossy();
    let checked = flowc::check(&name, &text, options);
    assert!(!checked.has_errors(), "{name}: {:?}", checked.diagnostics);
    checked.flow.expect("a checked flow")
}

fn config(code_package: CodePackageRef, map_mode: MapMode) -> SfnConfig {
    SfnConfig {
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:walk".to_owned(),
        shim_path: SHIM_IN_IMAGE.to_owned(),
        job_queue: "flowc-walk-queue".to_owned(),
        job_role: None,
        execution_role: None,
        datastore_root: DATASTORE_ROOT.to_owned(),
        region: Some("eu-west-1".to_owned()),
        account: Some("123456789012".to_owned()),
        schedule_role: Some("arn:aws:iam::123456789012:role/flowc-scheduler".to_owned()),
        platform: Platform::Ec2,
        map_mode,
        max_concurrency: Some(4),
        foreach_widths: BTreeMap::new(),
        code_package,
        user: Some("walker".to_owned()),
        flowc_version: "0.0.0".to_owned(),
    }
}

/// What a walk left: how the execution ended, the run's contents, the walker's log.
struct Walked {
    outcome: Outcome,
    run: RunContents,
    log: String,
}

/// Compiles `flow_file` for `map_mode`, and walks its state machine as an execution
/// started with `input`, into a store under `scratch`.
fn walk_machine(
    scratch: &Scratch,
    flow_file: &Path,
    options: &FrontendOptions,
    map_mode: MapMode,
    input: Json,
) -> Walked {
    walk_edited_machine(scratch, flow_file, options, map_mode, input, &|text| text)
}

/// [`walk_machine`] of the state machine's JSON text after `edit`.
fn walk_edited_machine(
    scratch: &Scratch,
    flow_file: &Path,
    options: &FrontendOptions,
    map_mode: MapMode,
    input: Json,
    edit: &dyn Fn(String) -> String,
) -> Walked {
    let flow = check(flow_file, options);
    let store = scratch.dir.join("walk-store");
    let code_package = package(flow_file, &flow.name, &store);
    let documents = sfn(&flow, &config(code_package, map_mode))
        .unwrap_or_else(|d| panic!("{}: does not compile: {d:#?}", flow.name));
    // Walk what AWS would read: the JSON, not the Rust structs.
    let text = flowc::emit::json(&documents.state_machine).expect("serialises");
    let machine: Json = serde_json::from_str(&edit(text)).expect("the state machine reads back");
    let definitions: Json =
        serde_json::from_str(&flowc::emit::json(&documents.job_definitions).expect("serialises"))
            .expect("the job definitions read back");
    if let Err(e) = known_keys(
        &machine,
        "the state machine",
        &["Comment", "StartAt", "States"],
    ) {
        panic!("{}: {e:?}", flow.name);
    }
    if let Err(e) = unique_state_names(&machine, &mut Vec::new()) {
        panic!("{}: {e:?}", flow.name);
    }
    let mut walker = Walker::new(&definitions, &store, &scratch.dir.join("jobs"))
        .unwrap_or_else(|e| panic!("{}: {e:?}", flow.name));
    let outcome = walker.execute(&machine, EXECUTION_NAME, input);
    let log = walker.log.join("\n");
    let outcome = outcome.unwrap_or_else(|e| panic!("{}: the walk stopped: {e}\n{log}", flow.name));
    let run = contents(&store, &flow.name, EXECUTION_NAME, MissingManifest::Record);
    Walked { outcome, run, log }
}

/// `flowc run` of `flow_file` with `run_args` into a store under `scratch`: what it holds.
fn flowc_run(
    scratch: &Scratch,
    flow_file: &Path,
    options: &FrontendOptions,
    run_args: &[&str],
) -> RunContents {
    let flow = check(flow_file, options);
    let run_store = scratch.dir.join("run-store");
    let run_id = flowc_run_id(scratch, flow_file, run_args, &run_store, &flow.name);
    contents(&run_store, &flow.name, &run_id, MissingManifest::Record)
}

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("fixtures/flows/valid").join(name)
}

/// Walks `flow_file` started with `input` and runs it with `run_args` (the same
/// values); asserts the walk succeeded and both runs hold the same steps, the same
/// number of tasks per step and the same artifacts; returns the walked run.
fn walk_and_compare(
    test: &str,
    flow_file: &Path,
    map_mode: MapMode,
    input: Json,
    run_args: &[&str],
) -> RunContents {
    let scratch = Scratch::new(test);
    let options = FrontendOptions::default();
    let walked = walk_machine(&scratch, flow_file, &options, map_mode, input);
    let name = flow_file.display();
    assert!(
        matches!(walked.outcome, Outcome::Succeeded(_)),
        "{name}: the execution did not succeed: {:?}\n{}",
        walked.outcome,
        walked.log
    );
    let ran = flowc_run(&scratch, flow_file, &options, run_args);
    assert_same_run(&name.to_string(), &walked.run, &ran, &walked.log);
    walked.run
}

/// The same steps, the same number of tasks per step, the same artifacts per step
/// (as multisets of tasks: task ids differ between the runs).
fn assert_same_run(name: &str, walked: &RunContents, ran: &RunContents, log: &str) {
    assert_eq!(
        walked.keys().collect::<Vec<_>>(),
        ran.keys().collect::<Vec<_>>(),
        "{name}: the walk and the run ran different steps\n{log}"
    );
    for (step, tasks) in ran {
        assert_eq!(
            walked[step].len(),
            tasks.len(),
            "{name}: step `{step}` has a different number of tasks\n{log}"
        );
        assert_eq!(
            &walked[step], tasks,
            "{name}: the tasks of step `{step}` hold different artifacts"
        );
    }
}

fn walk(test: &str, fixture_name: &str) -> RunContents {
    walk_and_compare(
        test,
        &fixture(fixture_name),
        MapMode::Distributed,
        json!({}),
        &[],
    )
}

fn tasks(run: &RunContents, step: &str) -> usize {
    run.get(step).map_or(0, Vec::len)
}

#[test]
fn a_linear_flow_walks_like_flowc_run() {
    let run = walk("linear", "linear_hello.py");
    assert_eq!(tasks(&run, "_parameters"), 1);
    assert_eq!(tasks(&run, "end"), 1);
}

#[test]
fn a_branch_and_its_join_walk_like_flowc_run() {
    let run = walk("branch", "branch_join.py");
    assert_eq!(tasks(&run, "end"), 1);
}

#[test]
fn a_foreach_fans_out_through_a_distributed_map_like_flowc_run() {
    let run = walk("foreach", "foreach_join.py");
    assert_eq!(tasks(&run, "train"), 4, "{run:?}");
}

#[test]
fn a_foreach_fans_out_through_an_inline_map_like_flowc_run() {
    let run = walk_and_compare(
        "foreach-inline",
        &fixture("foreach_join.py"),
        MapMode::Inline,
        json!({}),
        &[],
    );
    assert_eq!(tasks(&run, "train"), 4, "{run:?}");
}

#[test]
fn a_nested_foreach_walks_like_flowc_run_with_either_kind_of_map() {
    let distributed = walk("nested", "nested_foreach.py");
    assert!(
        distributed.values().any(|t| t.len() >= 4),
        "{distributed:?}"
    );
    let inline = walk_and_compare(
        "nested-inline",
        &fixture("nested_foreach.py"),
        MapMode::Inline,
        json!({}),
        &[],
    );
    assert_eq!(inline, distributed);
}

#[test]
fn branch_and_foreach_together_walk_like_flowc_run() {
    walk("branch-foreach", "branch_foreach_training.py");
}

#[test]
fn a_switch_whose_cases_converge_walks_like_flowc_run() {
    let run = walk("switch", "switch_converge.py");
    assert_eq!(tasks(&run, "read_parquet"), 1);
    assert_eq!(tasks(&run, "parse_csv"), 0);
}

#[test]
fn an_execution_input_overrides_a_parameter() {
    let run = walk_and_compare(
        "switch-input",
        &fixture("switch_converge.py"),
        MapMode::Distributed,
        json!({"format": "csv"}),
        &["--format", "csv"],
    );
    assert_eq!(tasks(&run, "parse_csv"), 1);
    assert_eq!(tasks(&run, "read_parquet"), 0);
}

#[test]
fn every_kind_of_parameter_reaches_the_run_from_the_execution_input() {
    // A job's working directory holds no flow files: an IncludeFile is given as a
    // path the job can read.
    let vocabulary = fixture("vocab.txt");
    let vocabulary = vocabulary.to_str().expect("UTF-8 path");
    let model = "it's: {\"a\": 1}\n{}";
    let run = walk_and_compare(
        "parameters",
        &fixture("parameters_all.py"),
        MapMode::Distributed,
        json!({"dataset": "v3", "epochs": 3, "model-name": model, "vocabulary": vocabulary}),
        &[
            "--dataset",
            "v3",
            "--epochs",
            "3",
            "--model-name",
            model,
            "--vocabulary",
            vocabulary,
        ],
    );
    assert_eq!(tasks(&run, "_parameters"), 1);
}

#[test]
fn a_self_looping_switch_loops_like_flowc_run() {
    let run = walk("recursion", "switch_recursion.py");
    assert_eq!(tasks(&run, "train"), 5);
}

#[test]
fn a_switch_inside_a_branch_walks_like_flowc_run() {
    let run = walk("switch-in-branch", "switch_three_way_in_branch.py");
    assert_eq!(tasks(&run, "fit_trees"), 1);
}

#[test]
fn switch_cases_of_different_lengths_meet_again_like_flowc_run() {
    let run = walk("multi-step-cases", "switch_multi_step_cases.py");
    assert_eq!(tasks(&run, "featurize"), 1);
    assert_eq!(tasks(&run, "sample"), 0);
    let flow = fixture("switch_multi_step_cases.py");
    let nested = walk_and_compare(
        "multi-step-cases-nested",
        &flow,
        MapMode::Distributed,
        json!({"freshness": "partial"}),
        &["--freshness", "partial"],
    );
    assert_eq!(tasks(&nested, "densify"), 1);
    assert_eq!(tasks(&nested, "clean"), 0);
    let skipped = walk_and_compare(
        "multi-step-cases-skip",
        &flow,
        MapMode::Distributed,
        json!({"freshness": "cached"}),
        &["--freshness", "cached"],
    );
    assert_eq!(tasks(&skipped, "train"), 1);
    assert_eq!(skipped.len(), 4, "{skipped:?}"); // _parameters, start, train, end
}

#[test]
fn a_foreach_whose_splits_end_in_different_steps_joins_like_flowc_run() {
    let run = walk("foreach-switch", "foreach_switch_join.py");
    assert_eq!(tasks(&run, "score_fast"), 3);
    assert_eq!(tasks(&run, "score_parts"), 2);
    let inline = walk_and_compare(
        "foreach-switch-inline",
        &fixture("foreach_switch_join.py"),
        MapMode::Inline,
        json!({}),
        &[],
    );
    assert_eq!(inline, run);
}

#[test]
fn a_foreach_body_starting_with_a_loop_walks_like_flowc_run() {
    let run = walk("foreach-loop", "foreach_loop_body.py");
    assert_eq!(tasks(&run, "tune"), 6);
}

#[test]
fn a_branch_arm_ending_in_switch_cases_joins_like_flowc_run() {
    let run = walk("branch-switch", "branch_switch_join.py");
    assert_eq!(tasks(&run, "accept"), 1);
    let audited = walk_and_compare(
        "branch-switch-audit",
        &fixture("branch_switch_join.py"),
        MapMode::Distributed,
        json!({"source": "vendor"}),
        &["--source", "vendor"],
    );
    assert_eq!(tasks(&audited, "review"), 1);
    assert_eq!(tasks(&audited, "accept"), 0);
}

#[test]
fn the_comparison_tells_runs_with_different_inputs_apart() {
    let scratch = Scratch::new("differ");
    let options = FrontendOptions::default();
    let flow = fixture("switch_converge.py");
    let walked = walk_machine(
        &scratch,
        &flow,
        &options,
        MapMode::Distributed,
        json!({"format": "csv"}),
    );
    let ran = flowc_run(&scratch, &flow, &options, &[]);
    assert_ne!(
        walked.run.keys().collect::<Vec<_>>(),
        ran.keys().collect::<Vec<_>>()
    );
    assert_ne!(walked.run["_parameters"], ran["_parameters"]);
}

/// A flow written for one test, in the test's scratch directory.
fn flow_file(scratch: &Scratch, source: &str) -> PathBuf {
    let path = scratch.dir.join("flow.py");
    std::fs::write(&path, source).expect("write the flow");
    path
}

#[test]
fn a_failing_step_ends_the_execution_in_the_fail_state_naming_it() {
    let scratch = Scratch::new("failing");
    let source = r#"from metaflow import FlowSpec, step

class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.explode)

    @step
    def explode(self):
        raise ValueError('no')
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let path = flow_file(&scratch, source);
    let walked = walk_machine(
        &scratch,
        &path,
        &FrontendOptions::default(),
        MapMode::Distributed,
        json!({}),
    );
    match &walked.outcome {
        Outcome::Failed {
            error,
            cause,
            fail_state,
        } => {
            assert_eq!(error, "flowc.StepFailed");
            assert!(cause.contains("step `explode`"), "{cause}");
            assert_eq!(fail_state.as_deref(), Some("explode.failed"));
        }
        other => panic!("the execution did not fail: {other:?}\n{}", walked.log),
    }
    assert_eq!(tasks(&walked.run, "start"), 1);
    assert_eq!(
        tasks(&walked.run, "end"),
        0,
        "nothing runs after the failure"
    );
}

#[test]
fn a_failing_split_fails_the_map_into_its_fail_state() {
    let scratch = Scratch::new("failing-split");
    let source = r#"from metaflow import FlowSpec, step

class FailingSplitFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2, 3]
        self.next(self.work, foreach='xs')

    @step
    def work(self):
        if self.input == 2:
            raise ValueError('two')
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let path = flow_file(&scratch, source);
    // A distributed Map fails with a generic error when a child execution fails, so
    // it is caught into a Fail state naming the foreach step; an inline Map passes the
    // failing iteration's own Fail state on, which names the failing step.
    for (mode, step, fail) in [
        (MapMode::Distributed, "start", "start.foreach.failed"),
        (MapMode::Inline, "work", "work.failed"),
    ] {
        let walked = walk_machine(
            &scratch,
            &path,
            &FrontendOptions::default(),
            mode,
            json!({}),
        );
        match &walked.outcome {
            Outcome::Failed {
                error,
                cause,
                fail_state,
            } => {
                assert_eq!(error, "flowc.StepFailed", "{mode:?}");
                assert!(
                    cause.contains(&format!("step `{step}`")),
                    "{mode:?}: {cause}"
                );
                assert_eq!(fail_state.as_deref(), Some(fail), "{mode:?}");
            }
            other => panic!(
                "{mode:?}: the execution did not fail: {other:?}\n{}",
                walked.log
            ),
        }
        assert_eq!(tasks(&walked.run, "join"), 0);
        let _ = std::fs::remove_dir_all(scratch.dir.join("walk-store"));
    }
}

#[test]
fn a_retried_step_gets_its_attempt_number_and_succeeds_like_flowc_run() {
    let scratch = Scratch::new("retry");
    let source = r#"from metaflow import FlowSpec, step, retry, current

class FlakyFlow(FlowSpec):
    @retry(times=2, minutes_between_retries=0)
    @step
    def start(self):
        if current.retry_count < 1:
            raise RuntimeError('flaky')
        self.attempt = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    // The flow lives beside the run's own scratch directory, which holds the stores.
    let path = flow_file(&scratch, source);
    let run = walk_and_compare("retry-run", &path, MapMode::Distributed, json!({}), &[]);
    assert_eq!(tasks(&run, "start"), 1);
}

// ---------------------------------------------------------------------------------
// The interpreter itself: what it evaluates, and that it refuses what it does not know.

fn ctx() -> Ctx {
    let mut ctx = Ctx::new("exec-9", json!({"alpha": 0.5}));
    ctx.map_item = Some((2, json!(7)));
    ctx.retry_count = 1;
    ctx
}

fn fatal_message<T: std::fmt::Debug>(result: Result<T, Stop>) -> String {
    match result {
        Err(Stop::Fatal(message)) => message,
        other => panic!("expected the walker to refuse, got {other:?}"),
    }
}

#[test]
fn intrinsics_and_paths_evaluate_as_step_functions_does() {
    let input = json!({"task_id": "t-1", "run_id": "r", "loop": {"round": 2}, "parts": [{"task": "a/t"}, {"task": "b/t"}]});
    let ctx = ctx();
    let eval = |text: &str| eval_expr(text, &input, &ctx).unwrap();
    assert_eq!(
        eval("States.Format('{}-{}', $.task_id, $$.Map.Item.Value)"),
        json!("t-1-7")
    );
    assert_eq!(
        eval("States.Format('\\{{}\\}', $.loop.round)"),
        json!("{2}")
    );
    assert_eq!(eval("States.MathAdd($.loop.round, 1)"), json!(3));
    assert_eq!(eval("$.parts[*].task"), json!(["a/t", "b/t"]));
    assert_eq!(
        eval("States.JsonToString($.parts[*].task)"),
        json!("[\"a/t\",\"b/t\"]")
    );
    assert_eq!(eval("States.StringToJson('[0,1]')"), json!([0, 1]));
    assert_eq!(
        eval("States.JsonMerge($.loop, $$.Execution.Input, false)"),
        json!({"round": 2, "alpha": 0.5})
    );
    assert_eq!(
        eval("States.Array('a', $$.Execution.Name, States.Format('{}', $$.State.RetryCount))"),
        json!(["a", "exec-9", "1"])
    );
    assert_eq!(
        write_path(json!({"a": 1}), "$.b.c", json!(2)).unwrap(),
        json!({"a": 1, "b": {"c": 2}})
    );
    // A path matching nothing is a runtime error, not an empty value.
    assert!(fatal_message(eval_expr("$.missing", &input, &ctx)).starts_with("States.Runtime"));
    assert!(
        fatal_message(eval_expr("States.Format('{}', $.task_id, 1)", &input, &ctx))
            .contains("more arguments")
    );
}

#[test]
fn the_walker_refuses_what_it_does_not_model() {
    let input = json!({"a": [1, 2]});
    let ctx = ctx();
    assert!(
        fatal_message(eval_expr("States.Hash($.a, 'SHA-1')", &input, &ctx)).contains("States.Hash")
    );
    assert!(fatal_message(eval_expr("$.a[0]", &input, &ctx)).contains("path syntax"));
    assert!(fatal_message(eval_expr("$..a", &input, &ctx)).contains("path syntax"));
    assert!(fatal_message(eval_expr("States.Format('\\n')", &input, &ctx)).contains("escape"));
    let twice = json!({"StartAt": "a", "States": {"a": {"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}]}}});
    assert!(fatal_message(unique_state_names(&twice, &mut Vec::new())).contains("`a`"));
    let scratch = Scratch::new("refuse");
    let mut walker = Walker::new(&json!([]), &scratch.dir, &scratch.dir).unwrap();
    let machine = |state: Json| json!({"StartAt": "s", "States": {"s": state}});
    let refused = |walker: &mut Walker, state: Json| -> String {
        walker
            .execute(&machine(state), "e", json!({}))
            .expect_err("the walker refuses")
    };
    assert!(refused(
        &mut walker,
        json!({"Type": "Wait", "Seconds": 1, "End": true})
    )
    .contains("`Wait`"));
    assert!(refused(
        &mut walker,
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true})
    )
    .contains("lambda:invoke"));
    assert!(refused(
        &mut walker,
        json!({"Type": "Pass", "Resultt": 1, "End": true})
    )
    .contains("Resultt"));
    assert!(refused(
        &mut walker,
        json!({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringMatches": "x*", "Next": "s"}]})
    )
    .contains("StringMatches"));
    assert!(refused(
        &mut walker,
        json!({"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync",
               "Parameters": {"JobName": "j", "JobQueue": "q", "JobDefinition": "nowhere"}, "End": true})
    )
    .contains("not generated"));
    assert!(refused(
        &mut walker,
        json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
               "Parameters": {"Bucket": "elsewhere", "Key": "k"}, "End": true})
    )
    .contains("outside the datastore"));
    // A Catch on States.ALL does not hide what the walker cannot do.
    assert!(refused(
        &mut walker,
        json!({"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true,
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "s"}]})
    )
    .contains("sns:publish"));
}

#[test]
fn state_processing_follows_the_language() {
    let scratch = Scratch::new("states");
    let mut walker = Walker::new(&json!([]), &scratch.dir, &scratch.dir).unwrap();
    let machine = json!({
        "StartAt": "defaults",
        "States": {
            "defaults": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$", "Next": "start"},
            "start": {"Type": "Pass", "Parameters": {"p.$": "States.JsonMerge($, $$.Execution.Input, false)", "k": "v"}, "Next": "fan"},
            "fan": {
                "Type": "Map", "ItemsPath": "$.p.items",
                "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
                "ItemProcessor": {"StartAt": "tag", "States": {
                    "tag": {"Type": "Pass", "Parameters": {"task.$": "States.Format('{}/{}', $.k, $.v)"}, "ResultPath": "$.out", "OutputPath": "$.out", "End": true}
                }},
                "ResultSelector": {"tasks.$": "$[*].task"}, "ResultPath": "$.joined", "Next": "both"
            },
            "both": {"Type": "Parallel", "Branches": [
                {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "A", "End": true}}},
                {"StartAt": "b", "States": {"b": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
            ], "ResultPath": null, "Catch": [{"ErrorEquals": ["E"], "ResultPath": "$.error", "Next": "choose"}], "Next": "done"},
            "choose": {"Type": "Choice", "Choices": [
                {"Variable": "$.error.Error", "StringEquals": "X", "Next": "done"},
                {"And": [{"Variable": "$.p.x", "NumericEquals": 1}, {"Not": {"Variable": "$.nothing", "IsPresent": true}}], "Next": "done"}
            ]},
            "done": {"Type": "Succeed"}
        }
    });
    let outcome = walker
        .execute(&machine, "e", json!({"items": ["m", "n"]}))
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Succeeded(json!({
            "p": {"x": 1, "items": ["m", "n"]}, "k": "v",
            "joined": {"tasks": ["v/m", "v/n"]},
            "error": {"Error": "E", "Cause": "c"},
        }))
    );
    // No rule matching and no Default: the execution fails.
    let no_match = json!({"StartAt": "c", "States": {"c": {"Type": "Choice",
        "Choices": [{"Variable": "$.v", "StringEquals": "a", "Next": "c"}]}}});
    match walker.execute(&no_match, "e", json!({"v": "b"})).unwrap() {
        Outcome::Failed { error, .. } => assert_eq!(error, "States.NoChoiceMatched"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_job_definitions_run_alone_with_batch_parameters_like_flowc_run() {
    // `aws batch submit-job --parameters ...` without the state machine: each
    // definition's own command, its `Ref::` placeholders filled from the submitted
    // parameters over the definition's defaults, in the order the flow runs.
    let scratch = Scratch::new("job-definitions");
    let flow_file = fixture("foreach_join.py");
    let options = FrontendOptions::default();
    let flow = check(&flow_file, &options);
    let store = scratch.dir.join("walk-store");
    let code_package = package(&flow_file, &flow.name, &store);
    let documents = sfn(&flow, &config(code_package, MapMode::Distributed)).expect("compiles");
    let definitions: Json =
        serde_json::from_str(&flowc::emit::json(&documents.job_definitions).expect("serialises"))
            .expect("the job definitions read back");
    let mut walker = Walker::new(&definitions, &store, &scratch.dir.join("jobs"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let run = EXECUTION_NAME;
    let mut submit = |step: &str, parameters: Json| {
        let job = json!({
            "JobName": format!("{}-{step}", documents.name),
            "JobQueue": "flowc-walk-queue",
            "JobDefinition": format!("{}-{step}", documents.name),
            "Parameters": parameters,
        });
        if let Err(e) = walker.submit_job(step, &job, None) {
            panic!("{step}: {e:?}\n{}", walker.log.join("\n"));
        }
    };
    // `params_json` keeps its default, `{}`: every parameter takes its default.
    submit("flowc-init", json!({"run_id": run}));
    submit("start", json!({"run_id": run, "task_id": "t"}));
    // The width the start job left in the store, where the state machine reads it.
    let width: usize = std::fs::read_to_string(store.join(format!(
        "{}/runs/{run}/start/t/outputs/num_splits",
        flow.name
    )))
    .expect("num_splits")
    .parse()
    .expect("a number");
    assert_eq!(width, 4);
    for index in 0..width {
        // `retry_count` keeps its default, `0`.
        submit(
            "train",
            json!({
                "run_id": run,
                "task_id": format!("t-{index}"),
                "input_paths": format!("{run}/start/t"),
                "split_index": index.to_string(),
            }),
        );
    }
    submit(
        "pick",
        json!({"run_id": run, "task_id": "t", "input_paths": format!("{run}/train/t-:{width}")}),
    );
    submit(
        "end",
        json!({"run_id": run, "task_id": "t", "input_paths": format!("{run}/pick/t")}),
    );
    let walked = contents(&store, &flow.name, run, MissingManifest::Record);
    let ran = flowc_run(&scratch, &flow_file, &options, &[]);
    assert_same_run("foreach_join.py", &walked, &ran, "");
    // A placeholder left without a value is refused, not passed on as text.
    let missing = json!({
        "JobName": "j",
        "JobQueue": "q",
        "JobDefinition": format!("{}-end", documents.name),
        "Parameters": {"run_id": run},
    });
    let mut walker = Walker::new(&definitions, &store, &scratch.dir.join("jobs"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(fatal_message(walker.submit_job("end", &missing, None)).contains("Ref::task_id"));
}

#[test]
fn a_miswired_state_machine_does_not_walk_like_flowc_run() {
    // The walk depends on the wiring it follows: the same flow with its splits given
    // task ids the join does not name fails in the join, and without the item list
    // the distributed Map cannot read its items.
    let scratch = Scratch::new("miswired");
    let flow = fixture("foreach_join.py");
    let options = FrontendOptions::default();
    let selector = "States.Format('{}-{}', $.task_id, $$.Map.Item.Value)";
    let renamed = walk_edited_machine(
        &scratch,
        &flow,
        &options,
        MapMode::Distributed,
        json!({}),
        &|text| {
            assert!(text.contains(selector));
            text.replace(
                selector,
                "States.Format('{}-{}0', $.task_id, $$.Map.Item.Value)",
            )
        },
    );
    match &renamed.outcome {
        Outcome::Failed { fail_state, .. } => {
            assert_eq!(
                fail_state.as_deref(),
                Some("pick.failed"),
                "{}",
                renamed.log
            )
        }
        other => panic!("the miswired walk did not fail: {other:?}"),
    }
    assert_eq!(tasks(&renamed.run, "train"), 4);
    let _ = std::fs::remove_dir_all(scratch.dir.join("walk-store"));
    let unread = walk_edited_machine(
        &scratch,
        &flow,
        &options,
        MapMode::Distributed,
        json!({}),
        &|text| {
            assert!(text.contains(", '--write-outputs')"));
            text.replace(", '--write-outputs')", ")")
        },
    );
    match &unread.outcome {
        Outcome::Failed { fail_state, .. } => {
            assert_eq!(fail_state.as_deref(), Some("start.foreach.failed"))
        }
        other => panic!("the walk without item list did not fail: {other:?}"),
    }
    assert!(
        unread.log.contains("States.ItemReaderFailed"),
        "{}",
        unread.log
    );
    assert_eq!(tasks(&unread.run, "train"), 0);
}
