//! Finding the flow: which classes are FlowSpec subclasses (directly, through aliases,
//! or through other classes in the file), which one is the flow, and its bases merged
//! in method-resolution order into one IR `Flow`.

use std::collections::{HashMap, HashSet, VecDeque};

use flowc_ir::{Config, Flow, Parameter, Source, Span, IR_VERSION};
use tree_sitter::Node;

use super::decorators::lower_flow_decorators;
use super::docstring;
use super::eval::{Evaluator, Scope};
use super::imports::Imports;
use super::raw_decorators::raw_decorator;
use super::steps::{self, StepDraft};
use super::syntax::{self, span, statements, text, unparenthesize, ClassDef, FunctionDef};
use super::{parameters, FrontendOptions};
use crate::diagnostics::{codes, did_you_mean, Diagnostic};

/// A bound on the linearised base list, so that a pathological diamond lattice costs
/// a bounded amount of work.
const MAX_MRO: usize = 10_000;

/// What every lowering step needs to read the file.
pub(crate) struct Context<'t, 's> {
    pub(crate) src: &'s str,
    pub(crate) imports: Imports,
    pub(crate) eval: Evaluator<'t, 's>,
    /// Names of module-level functions (callables: a deploy-time parameter default).
    pub(crate) functions: HashSet<String>,
}

impl<'t, 's> Context<'t, 's> {
    fn new(root: Node<'t>, src: &'s str) -> Self {
        let functions = statements(root)
            .into_iter()
            .filter_map(FunctionDef::cast)
            .filter_map(|f| f.name())
            .map(|n| text(n, src).to_string())
            .collect();
        Context {
            src,
            imports: Imports::collect(root, src),
            eval: Evaluator::new(root, src),
            functions,
        }
    }
}

/// How a class names one of its bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    FlowSpec,
    /// Another class of this file (index into the class list).
    Local(usize),
    Other,
}

struct ClassInfo<'t> {
    def: ClassDef<'t>,
    name: String,
    name_node: Node<'t>,
    bases: Vec<Base>,
}

/// Find the flow class in the file and lower it, or report why there is none.
pub(crate) fn lower(
    root: Node<'_>,
    src: &str,
    source: Source,
    options: &FrontendOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Flow> {
    let cx = Context::new(root, src);
    let classes = classes(&cx, root);
    let is_flow = flow_classes(&classes);
    let chosen = choose(&cx, root, &classes, &is_flow, options, diagnostics)?;
    Some(lower_flow(&cx, &classes, chosen, source, diagnostics))
}

/// Every top-level class, with its bases resolved. A name defined twice refers to
/// its last definition, as it does once the module has run.
fn classes<'t>(cx: &Context<'t, '_>, root: Node<'t>) -> Vec<ClassInfo<'t>> {
    let defs: Vec<(ClassDef<'t>, Node<'t>)> = statements(root)
        .into_iter()
        .filter_map(ClassDef::cast)
        .filter_map(|c| Some((c, c.name()?)))
        .collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, (_, name)) in defs.iter().enumerate() {
        last.insert(text(*name, cx.src), i);
    }
    let kept: Vec<(ClassDef<'t>, Node<'t>)> = defs
        .iter()
        .enumerate()
        .filter(|(i, (_, name))| last.get(text(*name, cx.src)) == Some(i))
        .map(|(_, d)| *d)
        .collect();
    let index: HashMap<&str, usize> = kept
        .iter()
        .enumerate()
        .map(|(i, (_, name))| (text(*name, cx.src), i))
        .collect();
    kept.iter()
        .map(|(def, name)| ClassInfo {
            def: *def,
            name: text(*name, cx.src).to_string(),
            name_node: *name,
            bases: def
                .bases()
                .into_iter()
                .map(|b| {
                    let b = unparenthesize(b);
                    if cx.imports.is(b, cx.src, "FlowSpec") {
                        Base::FlowSpec
                    } else if let Some(&i) = (b.kind() == "identifier")
                        .then(|| index.get(text(b, cx.src)))
                        .flatten()
                    {
                        Base::Local(i)
                    } else {
                        Base::Other
                    }
                })
                .collect(),
        })
        .collect()
}

/// Which classes are flows: FlowSpec among their bases, directly or through classes
/// of this file, in any order of definition.
fn flow_classes(classes: &[ClassInfo<'_>]) -> Vec<bool> {
    let mut derived: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    let mut queue = VecDeque::new();
    let mut is_flow = vec![false; classes.len()];
    for (i, class) in classes.iter().enumerate() {
        for base in &class.bases {
            match base {
                Base::FlowSpec => {
                    if !is_flow[i] {
                        is_flow[i] = true;
                        queue.push_back(i);
                    }
                }
                Base::Local(b) => derived[*b].push(i),
                Base::Other => {}
            }
        }
    }
    while let Some(i) = queue.pop_front() {
        for &d in &derived[i] {
            if !is_flow[d] {
                is_flow[d] = true;
                queue.push_back(d);
            }
        }
    }
    is_flow
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a class body defines at least one method under `@step`.
fn has_steps(cx: &Context<'_, '_>, class: &ClassInfo<'_>) -> bool {
    let Some(body) = class.def.body() else {
        return false;
    };
    statements(body)
        .into_iter()
        .filter_map(FunctionDef::cast)
        .any(|f| {
            f.decorators()
                .iter()
                .any(|d| cx.imports.is(d.callee, cx.src, "step"))
        })
}

/// No class of the file is a flow. Most often the flow class forgot its base: point at
/// the first class with steps, and show the fix. Otherwise point at the first line of
/// code, since the whole file is what lacks a flow.
fn no_flow_class(cx: &Context<'_, '_>, root: Node<'_>, classes: &[ClassInfo<'_>]) -> Diagnostic {
    if let Some(class) = classes.iter().find(|c| has_steps(cx, c)) {
        let name = &class.name;
        let help = match cx.imports.local_name("FlowSpec") {
            Some(base) => format!("make it a flow: `class {name}({base}):`"),
            None => format!(
                "make it a flow: `class {name}(FlowSpec):`, with \
                 `from metaflow import FlowSpec` at the top of the file"
            ),
        };
        return Diagnostic::new(
            &codes::NO_FLOW_CLASS,
            span(class.name_node),
            format!("class `{name}` has steps but is not a flow"),
        )
        .with_label("this class has steps but does not inherit from FlowSpec")
        .with_help(help);
    }
    let first_code = statements(root).first().map_or(Span::new(0, 0), |stmt| {
        // The first line of the statement, so a long class is not underlined whole.
        let start = stmt.start_byte();
        let line_end = cx.src[start..]
            .find('\n')
            .map_or(stmt.end_byte(), |i| (start + i).min(stmt.end_byte()));
        Span::new(start, line_end.max(start))
    });
    Diagnostic::new(
        &codes::NO_FLOW_CLASS,
        first_code,
        "this file defines no flow class",
    )
    .with_help(
        "define a class that inherits from FlowSpec: \
         `from metaflow import FlowSpec` and `class MyFlow(FlowSpec):`",
    )
}

/// `--flow NAME` names no flow of the file. The option is not in the source, so point
/// at the flow it most likely meant (or the first flow), naming every flow there is.
fn unknown_flow(
    wanted: &str,
    classes: &[ClassInfo<'_>],
    flows: &[usize],
    candidate_names: &[&str],
) -> Diagnostic {
    let help = format!(
        "pass `--flow` one of the flow classes in this file: {}",
        list(candidate_names)
    );
    if let Some(c) = classes.iter().find(|c| c.name == wanted) {
        return Diagnostic::new(
            &codes::UNKNOWN_FLOW,
            span(c.name_node),
            format!("`--flow {wanted}` names a class that is not a flow"),
        )
        .with_label("does not inherit from FlowSpec")
        .with_help(help);
    }
    let suggestion = did_you_mean(wanted, flows.iter().map(|&i| classes[i].name.as_str()));
    let pointed = suggestion
        .and_then(|s| flows.iter().copied().find(|&i| classes[i].name == s))
        .or_else(|| flows.first().copied());
    let message = format!("`--flow {wanted}`: this file has no flow class `{wanted}`");
    let Some(pointed) = pointed else {
        return Diagnostic::new(&codes::UNKNOWN_FLOW, Span::new(0, 0), message).with_help(help);
    };
    let label = match suggestion {
        Some(s) => format!("did you mean `--flow {s}`?"),
        None => format!("flow `{}`", classes[pointed].name),
    };
    let mut d = Diagnostic::new(
        &codes::UNKNOWN_FLOW,
        span(classes[pointed].name_node),
        message,
    )
    .with_label(label);
    for &i in flows {
        if i != pointed {
            d = d.with_related(
                span(classes[i].name_node),
                format!("flow `{}`", classes[i].name),
            );
        }
    }
    d.with_help(help)
}

/// The flow class to lower: `--flow`, or the one flow no other flow inherits from.
fn choose(
    cx: &Context<'_, '_>,
    root: Node<'_>,
    classes: &[ClassInfo<'_>],
    is_flow: &[bool],
    options: &FrontendOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let flows: Vec<usize> = (0..classes.len()).filter(|&i| is_flow[i]).collect();
    let mut used_as_base = vec![false; classes.len()];
    for &i in &flows {
        for base in &classes[i].bases {
            if let Base::Local(b) = base {
                if *b != i {
                    used_as_base[*b] = true;
                }
            }
        }
    }
    let candidates: Vec<usize> = flows
        .iter()
        .copied()
        .filter(|&i| !used_as_base[i])
        .collect();
    let candidate_names: Vec<&str> = candidates
        .iter()
        .map(|&i| classes[i].name.as_str())
        .collect();
    if flows.is_empty() {
        diagnostics.push(no_flow_class(cx, root, classes));
        return None;
    }
    if let Some(wanted) = &options.flow {
        if let Some(&i) = flows.iter().find(|&&i| classes[i].name == *wanted) {
            return Some(i);
        }
        diagnostics.push(unknown_flow(wanted, classes, &flows, &candidate_names));
        return None;
    }
    match candidates.as_slice() {
        [one] => Some(*one),
        [] => {
            // Every flow is someone's base: only possible with a cycle of bases.
            let first = flows[0];
            Some(first)
        }
        [first, rest @ ..] => {
            let mut d = Diagnostic::new(
                &codes::AMBIGUOUS_FLOW,
                span(classes[*first].name_node),
                format!(
                    "this file defines several flows: {}",
                    list(&candidate_names)
                ),
            )
            .with_label(format!("flow `{}`", classes[*first].name))
            .with_help(format!(
                "pass --flow NAME to choose one of {}",
                list(&candidate_names)
            ));
            for &i in rest {
                d = d.with_related(
                    span(classes[i].name_node),
                    format!("flow `{}`", classes[i].name),
                );
            }
            diagnostics.push(d);
            None
        }
    }
}

/// The class and its in-file bases in Python's method resolution order (approximated
/// by a left-to-right depth-first walk keeping each class's last occurrence, which
/// matches C3 for the usual diamonds). Iterative; cycles are cut.
fn mro(classes: &[ClassInfo<'_>], flow: usize) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    // (class, index of the next base to visit)
    let mut path: Vec<(usize, usize)> = vec![(flow, 0)];
    order.push(flow);
    while let Some(&mut (class, ref mut next)) = path.last_mut() {
        if order.len() >= MAX_MRO {
            break;
        }
        let base = classes[class].bases.get(*next).copied();
        *next += 1;
        match base {
            None => {
                path.pop();
            }
            Some(Base::Local(b)) if !path.iter().any(|(c, _)| *c == b) => {
                order.push(b);
                path.push((b, 0));
            }
            Some(_) => {}
        }
    }
    let mut seen = HashSet::new();
    let mut keep_last: Vec<usize> = order
        .into_iter()
        .rev()
        .filter(|c| seen.insert(*c))
        .collect();
    keep_last.reverse();
    keep_last
}

/// Lower the chosen class with its bases merged: bases first, a subclass's definition
/// replacing a base's one of the same name in place.
fn lower_flow<'t>(
    cx: &Context<'t, '_>,
    classes: &[ClassInfo<'t>],
    flow: usize,
    source: Source,
    diagnostics: &mut Vec<Diagnostic>,
) -> Flow {
    let order: Vec<usize> = mro(classes, flow).into_iter().rev().collect();
    let scopes: Vec<Option<Scope<'t>>> = order
        .iter()
        .map(|&c| classes[c].def.body().map(|b| Scope::class(b, cx.src)))
        .collect();

    // Flow decorators: Metaflow accumulates those of every FlowSpec base.
    let raw: Vec<_> = order
        .iter()
        .flat_map(|&c| classes[c].def.decorators())
        .map(|d| raw_decorator(&d, cx.src, &cx.imports, &cx.eval, None))
        .collect();
    let (flow_decorators, spec) = lower_flow_decorators(&raw, diagnostics);

    let mut steps: Vec<StepDraft> = Vec::new();
    let mut step_index: HashMap<String, usize> = HashMap::new();
    let mut params: Vec<Parameter> = Vec::new();
    let mut param_index: HashMap<String, usize> = HashMap::new();
    let mut configs: Vec<Config> = Vec::new();
    let mut config_index: HashMap<String, usize> = HashMap::new();
    for (&c, scope) in order.iter().zip(&scopes) {
        let class = &classes[c];
        let (Some(body), Some(scope)) = (class.def.body(), scope) else {
            continue;
        };
        let inherited = (c != flow).then_some(class.name.as_str());
        for draft in steps::lower(cx, body, scope, &spec, inherited, diagnostics) {
            merge(&mut steps, &mut step_index, draft.step.name.clone(), draft);
        }
        let (p, k) = parameters::lower(cx, body, scope, inherited, diagnostics);
        for param in p {
            merge(&mut params, &mut param_index, param.attr.clone(), param);
        }
        for config in k {
            merge(&mut configs, &mut config_index, config.attr.clone(), config);
        }
    }

    let start_step = entry_or_exit(&steps, true, diagnostics);
    let end_step = entry_or_exit(&steps, false, diagnostics);
    let class = &classes[flow];
    let doc = class
        .def
        .body()
        .and_then(syntax::docstring)
        .and_then(|d| cx.eval.eval(d, None).as_str().and_then(docstring::clean));
    Flow {
        ir_version: IR_VERSION,
        name: class.name.clone(),
        doc,
        span: span(class.def.outer),
        name_span: span(class.name_node),
        source,
        start_step,
        end_step,
        parameters: params,
        configs,
        flow_decorators,
        spec,
        steps: steps.into_iter().map(|d| d.step).collect(),
    }
}

/// Insert `item` under `key`, replacing an earlier one in place.
fn merge<T>(items: &mut Vec<T>, index: &mut HashMap<String, usize>, key: String, item: T) {
    match index.get(&key) {
        Some(&i) => items[i] = item,
        None => {
            index.insert(key, items.len());
            items.push(item);
        }
    }
}

/// The entry (or exit) step as Metaflow 2.19 resolves it: the one step marked
/// `@step(start=True)`, else the step named `start`; a flow of a single step starts and
/// ends there. Several marked steps are reported here, and the name is left empty:
/// like Metaflow, flowc then has no entry (or exit), and the graph rules that need one
/// stay silent instead of guessing.
fn entry_or_exit(steps: &[StepDraft], entry: bool, diagnostics: &mut Vec<Diagnostic>) -> String {
    let (fallback, mark) = if entry {
        ("start", "start")
    } else {
        ("end", "end")
    };
    if let [only] = steps {
        return only.step.name.clone();
    }
    let marked: Vec<&StepDraft> = steps
        .iter()
        .filter(|d| if entry { d.marked_start } else { d.marked_end })
        .collect();
    match marked.as_slice() {
        [] => fallback.to_string(),
        [one] => one.step.name.clone(),
        [first, second, rest @ ..] => {
            let code = if entry {
                &codes::MULTIPLE_START
            } else {
                &codes::MULTIPLE_END
            };
            let names: Vec<&str> = marked.iter().map(|d| d.step.name.as_str()).collect();
            let mut d = Diagnostic::new(
                code,
                second.step.name_span,
                format!(
                    "several steps are marked `@step({mark}=True)`: {}",
                    list(&names)
                ),
            )
            .with_label(format!("also marked `{mark}=True`"))
            .with_related(first.step.name_span, format!("first marked `{mark}=True`"));
            for other in rest {
                d = d.with_related(other.step.name_span, format!("also marked `{mark}=True`"));
            }
            diagnostics.push(d.with_help(format!(
                "mark exactly one step with `@step({mark}=True)`: the flow has one {}",
                if entry { "entry" } else { "exit" }
            )));
            String::new()
        }
    }
}
