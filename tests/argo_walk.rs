//! End-to-end wiring of the Argo target: a small walker follows the generated
//! WorkflowTemplate the way Argo's controller would (DAG `depends`, `when`, `withParam`
//! fan-outs, nested and recursive DAG templates, parameter substitution and
//! expressions, output parameters read from files), runs every container's
//! `flowc-shim` command as a local process against a local store, and the run it
//! leaves must hold the same steps, tasks and artifacts as `flowc run` of the same flow.
//!
//! The walker knows only the subset of Argo that flowc emits and fails on anything
//! else (an unknown template kind or field, an unresolved `{{...}}`, an expression it
//! cannot parse), so a change in the generator cannot make it pass by being ignored.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use flowc::backends::argo::{argo, default_webhook_url, ArgoConfig, CodePackageRef, Document};
use flowc::FrontendOptions;
use serde_json::Value as Json;

#[allow(dead_code)]
mod support;

use support::{
    checked, contents, flowc_run_id, package, python, shim, workspace_root, MissingManifest,
    RunContents, Scratch,
};

/// What the manifests call the datastore and the shim; the walker maps both to this
/// machine.
const DATASTORE_IN_POD: &str = "s3://flowc-walk/store";
const SHIM_IN_POD: &str = "/flowc/bin/flowc-shim";
const OUTPUTS_IN_POD: &str = "/tmp/flowc/outputs";
/// The workflow's name, hence the run id, as Argo would generate it.
const WORKFLOW_NAME: &str = "walk-x7k2q";

// ---------------------------------------------------------------------------------
// Expressions: the part of expr-lang (`{{=...}}`, `valueFrom.expression`) and of
// govaluate (`when` after substitution) that flowc emits.

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Nil,
}

impl Val {
    fn render(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Nil => "nil".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Int(i64),
    Ident(String),
    Punct(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                s.push(chars[i]);
                i += 1;
            }
            if i == chars.len() {
                return Err(format!("unterminated string in `{text}`"));
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            out.push(Tok::Int(digits.parse().map_err(|e| format!("{e}"))?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let punct = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                "||" => Some("||"),
                "&&" => Some("&&"),
                _ => None,
            };
            if let Some(p) = punct {
                out.push(Tok::Punct(p));
                i += 2;
                continue;
            }
            let one = match c {
                '?' => "?",
                ':' => ":",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                '.' => ".",
                '+' => "+",
                ',' => ",",
                _ => return Err(format!("unexpected `{c}` in expression `{text}`")),
            };
            out.push(Tok::Punct(one));
            i += 1;
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Expr {
    Lit(Val),
    /// A dotted name (`tasks.start.outputs.parameters.switch-step`), looked up in the scope.
    Var(String),
    Call(String, Vec<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    text: String,
}

impl Parser {
    fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: tokenize(text)?,
            pos: 0,
            text: text.to_owned(),
        };
        let e = p.cond()?;
        if p.pos != p.toks.len() {
            return Err(format!("trailing tokens in expression `{text}`"));
        }
        Ok(e)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, punct: &str) -> bool {
        if self.peek() == Some(&Tok::Punct(leak(punct))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), String> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(format!("expected `{punct}` in expression `{}`", self.text))
        }
    }

    fn cond(&mut self) -> Result<Expr, String> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.cond()?;
            self.expect(":")?;
            let b = self.cond()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        const LEVELS: [&[&str]; 4] = [&["||"], &["&&"], &["==", "!="], &["+"]];
        let Some(ops) = LEVELS.get(level) else {
            return self.primary();
        };
        let mut left = self.binary(level + 1)?;
        loop {
            let Some(op) = ops
                .iter()
                .find(|op| self.peek() == Some(&Tok::Punct(leak(op))))
            else {
                return Ok(left);
            };
            let op = leak(op);
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = self
            .peek()
            .cloned()
            .ok_or_else(|| format!("expression `{}` ends early", self.text))?;
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Tok::Int(i) => Ok(Expr::Lit(Val::Int(i))),
            Tok::Punct("(") => {
                let e = self.cond()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "nil" => Ok(Expr::Lit(Val::Nil)),
                _ if self.eat("(") => {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.cond()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    Ok(Expr::Call(name, args))
                }
                _ => {
                    let mut path = name;
                    loop {
                        if self.eat(".") {
                            match self.peek().cloned() {
                                Some(Tok::Ident(part)) => {
                                    self.pos += 1;
                                    path = format!("{path}.{part}");
                                }
                                _ => return Err(format!("bad name in `{}`", self.text)),
                            }
                        } else if self.eat("[") {
                            match self.peek().cloned() {
                                Some(Tok::Str(part)) => {
                                    self.pos += 1;
                                    path = format!("{path}.{part}");
                                }
                                _ => return Err(format!("bad index in `{}`", self.text)),
                            }
                            self.expect("]")?;
                        } else {
                            return Ok(Expr::Var(path));
                        }
                    }
                }
            },
            Tok::Punct(p) => Err(format!("unexpected `{p}` in `{}`", self.text)),
        }
    }
}

/// The punctuation tokens are `&'static str`; map a borrowed one to its static twin.
fn leak(p: &str) -> &'static str {
    const ALL: [&str; 13] = [
        "==", "!=", "||", "&&", "?", ":", "(", ")", "[", "]", ".", "+", ",",
    ];
    ALL.iter().find(|a| **a == p).copied().unwrap_or("\u{0}")
}

/// Names → values a template sees.
type Scope = BTreeMap<String, String>;

fn eval(e: &Expr, scope: &Scope) -> Result<Val, String> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Var(name) => Val::Str(
            scope
                .get(name)
                .cloned()
                .ok_or_else(|| format!("expression reads `{name}`, which is not in scope"))?,
        ),
        Expr::Call(f, args) => match (f.as_str(), args.as_slice()) {
            ("asInt", [x]) => match eval(x, scope)? {
                Val::Int(i) => Val::Int(i),
                Val::Str(s) => Val::Int(s.trim().parse().map_err(|_| format!("asInt({s})"))?),
                other => return Err(format!("asInt({other:?})")),
            },
            _ => return Err(format!("unknown function `{f}`")),
        },
        Expr::Cond(c, a, b) => match eval(c, scope)? {
            Val::Bool(true) => eval(a, scope)?,
            Val::Bool(false) => eval(b, scope)?,
            other => return Err(format!("condition is {other:?}, not a boolean")),
        },
        Expr::Bin(op, a, b) => {
            let a = eval(a, scope)?;
            // `||` and `&&` short-circuit, as in expr-lang and govaluate.
            match (*op, &a) {
                ("||", Val::Bool(true)) => return Ok(Val::Bool(true)),
                ("&&", Val::Bool(false)) => return Ok(Val::Bool(false)),
                _ => {}
            }
            let b = eval(b, scope)?;
            match (*op, a, b) {
                ("==", a, b) => Val::Bool(a == b),
                ("!=", a, b) => Val::Bool(a != b),
                ("||" | "&&", Val::Bool(_), Val::Bool(b)) => Val::Bool(b),
                ("+", Val::Str(a), Val::Str(b)) => Val::Str(a + &b),
                ("+", Val::Int(a), Val::Int(b)) => Val::Int(a + b),
                (op, a, b) => return Err(format!("cannot apply `{op}` to {a:?} and {b:?}")),
            }
        }
    })
}

/// Argo's template substitution: `{{name}}` from the scope, `{{=expression}}`
/// evaluated. Anything unresolved is an error (Argo would fail the workflow).
fn substitute(text: &str, scope: &Scope) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
        let inner = after[..end].trim();
        let value = match inner.strip_prefix('=') {
            Some(expression) => eval(&Parser::parse(expression)?, scope)?.render(),
            None => scope
                .get(inner)
                .cloned()
                .ok_or_else(|| format!("unresolved `{{{{{inner}}}}}` in `{text}`"))?,
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A `when` after substitution, evaluated as govaluate would.
fn truthy(text: &str) -> Result<bool, String> {
    match eval(&Parser::parse(text)?, &Scope::new())? {
        Val::Bool(b) => Ok(b),
        other => Err(format!("`when: {text}` is {other:?}, not a boolean")),
    }
}

// ---------------------------------------------------------------------------------
// The walker.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Succeeded,
    Failed,
    Skipped,
    Omitted,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Skipped => "Skipped",
            Phase::Omitted => "Omitted",
        }
    }
}

struct Node {
    phase: Phase,
    outputs: BTreeMap<String, String>,
}

struct Walker<'a> {
    templates: BTreeMap<String, &'a Json>,
    globals: Scope,
    /// The cluster's webhook URL in the manifest, and the local one standing in for it.
    webhook: (String, String),
    store: PathBuf,
    work: PathBuf,
    pods: usize,
    /// Every container's command and stderr, for the failure message.
    log: Vec<String>,
}

fn str_field<'v>(value: &'v Json, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Json::as_str)
}

fn params(value: Option<&Json>) -> Vec<&Json> {
    value
        .and_then(|v| v.get("parameters"))
        .and_then(Json::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Fails on a key the walker does not model, so nothing the generator emits is skipped.
fn known_keys(value: &Json, what: &str, keys: &[&str]) -> Result<(), String> {
    let Some(map) = value.as_object() else {
        return Err(format!("{what} is not a mapping"));
    };
    match map.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!("{what} has `{k}`, which the walker does not know")),
        None => Ok(()),
    }
}

impl<'a> Walker<'a> {
    fn run_template(&mut self, name: &str, args: &Scope) -> Result<Node, String> {
        let template = *self
            .templates
            .get(name)
            .ok_or_else(|| format!("no template `{name}`"))?;
        known_keys(
            template,
            &format!("template `{name}`"),
            &[
                "name",
                "metadata",
                "inputs",
                "outputs",
                "dag",
                "initContainers",
                "container",
                "volumes",
                "nodeSelector",
                "tolerations",
                "serviceAccountName",
                "retryStrategy",
                "activeDeadlineSeconds",
            ],
        )?;
        let mut scope = self.globals.clone();
        let declared = params(template.get("inputs"));
        for p in &declared {
            let pname = str_field(p, "name").ok_or("input without a name")?;
            let value = args
                .get(pname)
                .cloned()
                .or_else(|| str_field(p, "value").map(str::to_owned))
                .ok_or_else(|| format!("template `{name}` gets no input `{pname}`"))?;
            scope.insert(format!("inputs.parameters.{pname}"), value);
        }
        for given in args.keys() {
            if !declared
                .iter()
                .any(|p| str_field(p, "name") == Some(given.as_str()))
            {
                return Err(format!("template `{name}` has no input `{given}`"));
            }
        }
        match (template.get("dag"), template.get("container")) {
            (Some(dag), None) => self.run_dag(name, template, dag, scope),
            (None, Some(container)) => self.run_container(name, template, container, scope),
            _ => Err(format!(
                "template `{name}` is neither a DAG nor a container"
            )),
        }
    }

    fn run_dag(
        &mut self,
        name: &str,
        template: &Json,
        dag: &Json,
        mut scope: Scope,
    ) -> Result<Node, String> {
        let tasks = dag
            .get("tasks")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("DAG `{name}` has no tasks"))?;
        let mut done: BTreeMap<String, Phase> = BTreeMap::new();
        while done.len() < tasks.len() {
            let mut progressed = false;
            for task in tasks {
                known_keys(
                    task,
                    &format!("a task of `{name}`"),
                    &[
                        "name",
                        "template",
                        "arguments",
                        "depends",
                        "when",
                        "withParam",
                    ],
                )?;
                let tname = str_field(task, "name").ok_or("task without a name")?;
                if done.contains_key(tname) {
                    continue;
                }
                let depends = str_field(task, "depends").unwrap_or("");
                let needed = dependency_names(depends);
                if let Some(missing) = needed
                    .iter()
                    .find(|n| !tasks.iter().any(|t| str_field(t, "name") == Some(n)))
                {
                    return Err(format!(
                        "task `{tname}` depends on unknown task `{missing}`"
                    ));
                }
                if !needed.iter().all(|n| done.contains_key(n)) {
                    continue;
                }
                progressed = true;
                let phase = self.run_task(task, depends, &done, &mut scope)?;
                scope.insert(format!("tasks.{tname}.status"), phase.name().to_owned());
                done.insert(tname.to_owned(), phase);
            }
            if !progressed {
                return Err(format!(
                    "DAG `{name}` is stuck: its dependencies form a cycle"
                ));
            }
        }
        if done.values().any(|p| *p == Phase::Failed) {
            return Ok(Node {
                phase: Phase::Failed,
                outputs: BTreeMap::new(),
            });
        }
        let mut outputs = BTreeMap::new();
        for p in params(template.get("outputs")) {
            let pname = str_field(p, "name").ok_or("output without a name")?;
            let from = p.get("valueFrom").ok_or("DAG output without valueFrom")?;
            known_keys(from, "a DAG output's valueFrom", &["expression"])?;
            let expression = str_field(from, "expression").ok_or("no expression")?;
            let value = eval(&Parser::parse(expression)?, &scope)?.render();
            outputs.insert(pname.to_owned(), value);
        }
        Ok(Node {
            phase: Phase::Succeeded,
            outputs,
        })
    }

    /// Runs one DAG task (all its items for `withParam`) and records its outputs.
    fn run_task(
        &mut self,
        task: &Json,
        depends: &str,
        done: &BTreeMap<String, Phase>,
        scope: &mut Scope,
    ) -> Result<Phase, String> {
        let tname = str_field(task, "name").unwrap_or_default().to_owned();
        if !depends.is_empty() && !depends_hold(depends, done)? {
            return Ok(Phase::Omitted);
        }
        if let Some(when) = str_field(task, "when") {
            if !truthy(&substitute(when, scope)?)? {
                return Ok(Phase::Skipped);
            }
        }
        let template = str_field(task, "template").ok_or("task without a template")?;
        let arguments = params(task.get("arguments"));
        let items: Option<Vec<String>> = match str_field(task, "withParam") {
            None => None,
            Some(text) => {
                let list: Vec<Json> = serde_json::from_str(&substitute(text, scope)?)
                    .map_err(|e| format!("withParam of `{tname}` is not a JSON list: {e}"))?;
                Some(
                    list.iter()
                        .map(|i| match i {
                            Json::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect(),
                )
            }
        };
        let run_one = |walker: &mut Self, item: Option<&str>| -> Result<Node, String> {
            let mut local = scope.clone();
            if let Some(item) = item {
                local.insert("item".to_owned(), item.to_owned());
            }
            let mut args = Scope::new();
            for a in &arguments {
                let aname = str_field(a, "name").ok_or("argument without a name")?;
                let value = str_field(a, "value").ok_or("argument without a value")?;
                args.insert(aname.to_owned(), substitute(value, &local)?);
            }
            walker.run_template(template, &args)
        };
        match items {
            None => {
                let node = run_one(self, None)?;
                for (k, v) in &node.outputs {
                    scope.insert(format!("tasks.{tname}.outputs.parameters.{k}"), v.clone());
                }
                Ok(node.phase)
            }
            Some(items) => {
                // A fan-out's outputs are the JSON lists of its children's, in item order.
                let mut gathered: BTreeMap<String, Vec<Json>> = BTreeMap::new();
                let mut phase = Phase::Succeeded;
                for item in &items {
                    let node = run_one(self, Some(item))?;
                    if node.phase != Phase::Succeeded {
                        phase = Phase::Failed;
                    }
                    for (k, v) in node.outputs {
                        gathered.entry(k).or_default().push(Json::String(v));
                    }
                }
                for (k, v) in gathered {
                    scope.insert(
                        format!("tasks.{tname}.outputs.parameters.{k}"),
                        Json::Array(v).to_string(),
                    );
                }
                Ok(phase)
            }
        }
    }

    fn run_container(
        &mut self,
        name: &str,
        template: &Json,
        container: &Json,
        mut scope: Scope,
    ) -> Result<Node, String> {
        known_keys(
            container,
            &format!("container of `{name}`"),
            &[
                "name",
                "image",
                "imagePullPolicy",
                "command",
                "args",
                "env",
                "envFrom",
                "resources",
                "volumeMounts",
            ],
        )?;
        for init in template
            .get("initContainers")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            // The only init container copies the shim, which the walker has locally.
            let command = init.get("command").and_then(Json::as_array);
            let copies_shim = command.is_some_and(|c| {
                c.first().and_then(Json::as_str) == Some("cp")
                    && c.last().and_then(Json::as_str) == Some(SHIM_IN_POD)
            });
            if !copies_shim {
                return Err(format!("unknown init container in `{name}`: {init}"));
            }
        }
        let command: Vec<&str> = container
            .get("command")
            .and_then(Json::as_array)
            .map(|c| c.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if command == ["python3"] {
            return self.run_python(name, container, &scope);
        }
        if command != [SHIM_IN_POD] {
            return Err(format!(
                "container of `{name}` runs {command:?}, not the shim"
            ));
        }
        self.pods += 1;
        let outputs_dir = self.work.join(format!("pod-{}", self.pods));
        std::fs::create_dir_all(&self.work).map_err(|e| format!("cannot create pods: {e}"))?;
        let env: Vec<(String, String)> = container
            .get("env")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    str_field(e, "name")?.to_owned(),
                    str_field(e, "value")?.to_owned(),
                ))
            })
            .collect();
        let limit = template
            .get("retryStrategy")
            .and_then(|r| r.get("limit"))
            .and_then(Json::as_u64)
            .unwrap_or(0);
        let mut attempt = 0;
        let succeeded = loop {
            scope.insert("retries".to_owned(), attempt.to_string());
            let mut args = Vec::new();
            for arg in container
                .get("args")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let text = arg.as_str().ok_or("a non-string argument")?;
                let text = substitute(text, &scope)?;
                args.push(match text.as_str() {
                    DATASTORE_IN_POD => self.store.to_string_lossy().into_owned(),
                    OUTPUTS_IN_POD => outputs_dir.to_string_lossy().into_owned(),
                    _ => text,
                });
            }
            let out = Command::new(shim())
                .args(&args)
                .envs(env.iter().cloned())
                .env("FLOWC_PYTHON", python())
                .env_remove("FLOWC_DATASTORE_ROOT")
                .current_dir(&self.work)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run the shim: {e}"))?;
            self.log.push(format!(
                "{name}: flowc-shim {}\n  exit {:?}\n{}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            if out.status.success() {
                break true;
            }
            if attempt >= limit {
                break false;
            }
            attempt += 1;
        };
        if !succeeded {
            return Ok(Node {
                phase: Phase::Failed,
                outputs: BTreeMap::new(),
            });
        }
        let mut outputs = BTreeMap::new();
        for p in params(template.get("outputs")) {
            let pname = str_field(p, "name").ok_or("output without a name")?;
            let from = p
                .get("valueFrom")
                .ok_or("container output without valueFrom")?;
            known_keys(from, "a container output's valueFrom", &["path"])?;
            let file = str_field(from, "path")
                .and_then(|p| p.strip_prefix(OUTPUTS_IN_POD))
                .ok_or_else(|| {
                    format!("output `{pname}` of `{name}` is not under {OUTPUTS_IN_POD}")
                })?;
            let path = outputs_dir.join(file.trim_start_matches('/'));
            let value = std::fs::read_to_string(&path)
                .map_err(|e| format!("`{name}` did not write {}: {e}", path.display()))?;
            outputs.insert(pname.to_owned(), value);
        }
        Ok(Node {
            phase: Phase::Succeeded,
            outputs,
        })
    }
}

impl Walker<'_> {
    /// A container running a Python script on the image (the finish-event publisher),
    /// with the cluster's webhook URL pointed at the local listener.
    fn run_python(&mut self, name: &str, container: &Json, scope: &Scope) -> Result<Node, String> {
        let mut args = Vec::new();
        for arg in container
            .get("args")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let text = substitute(arg.as_str().ok_or("a non-string argument")?, scope)?;
            args.push(if text == self.webhook.0 {
                self.webhook.1.clone()
            } else {
                text
            });
        }
        if args.first().map(String::as_str) != Some("-c") {
            return Err(format!("`{name}` runs python3 without -c: {args:?}"));
        }
        let out = Command::new(python())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.log.push(format!(
            "{name}: python3 {args:?}\n  exit {:?}\n{stderr}",
            out.status.code()
        ));
        let phase = if out.status.success() && stderr.is_empty() {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        Ok(Node {
            phase,
            outputs: BTreeMap::new(),
        })
    }
}

/// A local stand-in for the webhook EventSource: answers every POST with 200 and keeps
/// the bodies. Its thread ends with the test process.
fn webhook() -> (String, Arc<Mutex<Vec<Json>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let url = format!("http://{}/flowc", listener.local_addr().expect("address"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((key, value)) = line.split_once(':') {
                    if key.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(json) = serde_json::from_slice(&body) {
                    kept.lock().expect("not poisoned").push(json);
                }
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// The task names a `depends` expression mentions (`a.Succeeded && (b.Succeeded || c.Succeeded)`).
fn dependency_names(depends: &str) -> Vec<String> {
    depends
        .split(|c: char| c.is_whitespace() || "()&|!".contains(c))
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.split_once('.').map(|(task, _)| task.to_owned()))
        .collect()
}

/// Evaluates `depends` over the finished tasks' phases.
fn depends_hold(depends: &str, done: &BTreeMap<String, Phase>) -> Result<bool, String> {
    let mut text = String::new();
    for (i, word) in depends.split(' ').enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let open = word.len() - word.trim_start_matches('(').len();
        let close = word.len() - word.trim_end_matches(')').len();
        let core = &word[open..word.len() - close];
        let value = match core.split_once('.') {
            Some((task, "Succeeded")) => (done.get(task) == Some(&Phase::Succeeded)).to_string(),
            Some((_, other)) => return Err(format!("depends result `{other}` is not modelled")),
            None => core.to_owned(),
        };
        text.push_str(&word[..open]);
        text.push_str(&value);
        text.push_str(&word[word.len() - close..]);
    }
    truthy(&text)
}

// ---------------------------------------------------------------------------------
// A flow compiled, walked, and compared with `flowc run`.

fn config(code_package: CodePackageRef) -> ArgoConfig {
    ArgoConfig {
        image: "python:3.12-slim".to_owned(),
        namespace: None,
        service_account: None,
        datastore_root: DATASTORE_IN_POD.to_owned(),
        shim_image: "flowc-shim:walk".to_owned(),
        labels: BTreeMap::new(),
        code_package,
        user: Some("walker".to_owned()),
        event_source: "flowc-events".to_owned(),
        event_webhook_url: None,
        flowc_version: "0.0.0".to_owned(),
    }
}

/// Compiles `fixture`, walks its WorkflowTemplate with `arguments` as the submitted
/// workflow's parameters into a store under `scratch`, and returns what the run holds.
fn walk_workflow(
    scratch: &Scratch,
    fixture: &str,
    options: &FrontendOptions,
    arguments: &[(&str, &str)],
) -> RunContents {
    let rel_path = format!("fixtures/flows/valid/{fixture}");
    let flow_file = workspace_root().join(&rel_path);
    let flow = checked(&rel_path, options);
    let walk_store = scratch.dir.join("walk-store");
    let code_package = package(&flow_file, &flow.name, &walk_store);
    let documents = argo(&flow, &config(code_package))
        .unwrap_or_else(|d| panic!("{fixture} does not compile: {d:#?}"));
    let Some(Document::WorkflowTemplate(template)) = documents.first() else {
        panic!("{fixture}: the first document is not the WorkflowTemplate");
    };
    // Walk what Argo would read: the YAML, not the Rust structs.
    let yaml = flowc::emit::yaml(template).expect("serialises");
    let document: Json = serde_norway::from_str(&yaml).expect("YAML reads back");
    let spec = &document["spec"];
    known_keys(
        spec,
        "the WorkflowTemplate's spec",
        &[
            "entrypoint",
            "onExit",
            "arguments",
            "serviceAccountName",
            "workflowMetadata",
            "templates",
        ],
    )
    .unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let mut globals = Scope::new();
    globals.insert("workflow.name".to_owned(), WORKFLOW_NAME.to_owned());
    for p in params(spec.get("arguments")) {
        let name = str_field(p, "name").unwrap();
        let given = arguments.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let value = given
            .or_else(|| str_field(p, "value"))
            .unwrap_or_else(|| panic!("{fixture}: parameter `{name}` is required"));
        globals.insert(format!("workflow.parameters.{name}"), value.to_owned());
    }
    for (name, _) in arguments {
        assert!(
            globals.contains_key(&format!("workflow.parameters.{name}")),
            "{fixture} has no parameter `{name}`"
        );
    }
    let templates = spec["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t))
        .collect();
    let (local_webhook, events) = webhook();
    let mut walker = Walker {
        templates,
        globals,
        webhook: (default_webhook_url("flowc-events"), local_webhook),
        store: walk_store.clone(),
        work: scratch.dir.join("pods"),
        pods: 0,
        log: Vec::new(),
    };
    let entrypoint = spec["entrypoint"].as_str().expect("entrypoint").to_owned();
    let result = walker.run_template(&entrypoint, &Scope::new());
    // Argo runs the exit handler whatever the outcome, with the workflow's status.
    let status = match &result {
        Ok(node) => node.phase.name(),
        Err(_) => Phase::Failed.name(),
    };
    walker
        .globals
        .insert("workflow.status".to_owned(), status.to_owned());
    let exit = spec
        .get("onExit")
        .and_then(Json::as_str)
        .map(|on_exit| walker.run_template(on_exit, &Scope::new()));
    let log = walker.log.join("\n");
    match result {
        Ok(node) => assert_eq!(
            node.phase,
            Phase::Succeeded,
            "{fixture}: walk failed\n{log}"
        ),
        Err(err) => panic!("{fixture}: {err}\n{log}"),
    }
    match exit {
        Some(Ok(node)) => assert_eq!(
            node.phase,
            Phase::Succeeded,
            "{fixture}: exit handler failed\n{log}"
        ),
        Some(Err(err)) => panic!("{fixture}: exit handler: {err}\n{log}"),
        None => panic!("{fixture}: no exit handler publishes the finish event"),
    }
    // The finish event `@trigger_on_finish` sensors wait for, posted once.
    let posted = events.lock().expect("not poisoned").clone();
    assert_eq!(
        posted,
        [serde_json::json!({"payload": {
            "name": format!("{}.finished", flow.name),
            "flow_name": flow.name,
            "run_id": WORKFLOW_NAME,
        }})],
        "{fixture}: finish events\n{log}"
    );
    contents(
        &walk_store,
        &flow.name,
        WORKFLOW_NAME,
        MissingManifest::Fail,
    )
}

/// `flowc run` of `fixture` with `run_args` into a store under `scratch`: what it holds.
fn flowc_run(
    scratch: &Scratch,
    fixture: &str,
    options: &FrontendOptions,
    run_args: &[&str],
) -> RunContents {
    let rel_path = format!("fixtures/flows/valid/{fixture}");
    let flow = checked(&rel_path, options);
    let run_store = scratch.dir.join("run-store");
    let flow_file = workspace_root().join(&rel_path);
    let run_id = flowc_run_id(scratch, &flow_file, run_args, &run_store, fixture);
    contents(&run_store, &flow.name, &run_id, MissingManifest::Fail)
}

/// Walks `fixture` with `arguments` and runs it with `run_args` (the same values), and
/// asserts both runs hold the same steps, tasks and artifacts; returns the walked run.
fn walk_and_compare(
    test: &str,
    fixture: &str,
    options: &FrontendOptions,
    arguments: &[(&str, &str)],
    run_args: &[&str],
) -> RunContents {
    let scratch = Scratch::new(test);
    let walked = walk_workflow(&scratch, fixture, options, arguments);
    let ran = flowc_run(&scratch, fixture, options, run_args);
    assert_eq!(
        walked.keys().collect::<Vec<_>>(),
        ran.keys().collect::<Vec<_>>(),
        "{fixture}: the walk and the run ran different steps"
    );
    for (step, tasks) in &ran {
        assert_eq!(
            walked[step].len(),
            tasks.len(),
            "{fixture}: step `{step}` has a different number of tasks"
        );
        assert_eq!(
            &walked[step], tasks,
            "{fixture}: the tasks of step `{step}` hold different artifacts"
        );
    }
    walked
}

fn walk(test: &str, fixture: &str) -> RunContents {
    walk_and_compare(test, fixture, &FrontendOptions::default(), &[], &[])
}

fn tasks(run: &RunContents, step: &str) -> usize {
    run.get(step).map_or(0, Vec::len)
}

#[test]
fn a_linear_flow_walks_like_flowc_run() {
    let run = walk("linear", "linear_hello.py");
    assert_eq!(tasks(&run, "end"), 1);
}

#[test]
fn a_branch_and_its_join_walk_like_flowc_run() {
    let run = walk("branch", "branch_join.py");
    assert_eq!(tasks(&run, "end"), 1);
}

#[test]
fn a_foreach_fans_out_and_joins_like_flowc_run() {
    let run = walk("foreach", "foreach_join.py");
    assert!(tasks(&run, "train") > 1, "{run:?}");
}

#[test]
fn a_nested_foreach_walks_like_flowc_run() {
    let run = walk("nested", "nested_foreach.py");
    assert!(run.values().any(|t| t.len() >= 4), "{run:?}");
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
fn a_switch_chooses_by_a_parameter_given_as_a_workflow_argument() {
    let run = walk_and_compare(
        "switch-argument",
        "switch_converge.py",
        &FrontendOptions::default(),
        &[("format", "csv")],
        &["--format", "csv"],
    );
    assert_eq!(tasks(&run, "parse_csv"), 1);
    assert_eq!(tasks(&run, "read_parquet"), 0);
}

#[test]
fn a_self_looping_switch_recurses_like_flowc_run() {
    let run = walk("recursion", "switch_recursion.py");
    assert_eq!(tasks(&run, "train"), 5);
}

#[test]
fn a_switch_inside_a_branch_walks_like_flowc_run() {
    let run = walk("switch-in-branch", "switch_three_way_in_branch.py");
    assert_eq!(tasks(&run, "fit_trees"), 1);
}

#[test]
fn an_include_file_default_is_read_beside_the_flow_in_the_code_package() {
    // The `flowc-init` pod runs in an empty directory: the default `vocab.txt` is found
    // next to the flow file, in the unpacked code package.
    let run = walk_and_compare(
        "include-default",
        "parameters_all.py",
        &FrontendOptions::default(),
        &[("dataset", "v3")],
        &["--dataset", "v3"],
    );
    assert_eq!(tasks(&run, "_parameters"), 1);
}

#[test]
fn parameters_given_as_workflow_arguments_reach_the_run() {
    // An IncludeFile given as an argument is a path the pod can read.
    let vocabulary = workspace_root().join("fixtures/flows/valid/vocab.txt");
    let vocabulary = vocabulary.to_str().expect("UTF-8 path");
    let model = "it's: {\"a\": 1}\n{{workflow.name}}";
    let run = walk_and_compare(
        "parameters",
        "parameters_all.py",
        &FrontendOptions::default(),
        &[
            ("dataset", "v3"),
            ("epochs", "3"),
            ("model-name", model),
            ("vocabulary", vocabulary),
        ],
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
fn the_expression_subset_evaluates_as_argo_does() {
    let mut scope = Scope::new();
    scope.insert("tasks.a.status".to_owned(), "Skipped".to_owned());
    scope.insert("tasks.b.status".to_owned(), "Succeeded".to_owned());
    scope.insert(
        "tasks.b.outputs.parameters.switch-step".to_owned(),
        "m".to_owned(),
    );
    scope.insert("inputs.parameters.round".to_owned(), "2".to_owned());
    let text = "{{=(tasks['a'].status == 'Succeeded' ? tasks['a'].outputs.parameters['switch-step'] : '') == 'm' ? 'a/t' : 'b/t'}}";
    assert_eq!(substitute(text, &scope).unwrap(), "b/t");
    assert_eq!(
        substitute("{{=asInt(inputs.parameters['round']) + 1}}", &scope).unwrap(),
        "3"
    );
    assert!(substitute("{{tasks.a.outputs.parameters.switch-step}}", &scope).is_err());
    assert!(substitute("{{=tasks['a'].outputs.parameters['x']}}", &scope).is_err());
    assert!(truthy("'m' == 'm' && 'a' != 'b'").unwrap());
    assert!(truthy("'m'").is_err());
    let mut done = BTreeMap::new();
    done.insert("a".to_owned(), Phase::Skipped);
    done.insert("b".to_owned(), Phase::Succeeded);
    assert!(depends_hold("(a.Succeeded || b.Succeeded)", &done).unwrap());
    assert!(!depends_hold("a.Succeeded && b.Succeeded", &done).unwrap());
    assert!(depends_hold("a.Failed", &done).is_err());
}

#[test]
fn switch_cases_of_different_lengths_meet_again_like_flowc_run() {
    let run = walk("multi-step-cases", "switch_multi_step_cases.py");
    assert_eq!(tasks(&run, "featurize"), 1);
    assert_eq!(tasks(&run, "sample"), 0);
    let nested = walk_and_compare(
        "multi-step-cases-nested",
        "switch_multi_step_cases.py",
        &FrontendOptions::default(),
        &[("freshness", "partial")],
        &["--freshness", "partial"],
    );
    assert_eq!(tasks(&nested, "densify"), 1);
    assert_eq!(tasks(&nested, "clean"), 0);
    let skipped = walk_and_compare(
        "multi-step-cases-skip",
        "switch_multi_step_cases.py",
        &FrontendOptions::default(),
        &[("freshness", "cached")],
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
        "branch_switch_join.py",
        &FrontendOptions::default(),
        &[("source", "vendor")],
        &["--source", "vendor"],
    );
    assert_eq!(tasks(&audited, "review"), 1);
    assert_eq!(tasks(&audited, "accept"), 0);
}

#[test]
fn the_comparison_tells_runs_with_different_arguments_apart() {
    let scratch = Scratch::new("differ");
    let options = FrontendOptions::default();
    let walked = walk_workflow(
        &scratch,
        "switch_converge.py",
        &options,
        &[("format", "csv")],
    );
    let ran = flowc_run(&scratch, "switch_converge.py", &options, &[]);
    assert_ne!(
        walked.keys().collect::<Vec<_>>(),
        ran.keys().collect::<Vec<_>>()
    );
    assert_ne!(walked["_parameters"], ran["_parameters"]);
}
