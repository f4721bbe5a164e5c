//! Decorators: the table of every decorator flowc knows (Metaflow 2.19's step and flow
//! decorators, with their attributes and defaults), and their lowering into the IR's
//! `Decorator` records and typed views (`StepSpec`, `FlowSpecView`).
//!
//! The frontend hands over decorators already statically evaluated (`RawDecorator`);
//! this module never sees tree-sitter nodes. Lowering is in two passes: `check` holds
//! every decorator against the table (name, place, repetition, arguments), then `step`
//! and `flow` build the typed views from what passed, adding the rules that span
//! several arguments or decorators.

mod check;
mod flow;
mod python_env;
mod step;
pub(crate) mod table;

#[cfg(test)]
mod tests;

use flowc_ir::{Decorator, FlowSpecView, Span, StepSpec, Value};

use crate::diagnostics::Diagnostic;
use table::Scope;

/// One argument as written: `name=value` (keyword) or `value` (positional, `name` None).
#[derive(Debug, Clone)]
pub(crate) struct RawArg {
    pub(crate) name: Option<String>,
    /// The whole argument, `name=value` included.
    pub(crate) span: Span,
    pub(crate) value: Value,
    /// The spans of the `Deferred` parts of `value` kept because they nest too deeply
    /// to fold (rather than because they need the program to run).
    pub(crate) too_deep: Vec<Span>,
}

/// One decorator as written above a step or the flow class, `@step` excluded.
#[derive(Debug, Clone)]
pub(crate) struct RawDecorator {
    /// The name without module prefix: `@metaflow.retry` and `@retry` are both `retry`.
    pub(crate) name: String,
    pub(crate) name_span: Span,
    /// The whole decorator, `@` to closing parenthesis.
    pub(crate) span: Span,
    pub(crate) args: Vec<RawArg>,
}

/// Lower the flow class's decorators. Reports unknown decorators (warning), unknown
/// attributes, bad values, duplicates, step decorators on the flow, deferred values.
pub(crate) fn lower_flow_decorators(
    decorators: &[RawDecorator],
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<Decorator>, FlowSpecView) {
    let (records, checked) = check::check_all(decorators, Scope::Flow, diagnostics);
    let view = flow::lower(&checked, diagnostics);
    (records, view)
}

/// Lower one step's decorators; `flow` is the already-lowered flow view (for
/// `@pypi_base` / `@conda_base` defaults that step decorators override).
pub(crate) fn lower_step_decorators(
    decorators: &[RawDecorator],
    flow: &FlowSpecView,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<Decorator>, StepSpec) {
    let (records, checked) = check::check_all(decorators, Scope::Step, diagnostics);
    let spec = step::lower(&checked, flow, diagnostics);
    (records, spec)
}
