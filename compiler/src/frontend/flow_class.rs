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
    /// Where each of `bases` is written.
    base_spans: Vec<Span>,
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
    diagnostics.extend(base_cycles(&classes));
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
        .map(|(def, name)| {
            let written = def.bases();
            ClassInfo {
                def: *def,
                name: text(*name, cx.src).to_string(),
                name_node: *name,
                bases: written
                    .iter()
                    .map(|&b| {
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
                base_spans: written.iter().map(|&b| span(b)).collect(),
            }
        })
        .collect()
}

/// Classes of the file that inherit from themselves, directly or through each other.
/// Python cannot define them (the base is not defined yet when the class statement
/// runs), so the flow's bases would not be what flowc reads: each cycle is an error.
///
/// Classes not on a cycle are peeled off first (those whose in-file bases are all
/// peeled); every class left has a base left, so following the first one from any of
/// them reaches a cycle, reported once, at the class of the cycle defined first.
fn base_cycles(classes: &[ClassInfo<'_>]) -> Vec<Diagnostic> {
    let local_bases = |c: usize| {
        classes[c]
            .bases
            .iter()
            .enumerate()
            .filter_map(|(k, b)| match b {
                Base::Local(b) => Some((k, *b)),
                _ => None,
            })
    };
    // Peel classes whose in-file bases are all peeled (Kahn's algorithm on the bases).
    let mut remaining: Vec<usize> = (0..classes.len()).map(|c| local_bases(c).count()).collect();
    let mut derived: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for c in 0..classes.len() {
        for (_, b) in local_bases(c) {
            derived[b].push(c);
        }
    }
    let mut queue: Vec<usize> = (0..classes.len()).filter(|&c| remaining[c] == 0).collect();
    while let Some(c) = queue.pop() {
        for &d in &derived[c] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                queue.push(d);
            }
        }
    }
    let on_cycle_path = |c: usize| remaining[c] > 0;
    // The first base of `c` that is itself left: it exists for every class left.
    let next = |c: usize| local_bases(c).find(|&(_, b)| on_cycle_path(b));

    let mut out = Vec::new();
    // 0: not visited, 1 + w: visited by walk w.
    let mut walked = vec![0usize; classes.len()];
    for (walk, startc) in (0..classes.len()).filter(|&c| on_cycle_path(c)).enumerate() {
        let mut path = Vec::new();
        let mut c = startc;
        while walked[c] == 0 {
            walked[c] = walk + 1;
            path.push(c);
            match next(c) {
                Some((_, b)) => c = b,
                None => break,
            }
        }
        // A class met again in this walk closes a new cycle; one met in an earlier
        // walk leads into a cycle already reported.
        if walked[c] != walk + 1 {
            continue;
        }
        let Some(at) = path.iter().position(|&p| p == c) else {
            continue;
        };
        out.push(cycle_diagnostic(classes, &path[at..], &next));
    }
    out
}

fn cycle_diagnostic(
    classes: &[ClassInfo<'_>],
    cycle: &[usize],
    next: &dyn Fn(usize) -> Option<(usize, usize)>,
) -> Diagnostic {
    // Start the cycle at the class defined first, so the report does not depend on
    // where the walk entered it.
    let first = (0..cycle.len())
        .min_by_key(|&i| classes[cycle[i]].name_node.start_byte())
        .unwrap_or(0);
    let ordered: Vec<usize> = cycle[first..]
        .iter()
        .chain(&cycle[..first])
        .copied()
        .collect();
    // Where class `c` names the next class of the cycle.
    let base_span = |c: usize| {
        next(c)
            .and_then(|(k, _)| classes[c].base_spans.get(k).copied())
            .unwrap_or_else(|| span(classes[c].name_node))
    };
    let name = |c: usize| classes[c].name.as_str();
    let head = ordered[0];
    let base_of = |i: usize| ordered[(i + 1) % ordered.len()];
    let message = match ordered.as_slice() {
        [one] => format!("class `{}` inherits from itself", name(*one)),
        [a, b] => format!(
            "classes `{}` and `{}` inherit from each other",
            name(*a),
            name(*b)
        ),
        _ => format!(
            "classes {} inherit from each other in a cycle",
            list(&ordered.iter().map(|&c| name(c)).collect::<Vec<_>>())
        ),
    };
    let mut d = Diagnostic::new(&codes::INHERITANCE_CYCLE, base_span(head), message).with_label(
        format!("`{}` inherits from `{}` here", name(head), name(base_of(0))),
    );
    for (i, &c) in ordered.iter().enumerate().skip(1) {
        d = d.with_related(
            base_span(c),
            format!("`{}` inherits from `{}`", name(c), name(base_of(i))),
        );
    }
    d.with_help(
        "a class can only inherit from classes defined before it: remove one base of the \
         cycle, or define the shared steps in a base class of their own",
    )
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

/// The class and its in-file bases in Python's method resolution order, approximated
/// by a left-to-right depth-first walk that keeps each class's last occurrence (which
/// matches C3 for the usual diamonds).
///
/// That walk revisits shared bases, so its length grows exponentially with a lattice
/// of diamonds. The same order comes from one visit per class: the walk reversed is a
/// right-to-left post-order walk, in which a class's first occurrence is where its own
/// bases have all been seen; a class seen before adds nothing new. So this walks
/// right to left, post-order, each class once, and reverses: linear in the number of
/// classes and bases, iterative, however deep or wide the hierarchy. A base that is
/// on the current path (a cycle, reported by `base_cycles`) is skipped.
fn mro(classes: &[ClassInfo<'_>], flow: usize) -> Vec<usize> {
    let mut seen = vec![false; classes.len()];
    let mut order = Vec::new();
    // (class, how many of its bases are still to visit, taken from the right)
    let mut path: Vec<(usize, usize)> = vec![(flow, classes[flow].bases.len())];
    seen[flow] = true;
    while let Some(&mut (class, ref mut left)) = path.last_mut() {
        let Some(i) = left.checked_sub(1) else {
            order.push(class);
            path.pop();
            continue;
        };
        *left = i;
        if let Some(&Base::Local(b)) = classes[class].bases.get(i) {
            if !seen[b] {
                seen[b] = true;
                path.push((b, classes[b].bases.len()));
            }
        }
    }
    order.reverse();
    order
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse_tree;

    /// The walk `mro` stands for, as written: left to right, depth first, revisiting
    /// shared bases, then each class's last occurrence. Exponential on lattices, so only
    /// for small hierarchies.
    fn reference_mro(classes: &[ClassInfo<'_>], flow: usize) -> Vec<usize> {
        fn walk(classes: &[ClassInfo<'_>], c: usize, path: &mut Vec<usize>, out: &mut Vec<usize>) {
            out.push(c);
            path.push(c);
            for base in &classes[c].bases {
                if let Base::Local(b) = base {
                    if !path.contains(b) {
                        walk(classes, *b, path, out);
                    }
                }
            }
            path.pop();
        }
        let mut order = Vec::new();
        walk(classes, flow, &mut Vec::new(), &mut order);
        let mut seen = HashSet::new();
        let mut keep_last: Vec<usize> = order
            .into_iter()
            .rev()
            .filter(|c| seen.insert(*c))
            .collect();
        keep_last.reverse();
        keep_last
    }

    fn with_classes(src: &str, check: impl FnOnce(&[ClassInfo<'_>])) {
        let tree = parse_tree(src).expect("tree");
        let cx = Context::new(tree.root_node(), src);
        check(&classes(&cx, tree.root_node()));
    }

    fn names(classes: &[ClassInfo<'_>], order: &[usize]) -> Vec<String> {
        order.iter().map(|&c| classes[c].name.clone()).collect()
    }

    #[test]
    fn mro_of_diamonds_and_repeated_bases() {
        let src = "class A: pass\nclass B(A): pass\nclass C(A): pass\nclass D(B, C): pass\n\
                   class E(D, A, C): pass\n";
        with_classes(src, |classes| {
            assert_eq!(names(classes, &mro(classes, 3)), ["D", "B", "C", "A"]);
            assert_eq!(names(classes, &mro(classes, 4)), ["E", "D", "B", "C", "A"]);
        });
    }

    #[test]
    fn mro_matches_the_walk_it_replaces_on_random_hierarchies() {
        // SplitMix64, seeded: the same hierarchies on every run.
        let mut state = 0x00C0_FFEE_u64;
        let mut next = |n: u64| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % n) as usize
        };
        for round in 0..200 {
            let count = 2 + next(9);
            let mut src = String::new();
            for c in 0..count {
                // Bases among earlier classes, and now and then a later one (a cycle).
                let bases: Vec<String> = (0..next(4))
                    .map(|_| {
                        let b = if round % 5 == 0 {
                            next(count as u64)
                        } else {
                            next(c.max(1) as u64)
                        };
                        format!("C{b}")
                    })
                    .filter(|b| c > 0 || round % 5 == 0 || b != "C0")
                    .collect();
                src.push_str(&format!("class C{c}({}): pass\n", bases.join(", ")));
            }
            with_classes(&src, |classes| {
                for flow in 0..classes.len() {
                    assert_eq!(
                        names(classes, &mro(classes, flow)),
                        names(classes, &reference_mro(classes, flow)),
                        "C{flow} in\n{src}"
                    );
                }
            });
        }
    }

    #[test]
    fn mro_of_a_lattice_of_diamonds_is_linear() {
        // Each level joins two classes that both derive from the level below: the
        // walk with revisits would take 2^60 steps.
        let mut src = String::from("class L0: pass\n");
        for i in 1..=60 {
            src.push_str(&format!(
                "class A{i}(L{p}): pass\nclass B{i}(L{p}): pass\nclass L{i}(A{i}, B{i}): pass\n",
                p = i - 1
            ));
        }
        with_classes(&src, |classes| {
            let top = classes.iter().position(|c| c.name == "L60").expect("L60");
            let order = names(classes, &mro(classes, top));
            assert_eq!(order.len(), classes.len());
            assert_eq!(&order[..4], ["L60", "A60", "B60", "L59"]);
            assert_eq!(order.last().map(String::as_str), Some("L0"));
        });
    }
}
