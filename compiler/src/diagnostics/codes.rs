//! The registry of diagnostic codes. Codes are stable: never rename or reuse one.
//! `docs/diagnostics.md` lists them with an example each.

use super::Severity;

/// A stable diagnostic code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

macro_rules! codes {
    ($($ident:ident = $name:literal, $sev:ident, $summary:literal;)*) => {
        $(pub const $ident: Code = Code { name: $name, severity: Severity::$sev, summary: $summary };)*
        /// Every code, in registry order.
        pub const CODES: &[Code] = &[$($ident),*];
    };
}

codes! {
    // Reading the file.
    SYNTAX_ERROR = "flowc::syntax::error", Error, "the file is not valid Python";
    SYNTAX_MISSING = "flowc::syntax::missing", Error, "a token Python requires is missing";
    NO_FLOW_CLASS = "flowc::flow::no-flow-class", Error, "the file defines no FlowSpec subclass";
    AMBIGUOUS_FLOW = "flowc::flow::ambiguous", Error, "several flow classes and no --flow to choose one";
    UNKNOWN_FLOW = "flowc::flow::unknown", Error, "--flow names a class that is not a flow in this file";
    INHERITANCE_CYCLE = "flowc::flow::inheritance-cycle", Error, "classes of the file inherit from each other in a cycle";
    VALUE_DEFERRED = "flowc::value::deferred", Warning, "an argument cannot be evaluated statically and is kept as an expression";
    // Steps and self.next.
    STEP_BAD_SIGNATURE = "flowc::step::bad-signature", Error, "a step must take (self) or, for a join, (self, inputs)";
    STEP_DUPLICATE = "flowc::step::duplicate", Error, "two steps with the same name";
    STEP_RESERVED_NAME = "flowc::step::reserved-name", Error, "a step name that Metaflow reserves";
    STEP_INVALID_NAME = "flowc::step::invalid-name", Error, "a step name with characters other than lowercase letters, digits and `_`, or starting with `_`";
    NEXT_NOT_LAST = "flowc::step::next-not-last", Error, "self.next(...) must be the last statement of a step";
    NEXT_MULTIPLE = "flowc::step::multiple-next", Error, "a step calls self.next(...) more than once";
    NEXT_BAD_TARGET = "flowc::step::bad-next-target", Error, "self.next(...) takes steps written as self.<step>";
    NEXT_BAD_ARGUMENTS = "flowc::step::bad-next-arguments", Error, "self.next(...) arguments do not form a valid transition";
    FOREACH_NOT_LITERAL = "flowc::step::foreach-not-literal", Error, "foreach= must be a string literal naming an artifact";
    CONDITION_NOT_LITERAL = "flowc::step::condition-not-literal", Error, "condition= must be a string literal naming an artifact";
    // Parameters.
    PARAM_BAD_ARGUMENT = "flowc::parameter::bad-argument", Error, "a Parameter/IncludeFile/Config argument is missing or invalid";
    PARAM_DUPLICATE = "flowc::parameter::duplicate", Error, "two parameters with the same name";
    PARAM_RESERVED_NAME = "flowc::parameter::reserved-name", Error, "a parameter name that clashes with a run option or a flow attribute";
    PARAM_DEFAULT_TYPE = "flowc::parameter::default-type-mismatch", Error, "a parameter's default does not match its type";
    PARAM_NO_DEFAULT = "flowc::parameter::no-default", Warning, "a parameter with neither a default nor required=True is None when not given";
    // Decorators.
    DECORATOR_UNKNOWN = "flowc::decorator::unknown", Warning, "a decorator flowc does not know; it is kept but not interpreted";
    DECORATOR_UNKNOWN_ATTRIBUTE = "flowc::decorator::unknown-attribute", Error, "a decorator argument the decorator does not take";
    DECORATOR_BAD_VALUE = "flowc::decorator::bad-value", Error, "a decorator argument of the wrong type or out of range";
    DECORATOR_DUPLICATE = "flowc::decorator::duplicate", Error, "the same decorator twice where only one is allowed";
    DECORATOR_MISPLACED = "flowc::decorator::misplaced", Error, "a flow decorator on a step, or a step decorator on the flow";
    MULTIPLE_COMPUTE = "flowc::decorator::multiple-compute", Error, "more than one compute decorator (@batch, @kubernetes) on a step";
    CATCH_ON_SPLIT = "flowc::decorator::catch-on-split", Error, "@catch on a foreach or switch step, which Metaflow does not support";
    PARALLEL_ON_SWITCH = "flowc::decorator::parallel-on-switch", Error, "@parallel on a switch step: a @parallel step must lead to its join";
    SCHEDULE_REQUIRED_PARAMETER = "flowc::decorator::schedule-required-parameter", Error, "a scheduled flow cannot have a required parameter without default";
    // The step graph.
    MISSING_START = "flowc::graph::missing-start", Error, "the flow has no start step";
    MISSING_END = "flowc::graph::missing-end", Error, "the flow has no end step";
    MULTIPLE_START = "flowc::graph::multiple-start", Error, "several steps are marked @step(start=True)";
    MULTIPLE_END = "flowc::graph::multiple-end", Error, "several steps are marked @step(end=True)";
    END_HAS_TRANSITION = "flowc::graph::end-has-transition", Error, "the end step must not call self.next(...)";
    MISSING_TRANSITION = "flowc::graph::missing-transition", Error, "a step other than end does not call self.next(...)";
    UNKNOWN_STEP = "flowc::graph::unknown-step", Error, "self.next(...) names a step that does not exist";
    CYCLE = "flowc::graph::cycle", Error, "the graph has a cycle that is not a switch looping to its own step";
    UNREACHABLE = "flowc::graph::unreachable", Error, "a step that cannot be reached from start";
    UNBALANCED_JOIN = "flowc::graph::unbalanced-join", Error, "a split (branch or foreach) is not closed by one join of that same split";
    JOIN_WITHOUT_INPUTS = "flowc::graph::join-without-inputs", Error, "a step joins several parents but does not take inputs";
    INPUTS_NOT_JOIN = "flowc::graph::inputs-not-join", Error, "a step takes inputs but has only one parent";
    SWITCH_TOO_FEW_CASES = "flowc::graph::switch-too-few-cases", Error, "a switch needs at least two cases";
    SWITCH_MISSING_CONDITION = "flowc::graph::switch-missing-condition", Error, "a switch dict needs condition=";
    START_HAS_INCOMING = "flowc::graph::start-has-incoming", Error, "a step leads back to the start step";
    AMBIGUOUS_ENTRY = "flowc::graph::ambiguous-entry", Error, "a step is marked start=True or end=True while another step has that name";
    DUPLICATE_BRANCH = "flowc::graph::duplicate-branch", Error, "a split names the same step twice";
    SPLIT_INTO_JOIN = "flowc::graph::split-into-join", Error, "a branch or foreach leads straight to a join step";
    SWITCH_INTO_JOIN = "flowc::graph::switch-into-join", Error, "a switch case leads straight to a join step";
    JOIN_IS_SPLIT = "flowc::graph::join-is-split", Error, "a join step cannot also split";
    PARALLEL_NOT_JOINED = "flowc::graph::parallel-not-joined", Error, "a @parallel step must lead straight to a join step";
    // Argo target.
    ARGO_NAME_TOO_LONG = "flowc::argo::name-too-long", Error, "a Kubernetes name made from the flow is over 63 characters";
    ARGO_CRON_NAME_TOO_LONG = "flowc::argo::cron-name-too-long", Error, "a CronWorkflow name is over 52 characters (Argo appends a timestamp)";
    ARGO_DOCUMENT_TOO_LARGE = "flowc::argo::document-too-large", Error, "a document is over the 1 MB Kubernetes keeps for one object";
    ARGO_DEFAULT_TOO_LARGE = "flowc::argo::parameter-default-too-large", Error, "a parameter default is over 256 KB, too large for a workflow argument";
    ARGO_UNSUPPORTED_GRAPH = "flowc::argo::unsupported-graph", Error, "a flow the Argo target cannot express yet (@parallel steps)";
    ARGO_BAD_SCHEDULE = "flowc::argo::bad-schedule", Error, "a @schedule cron expression Argo's 5-field cron cannot express";
    ARGO_INVALID_NAME = "flowc::argo::invalid-name", Error, "a name given to Kubernetes (secret, label) that Kubernetes rejects";
    // Step Functions and Batch targets. `flowc::batch::*` codes are about the job
    // definitions, which both `--target sfn` and `--target batch` write.
    STATE_NAME_TOO_LONG = "flowc::sfn::state-name-too-long", Error, "a state name made from a step is over the 80 characters Step Functions accepts";
    OVERRIDES_TOO_LARGE = "flowc::sfn::container-overrides-too-large", Error, "a step's Batch ContainerOverrides are over the 8192 characters SubmitJob accepts";
    DEFINITION_TOO_LARGE = "flowc::sfn::definition-too-large", Error, "the state machine definition is over the 1 MB Step Functions accepts";
    INLINE_MAP_TOO_WIDE = "flowc::sfn::inline-map-too-wide", Error, "an inline Map is expected to be wider than the concurrency it can run";
    UNSUPPORTED_GRAPH = "flowc::sfn::unsupported-graph", Error, "a graph shape the Step Functions target cannot express yet";
    BAD_SCHEDULE = "flowc::sfn::bad-schedule", Error, "a @schedule EventBridge cannot run, or settings its schedule needs are missing";
    JOB_NAME_TOO_LONG = "flowc::batch::name-too-long", Error, "a job definition name made from a step is over the 128 characters Batch accepts";
    RESOURCES_OUT_OF_RANGE = "flowc::batch::resources-out-of-range", Error, "a step asks for resources its Batch platform cannot give";
    UNSUPPORTED_OPTION = "flowc::batch::unsupported-option", Error, "a @batch option the target cannot express";
}
