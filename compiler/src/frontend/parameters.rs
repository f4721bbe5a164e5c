//! Class-level `Parameter(...)`, `IncludeFile(...)` and `Config(...)` assignments →
//! IR `Parameter`s and `Config`s, with their arguments statically evaluated.
//!
//! Only what can be read off one declaration is checked here (argument names, the
//! name being a string, flag types). Duplicates, reserved names and default/type
//! mismatches are lint rules on the IR.

use std::collections::HashMap;

use flowc_ir::{Config, Parameter, ParameterKind, ParameterType, Span, Value};
use tree_sitter::Node;

use super::eval::{nested_too_deeply, Scope};
use super::flow_class::Context;
use super::syntax::{span, statements, text, unparenthesize, Argument, Assignment, Call};
use crate::diagnostics::{codes, did_you_mean, Diagnostic};

/// What a declaration is, and the arguments its constructor takes (positional order
/// first, as Metaflow 2.19 declares them).
struct Signature {
    callee: &'static str,
    positional: &'static [&'static str],
    keyword_only: &'static [&'static str],
}

const PARAMETER: Signature = Signature {
    callee: "Parameter",
    positional: &[
        "name",
        "default",
        "type",
        "help",
        "required",
        "show_default",
    ],
    keyword_only: &["separator"],
};

const INCLUDE_FILE: Signature = Signature {
    callee: "IncludeFile",
    positional: &["name", "required", "is_text", "encoding", "help", "parser"],
    keyword_only: &["default", "show_default"],
};

const CONFIG: Signature = Signature {
    callee: "Config",
    positional: &[
        "name",
        "default",
        "default_value",
        "help",
        "required",
        "parser",
        "plain",
    ],
    keyword_only: &[],
};

impl Signature {
    fn accepts(&self, name: &str) -> bool {
        self.positional.contains(&name) || self.keyword_only.contains(&name)
    }

    fn all(&self) -> impl Iterator<Item = &'static str> {
        self.positional.iter().chain(self.keyword_only).copied()
    }
}

/// One argument as passed: the whole argument (for spans) and its value expression.
#[derive(Clone, Copy)]
struct Arg<'t> {
    node: Node<'t>,
    value: Node<'t>,
}

/// The parameters and configs declared in one class body, in source order.
pub(crate) fn lower<'t>(
    cx: &Context<'t, '_>,
    body: Node<'t>,
    scope: &Scope<'t>,
    inherited_from: Option<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<Parameter>, Vec<Config>) {
    let mut parameters = Vec::new();
    let mut configs = Vec::new();
    for stmt in statements(body) {
        let Some(assign) = Assignment::cast(stmt) else {
            continue;
        };
        let Some(attr) = assign.target_name(cx.src) else {
            continue;
        };
        let Some(call) = Call::cast(unparenthesize(assign.right)) else {
            continue;
        };
        let Some(function) = call.function() else {
            continue;
        };
        let signature = match cx.imports.metaflow_name(function, cx.src) {
            Some("Parameter") => &PARAMETER,
            Some("IncludeFile") => &INCLUDE_FILE,
            Some("Config") => &CONFIG,
            _ => continue,
        };
        let decl = Declaration {
            cx,
            scope,
            attr,
            call,
            signature,
            args: HashMap::new(),
        };
        let mut decl = decl;
        decl.collect_args(diagnostics);
        if signature.callee == "Config" {
            configs.push(decl.config(assign, inherited_from, diagnostics));
        } else {
            parameters.push(decl.parameter(assign, inherited_from, diagnostics));
        }
    }
    (parameters, configs)
}

struct Declaration<'c, 't, 's> {
    cx: &'c Context<'t, 's>,
    scope: &'c Scope<'t>,
    attr: &'s str,
    call: Call<'t>,
    signature: &'static Signature,
    args: HashMap<&'static str, Arg<'t>>,
}

impl<'t> Declaration<'_, 't, '_> {
    fn bad(&self, at: Span, message: String, help: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&codes::PARAM_BAD_ARGUMENT, at, message).with_help(help)
    }

    /// Map positional and keyword arguments to the constructor's argument names.
    fn collect_args(&mut self, diagnostics: &mut Vec<Diagnostic>) {
        let callee = self.signature.callee;
        let mut position = 0;
        for arg in self.call.arguments() {
            let (name, node, value) = match arg {
                Argument::Positional(value) => {
                    let Some(name) = self.signature.positional.get(position).copied() else {
                        diagnostics.push(self.bad(
                            span(value),
                            format!("too many positional arguments to `{callee}(...)`"),
                            "pass the optional arguments by keyword, e.g. `default=...`",
                        ));
                        continue;
                    };
                    position += 1;
                    (name, value, value)
                }
                Argument::Keyword { node, name, value } => {
                    let written = text(name, self.cx.src);
                    let Some(known) = self.signature.all().find(|n| *n == written) else {
                        let help = match did_you_mean(written, self.signature.all()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "`{callee}(...)` takes {}",
                                self.signature
                                    .all()
                                    .map(|n| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        diagnostics.push(
                            self.bad(
                                span(node),
                                format!("`{callee}(...)` has no argument `{written}`"),
                                help,
                            )
                            .with_label("unknown argument"),
                        );
                        continue;
                    };
                    (known, node, value)
                }
                Argument::Splat(node) => {
                    diagnostics.push(self.bad(
                        span(node),
                        format!("arguments to `{callee}(...)` cannot be unpacked"),
                        "write each argument out so it can be read without running the flow",
                    ));
                    continue;
                }
            };
            debug_assert!(self.signature.accepts(name));
            if self.args.insert(name, Arg { node, value }).is_some() {
                diagnostics.push(self.bad(
                    span(node),
                    format!("`{name}` is given twice to `{callee}(...)`"),
                    "give each argument once",
                ));
            }
        }
    }

    fn value(&self, name: &str) -> Option<(Arg<'t>, Value)> {
        let arg = *self.args.get(name)?;
        Some((arg, self.cx.eval.eval(arg.value, Some(self.scope))))
    }

    /// The declared name: a string, else the attribute (after reporting).
    fn name(&self, diagnostics: &mut Vec<Diagnostic>) -> (String, Span) {
        let callee = self.signature.callee;
        match self.value("name") {
            Some((_, Value::Str(name))) => (name, self.args["name"].value_span()),
            Some((arg, _)) => {
                diagnostics.push(
                    self.bad(
                        span(arg.value),
                        format!("the name of `{callee}(...)` must be a string literal"),
                        format!(
                            "write the name in quotes: `{callee}(\"{}\", ...)`",
                            self.attr
                        ),
                    )
                    .with_label("not a string"),
                );
                (self.attr.to_string(), span(arg.value))
            }
            None => {
                diagnostics.push(
                    self.bad(
                        span(self.call.node),
                        format!("`{callee}(...)` bound to `{}` has no name", self.attr),
                        format!(
                            "give the name as the first argument: `{callee}(\"{}\", ...)`",
                            self.attr
                        ),
                    )
                    .with_label("name missing"),
                );
                (self.attr.to_string(), span(self.call.node))
            }
        }
    }

    /// A `True`/`False` argument, `None` meaning the default.
    fn flag(&self, name: &str, default: bool, diagnostics: &mut Vec<Diagnostic>) -> bool {
        match self.value(name) {
            None | Some((_, Value::None)) => default,
            Some((_, Value::Bool(b))) => b,
            Some((arg, v)) => {
                diagnostics.push(
                    self.bad(
                        span(arg.value),
                        format!(
                            "`{name}` of `{}(...)` must be `True` or `False`, not {}",
                            self.signature.callee,
                            describe(&v)
                        ),
                        format!("write `{name}=True` or `{name}=False`"),
                    )
                    .with_label("not a bool"),
                );
                default
            }
        }
    }

    /// An optional string argument (`help=`, `separator=`).
    fn string(&self, name: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
        match self.value(name)? {
            (_, Value::Str(s)) => Some(s),
            (_, Value::None) => None,
            (arg, Value::Deferred { .. }) => {
                diagnostics.push(deferred(
                    span(arg.value),
                    format!("`{name}` of `{}` cannot be evaluated statically", self.attr),
                ));
                None
            }
            (arg, v) => {
                diagnostics.push(self.bad(
                    span(arg.value),
                    format!(
                        "`{name}` of `{}(...)` must be a string, not {}",
                        self.signature.callee,
                        describe(&v)
                    ),
                    format!("write `{name}=\"...\"`"),
                ));
                None
            }
        }
    }

    /// A default value; deferred ones are kept and reported as a warning.
    fn default(&self, name: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Value> {
        let (arg, value) = self.value(name)?;
        let too_deep = self.cx.eval.too_deep_in(&value);
        let what = format!("the {} of `{}`", name.replace('_', " "), self.attr);
        if !too_deep.is_empty() {
            let part = if value.is_deferred() {
                "it is"
            } else {
                "this part is"
            };
            let message =
                format!("{what} is nested too deeply to fold; {part} kept as an expression");
            for at in too_deep {
                diagnostics.push(nested_too_deeply(at, message.clone()));
            }
        } else if value.is_deferred() {
            let what = if unparenthesize(arg.value).kind() == "lambda" {
                format!("{what} is a function, called when the run starts")
            } else {
                format!("{what} cannot be evaluated statically")
            };
            diagnostics.push(deferred(span(arg.value), what));
        }
        Some(value)
    }

    fn parameter(
        &self,
        assign: Assignment<'t>,
        inherited_from: Option<&str>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Parameter {
        let (name, name_span) = self.name(diagnostics);
        let is_include = self.signature.callee == "IncludeFile";
        let default = self.default("default", diagnostics);
        let ty = if is_include {
            // The command-line value of an IncludeFile is a path.
            ParameterType::Str
        } else {
            match self.args.get("type") {
                Some(arg) => self.declared_type(arg.value),
                None => self.inferred_type(default.as_ref()),
            }
        };
        let is_text = if is_include {
            self.flag("is_text", true, diagnostics)
        } else {
            true
        };
        if is_include {
            // Read for its diagnostics only: the IR has no field for the encoding.
            let _ = self.string("encoding", diagnostics);
        }
        Parameter {
            attr: self.attr.to_string(),
            name,
            kind: if is_include {
                ParameterKind::IncludeFile
            } else {
                ParameterKind::Parameter
            },
            ty,
            default,
            help: self.string("help", diagnostics),
            required: self.flag("required", false, diagnostics),
            // Metaflow treats `show_default=None` as True.
            show_default: self.flag("show_default", true, diagnostics),
            separator: self.string("separator", diagnostics),
            is_text,
            span: span(assign.node),
            name_span,
            default_span: self.args.get("default").map(|a| span(a.node)),
            inherited_from: inherited_from.map(str::to_string),
        }
    }

    fn config(
        &self,
        assign: Assignment<'t>,
        inherited_from: Option<&str>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Config {
        let (name, _) = self.name(diagnostics);
        let default = self.default("default", diagnostics);
        let default_value = self.default("default_value", diagnostics);
        if let (Some(d), Some(_)) = (self.args.get("default"), &default_value) {
            if default.as_ref().is_some_and(|v| *v != Value::None) {
                diagnostics.push(self.bad(
                    span(d.node),
                    format!(
                        "config `{}` has both `default` and `default_value`",
                        self.attr
                    ),
                    "`default` is a path to a file, `default_value` the value itself: keep one",
                ));
            }
        }
        let _ = self.flag("plain", false, diagnostics);
        Config {
            attr: self.attr.to_string(),
            name,
            default,
            default_value,
            required: self.flag("required", false, diagnostics),
            help: self.string("help", diagnostics),
            span: span(assign.node),
            inherited_from: inherited_from.map(str::to_string),
        }
    }

    /// `type=str|int|float|bool|JSONType`; anything else is a type flowc cannot name.
    fn declared_type(&self, node: Node<'t>) -> ParameterType {
        let node = unparenthesize(node);
        if node.kind() == "identifier"
            && !self.cx.eval.module_scope().binds(text(node, self.cx.src))
        {
            match text(node, self.cx.src) {
                "str" => return ParameterType::Str,
                "int" => return ParameterType::Int,
                "float" => return ParameterType::Float,
                "bool" => return ParameterType::Bool,
                _ => {}
            }
        }
        if self.cx.imports.metaflow_name(node, self.cx.src) == Some("JSONType") {
            ParameterType::Json
        } else {
            ParameterType::Other
        }
    }

    /// Without `type=`, Metaflow uses the default's type, and `str` when there is no
    /// default or the default is a function (a deploy-time value).
    fn inferred_type(&self, default: Option<&Value>) -> ParameterType {
        match default {
            None | Some(Value::None) | Some(Value::Str(_)) => ParameterType::Str,
            Some(Value::Int(_)) => ParameterType::Int,
            Some(Value::Float(_)) => ParameterType::Float,
            Some(Value::Bool(_)) => ParameterType::Bool,
            Some(Value::List(_)) | Some(Value::Dict(_)) => ParameterType::Other,
            Some(Value::Deferred { .. }) => {
                let node = self.args.get("default").map(|a| unparenthesize(a.value));
                let callable = node.is_some_and(|n| {
                    n.kind() == "lambda"
                        || (n.kind() == "identifier"
                            && self.cx.functions.contains(text(n, self.cx.src)))
                });
                if callable {
                    ParameterType::Str
                } else {
                    ParameterType::Other
                }
            }
        }
    }
}

impl Arg<'_> {
    fn value_span(&self) -> Span {
        span(self.value)
    }
}

fn deferred(at: Span, message: String) -> Diagnostic {
    Diagnostic::new(&codes::VALUE_DEFERRED, at, message)
        .with_label("kept as an expression")
        .with_help(
            "it is evaluated when the run starts; write a literal to have it checked \
             and shown at compile time",
        )
}

fn describe(v: &Value) -> String {
    match v {
        Value::Deferred { .. } => "an expression that cannot be evaluated statically".into(),
        other => format!("a `{}`", other.type_name()),
    }
}
