//! `self.next(...)` → `Transition`: finds the call that ends a step, checks it is the
//! last statement and the only one, and reads its form (linear, branch, foreach,
//! switch), reporting every argument that does not fit.

use std::collections::HashMap;

use flowc_ir::{Span, SwitchCase, Target, Transition, Value};
use tree_sitter::Node;

use super::eval::{is_string_literal, Evaluator};
use super::syntax::{
    is_self_next, named_children, self_attribute, span, statements, text, unparenthesize, Argument,
    Call, FieldExt,
};
use crate::diagnostics::{codes, did_you_mean, Diagnostic};

/// The keyword arguments `self.next(...)` takes.
const KEYWORDS: &[&str] = &["foreach", "condition"];

/// What every `self.next(...)` diagnostic suggests for choosing at run time.
const SWITCH_HINT: &str = "to choose between steps at run time, use a switch: \
                           `self.next({\"a\": self.a, \"b\": self.b}, condition=\"var\")`";

/// Read the transition of the step `step` whose body is `body`.
///
/// One mistake gets one diagnostic: several calls are reported as such (and not also
/// as calls that are not last), and the transition then leads to every step any of
/// them names, so that the graph checks do not add "unreachable" for the steps the
/// other calls meant.
pub(crate) fn lower<'t>(
    body: Node<'t>,
    step: &str,
    src: &str,
    eval: &Evaluator<'t, '_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Transition, Option<Span>) {
    let calls = next_calls(body, src);
    let tail = statements(body)
        .last()
        .filter(|s| s.kind() == "expression_statement")
        .and_then(|s| match named_children(*s).as_slice() {
            [expr] => Call::cast(unparenthesize(*expr)),
            _ => None,
        })
        .filter(|c| is_self_next(*c, src));

    match calls.as_slice() {
        [] => (Transition::End, None),
        [only] => {
            if tail.is_none_or(|t| t.node.id() != only.node.id()) {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::NEXT_NOT_LAST,
                        span(only.node),
                        format!("`self.next(...)` in step `{step}` is not its last statement"),
                    )
                    .with_label("not the last statement")
                    .with_help(format!(
                        "make `self.next(...)` the last statement of the step; {SWITCH_HINT}"
                    )),
                );
            }
            (
                lower_call(*only, step, src, eval, diagnostics),
                Some(span(only.node)),
            )
        }
        [first, second, rest @ ..] => {
            let mut d = Diagnostic::new(
                &codes::NEXT_MULTIPLE,
                span(second.node),
                format!("step `{step}` calls `self.next(...)` more than once"),
            )
            .with_label("another `self.next(...)`")
            .with_related(span(first.node), "first `self.next(...)` here");
            for call in rest {
                d = d.with_related(span(call.node), "and another one here");
            }
            diagnostics.push(d.with_help(format!(
                "call `self.next(...)` exactly once, as the step's last statement; {SWITCH_HINT}"
            )));
            // Every call is read, so that each one's own mistakes are reported too.
            let lowered: Vec<Transition> = calls
                .iter()
                .map(|c| lower_call(*c, step, src, eval, diagnostics))
                .collect();
            let chosen = tail
                .and_then(|t| calls.iter().position(|c| c.node.id() == t.node.id()))
                .unwrap_or(0);
            let at = span(calls[chosen].node);
            let transition = match any_of(&lowered) {
                Some(merged) => merged,
                None => lowered.into_iter().nth(chosen).unwrap_or(Transition::End),
            };
            (transition, Some(at))
        }
    }
}

/// Several plain `self.next(self.x)` calls read as one choice between their targets:
/// the graph then has an edge to each step named, and as exactly one of them can run,
/// no split opens that a join would have to close. `None` when some call is not a
/// plain one: its own form is kept then.
fn any_of(lowered: &[Transition]) -> Option<Transition> {
    let mut targets: Vec<Target> = Vec::new();
    for t in lowered {
        let Transition::Linear { to } = t else {
            return None;
        };
        if !targets.iter().any(|seen| seen.step == to.step) {
            targets.push(to.clone());
        }
    }
    match targets.len() {
        0 => None,
        1 => targets.pop().map(|to| Transition::Linear { to }),
        _ => Some(Transition::Switch {
            // No condition names the choice: the calls themselves are the mistake.
            on: String::new(),
            on_span: targets[0].span,
            cases: targets
                .into_iter()
                .map(|target| SwitchCase {
                    value: target.step.clone(),
                    target,
                })
                .collect(),
        }),
    }
}

/// Every `self.next(...)` call in a body (nested blocks included), in source order.
fn next_calls<'t>(body: Node<'t>, src: &str) -> Vec<Call<'t>> {
    // Every `self.next(...)` holds an identifier `next`, so instead of visiting every
    // node of the body (most of the frontend's time in a large flow), look the word up
    // in the body's text and climb from each occurrence: `next` → `self.next` → the
    // call. Occurrences in strings, comments or longer names climb to nothing. The
    // calls come out in source order, as a walk of the tree would find them: between
    // a `self.next` call's start and its `next` there is only `self`, a dot and space.
    let (start, end) = (body.start_byte(), body.end_byte());
    let Some(body_text) = src.get(start..end) else {
        return Vec::new();
    };
    body_text
        .match_indices("next")
        .filter_map(|(at, _)| {
            // Descend with a cursor, keeping the path: `Node::parent` searches down
            // from the root of the whole file each time.
            let at = start + at;
            let mut cursor = body.walk();
            let mut path: Vec<Node<'t>> = Vec::new();
            while cursor.goto_first_child_for_byte(at).is_some() {
                let node = cursor.node();
                if node.start_byte() > at {
                    return None;
                }
                path.push(node);
            }
            let [.., call, attribute, word] = path[..] else {
                return None;
            };
            if word.kind() != "identifier" || word.byte_range() != (at..at + 4) {
                return None;
            }
            let call = Call::cast(call)?;
            let is_function = call.function().is_some_and(|f| f.id() == attribute.id());
            (is_function && is_self_next(call, src)).then_some(call)
        })
        .collect()
}

fn bad_arguments(at: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(&codes::NEXT_BAD_ARGUMENTS, at, message).with_help(help)
}

fn lower_call<'t>(
    call: Call<'t>,
    step: &str,
    src: &str,
    eval: &Evaluator<'t, '_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Transition {
    let mut positional: Vec<Node<'t>> = Vec::new();
    let mut keywords: HashMap<&str, (Node<'t>, Node<'t>)> = HashMap::new();
    let mut unpacked = false;
    for arg in call.arguments() {
        match arg {
            Argument::Positional(n) => positional.push(n),
            Argument::Splat(n) => {
                unpacked = true;
                diagnostics.push(bad_arguments(
                    span(n),
                    "`self.next(...)` arguments cannot be unpacked".into(),
                    "write the next steps out: `self.next(self.a, self.b)`",
                ));
            }
            Argument::Keyword { node, name, value } => {
                let name = text(name, src);
                if name == "num_parallel" {
                    diagnostics.push(bad_arguments(
                        span(node),
                        "`num_parallel=` (parallel steps) is not supported by flowc".into(),
                        "run the parallel work as a foreach: `self.next(self.a, foreach=\"items\")`",
                    ));
                } else if !KEYWORDS.contains(&name) {
                    let help = match did_you_mean(name, KEYWORDS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}=`?"),
                        None => "`self.next(...)` takes only `foreach=` or `condition=`".into(),
                    };
                    diagnostics.push(bad_arguments(
                        span(node),
                        format!("`self.next(...)` has no argument `{name}`"),
                        &help,
                    ));
                } else if keywords.insert(name, (node, value)).is_some() {
                    diagnostics.push(bad_arguments(
                        span(node),
                        format!("`{name}=` is given twice"),
                        "give each argument once",
                    ));
                }
            }
        }
    }
    let foreach = keywords.get("foreach").copied();
    let condition = keywords.get("condition").copied();
    if let (Some(_), Some((cond, _))) = (foreach, condition) {
        diagnostics.push(bad_arguments(
            span(cond),
            "a transition cannot be both a foreach and a switch".into(),
            "use either `foreach=` or `condition=`, in two steps if you need both",
        ));
    }
    let Some(first) = positional.first().copied() else {
        if unpacked {
            return Transition::End;
        }
        diagnostics.push(bad_arguments(
            span(call.node),
            format!("`self.next()` in step `{step}` names no step"),
            "name the next step: `self.next(self.<step>)`",
        ));
        return Transition::End;
    };
    if unparenthesize(first).kind() == "dictionary" {
        return lower_switch(
            call,
            unparenthesize(first),
            &positional[1..],
            condition,
            step,
            src,
            eval,
            diagnostics,
        );
    }
    if let Some((cond, _)) = condition {
        diagnostics.push(bad_arguments(
            span(cond),
            "`condition=` needs a dict of cases as the only step argument".into(),
            "write a switch as `self.next({\"a\": self.a, \"b\": self.b}, condition=\"var\")`",
        ));
    }
    let targets: Vec<Target> = positional
        .iter()
        .filter_map(|n| target(*n, src, diagnostics))
        .collect();
    if let Some((_, value)) = foreach {
        if let Some(extra) = positional.get(1) {
            diagnostics.push(bad_arguments(
                span(*extra),
                "`foreach=` takes exactly one target step".into(),
                "fan out to one step: `self.next(self.a, foreach=\"items\")`",
            ));
        }
        let over = literal_name(value, "foreach", src, eval, diagnostics);
        let mut targets = targets;
        if targets.len() > 1 {
            // Reported above. Still lead to every step named, as the branch the call
            // reads like, so that none of them looks unreachable.
            return Transition::Branch { to: targets };
        }
        return match targets.pop() {
            Some(to) => Transition::Foreach {
                to,
                over,
                over_span: span(value),
            },
            None => Transition::End,
        };
    }
    let mut targets = targets;
    if targets.len() > 1 {
        Transition::Branch { to: targets }
    } else {
        targets
            .pop()
            .map_or(Transition::End, |to| Transition::Linear { to })
    }
}

#[allow(clippy::too_many_arguments)]
fn lower_switch<'t>(
    call: Call<'t>,
    dict: Node<'t>,
    extra: &[Node<'t>],
    condition: Option<(Node<'t>, Node<'t>)>,
    step: &str,
    src: &str,
    eval: &Evaluator<'t, '_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Transition {
    for n in extra {
        diagnostics.push(bad_arguments(
            span(*n),
            "a switch takes one dict of cases and no other steps".into(),
            "put every case in the dict: `self.next({\"a\": self.a, \"b\": self.b}, condition=\"var\")`",
        ));
    }
    let mut cases: Vec<SwitchCase> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for pair in named_children(dict) {
        let (Some(key), Some(value)) = (pair.field("key"), pair.field("value")) else {
            diagnostics.push(bad_arguments(
                span(pair),
                "switch cases cannot be unpacked".into(),
                "write each case out: `{\"a\": self.a}`",
            ));
            continue;
        };
        let key_value = match eval.eval(key, None) {
            Value::Str(s) if is_string_literal(key) => Some(s),
            _ => None,
        };
        let Some(key_value) = key_value else {
            diagnostics.push(
                bad_arguments(
                    span(key),
                    format!("switch case `{}` is not a string literal", text(key, src)),
                    "write each case value as a string literal: `{\"a\": self.a}`",
                )
                .with_label("not a string literal"),
            );
            continue;
        };
        let Some(target) = target(value, src, diagnostics) else {
            continue;
        };
        // A repeated key keeps its first place and its last value, as a Python dict does.
        match index.get(&key_value) {
            Some(&i) => cases[i].target = target,
            None => {
                index.insert(key_value.clone(), cases.len());
                cases.push(SwitchCase {
                    value: key_value,
                    target,
                });
            }
        }
    }
    let Some((_, value)) = condition else {
        diagnostics.push(
            Diagnostic::new(
                &codes::SWITCH_MISSING_CONDITION,
                span(dict),
                format!("the switch in step `{step}` has no `condition=`"),
            )
            .with_label("a dict of cases needs `condition=`")
            .with_help("add `condition=\"var\"` naming the artifact whose value picks the case"),
        );
        return Transition::Switch {
            on: String::new(),
            on_span: span(call.node),
            cases,
        };
    };
    let on = literal_name(value, "condition", src, eval, diagnostics);
    Transition::Switch {
        on,
        on_span: span(value),
        cases,
    }
}

/// `self.<step>` as a target, or a diagnostic.
fn target(node: Node<'_>, src: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Target> {
    let inner = unparenthesize(node);
    if let Some(step) = self_attribute(inner, src) {
        return Some(Target {
            step: step.to_string(),
            span: span(inner),
        });
    }
    let written = text(node, src);
    let help = match inner.kind() {
        "string" => format!(
            "write the step as an attribute: `self.{}`",
            written.trim_matches(['"', '\''])
        ),
        "identifier" => format!("write the step as an attribute: `self.{written}`"),
        "call" => "pass the step method itself, without calling it: `self.<step>`".into(),
        _ => "write each next step as `self.<step>`".into(),
    };
    diagnostics.push(
        Diagnostic::new(
            &codes::NEXT_BAD_TARGET,
            span(node),
            format!(
                "`{}` is not a step: `self.next(...)` takes steps written as `self.<step>`",
                shorten(written)
            ),
        )
        .with_label("not `self.<step>`")
        .with_help(help),
    );
    None
}

/// The artifact name in `foreach=` / `condition=`: it must be a string literal, since
/// the graph is read without running the step (Metaflow reads it the same way).
fn literal_name<'t>(
    value: Node<'t>,
    keyword: &str,
    src: &str,
    eval: &Evaluator<'t, '_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> String {
    let folded = eval.eval(value, None);
    if let (Value::Str(s), true) = (&folded, is_string_literal(value)) {
        return s.clone();
    }
    let code = if keyword == "foreach" {
        &codes::FOREACH_NOT_LITERAL
    } else {
        &codes::CONDITION_NOT_LITERAL
    };
    let help = match &folded {
        Value::Str(s) => format!(
            "`{}` is the string \"{s}\", but it must be written in place: `{keyword}=\"{s}\"`",
            text(value, src)
        ),
        _ => format!("name the artifact with a string literal: `{keyword}=\"var\"`"),
    };
    diagnostics.push(
        Diagnostic::new(
            code,
            span(value),
            format!("`{keyword}=` must be a string literal naming an artifact"),
        )
        .with_label("not a string literal")
        .with_help(help),
    );
    match folded {
        Value::Str(s) => s,
        _ => text(value, src).to_string(),
    }
}

fn shorten(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 40 || line.len() < s.len() {
        let mut short: String = line.chars().take(40).collect();
        short.push('…');
        short
    } else {
        line.to_string()
    }
}
