//! `flowc inspect`: print what flowc read from a flow, as the IR's JSON or as text.

use std::fmt::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use flowc::graph::printable;
use flowc_ir::{
    Compute, Decorator, Flow, ParameterKind, ParameterType, Step, StepSpec, Transition, Value,
};

use super::{load_flow, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc inspect flow.py > flow.ir.json
  flowc inspect flow.py --format text
  flowc inspect pipelines.py --flow TrainFlow | jq '.steps[].name'

The JSON is the flowc IR (it carries \"ir_version\"); external generators read it on
stdin. A file with errors prints its diagnostics on stderr and exits with status 1.";

const LONG_ABOUT: &str = "\
Show what flowc read from a flow.

Prints the flow's intermediate representation: parameters, configs, flow decorators,
and each step with its decorators (as written and as interpreted: resources, retry,
timeout, where it runs) and its transition.";

/// Show what flowc read from a flow (its intermediate representation).
#[derive(Debug, clap::Args)]
#[command(long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The flow file.
    #[arg(value_name = "FLOW.py")]
    file: PathBuf,

    /// The flow class to inspect when the file defines several.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The IR as pretty-printed JSON: the stable interface for tools.
    Json,
    /// A readable summary.
    Text,
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    let (flow, warnings) = match load_flow(&args.file, args.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&flow) {
            Ok(json) => Outcome {
                stdout: json + "\n",
                stderr: warnings,
                status: Status::Ok,
            },
            Err(error) => Outcome::failure(
                Status::Trouble,
                format!("{warnings}error: cannot write the IR as JSON: {error}\n"),
            ),
        },
        Format::Text => Outcome {
            stdout: text(&flow),
            stderr: warnings,
            status: Status::Ok,
        },
    }
}

const INDENT: &str = "    ";

/// The flow as a readable summary: a heading per section, one entry per line.
fn text(flow: &Flow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "flow {}", printable(&flow.name));
    if let Some(doc) = flow.doc.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        push_block(&mut out, 1, doc);
    }
    let _ = writeln!(
        out,
        "source {} (sha256 {})",
        printable(&flow.source.path),
        flow.source.sha256
    );
    let _ = writeln!(
        out,
        "start step {}, end step {}",
        printable(&flow.start_step),
        printable(&flow.end_step)
    );

    out.push_str("\nparameters\n");
    if flow.parameters.is_empty() {
        let _ = writeln!(out, "{INDENT}(none)");
    }
    for p in &flow.parameters {
        let mut line = format!("{INDENT}--{} {}", printable(&p.name), type_name(p.ty));
        if p.kind == ParameterKind::IncludeFile {
            line.push_str(if p.is_text {
                " (include file)"
            } else {
                " (include file, binary)"
            });
        }
        match &p.default {
            Some(default) => {
                let _ = write!(line, ", default {}", python(default));
            }
            None if p.required => line.push_str(", required"),
            None => line.push_str(", no default"),
        }
        if p.default.is_some() && p.required {
            line.push_str(", required");
        }
        if p.attr != p.name {
            let _ = write!(line, ", read as self.{}", printable(&p.attr));
        }
        if let Some(base) = &p.inherited_from {
            let _ = write!(line, ", inherited from {}", printable(base));
        }
        let _ = writeln!(out, "{line}");
        if let Some(help) = p.help.as_deref().filter(|h| !h.trim().is_empty()) {
            push_block(&mut out, 2, help.trim());
        }
    }

    if !flow.configs.is_empty() {
        out.push_str("\nconfigs\n");
        for c in &flow.configs {
            let mut line = format!("{INDENT}{}", printable(&c.name));
            if let Some(default) = &c.default {
                let _ = write!(line, ", default {}", python(default));
            }
            if let Some(value) = &c.default_value {
                let _ = write!(line, ", default value {}", python(value));
            }
            if c.required {
                line.push_str(", required");
            }
            if c.attr != c.name {
                let _ = write!(line, ", read as self.{}", printable(&c.attr));
            }
            let _ = writeln!(out, "{line}");
        }
    }

    out.push_str("\nflow decorators\n");
    if flow.flow_decorators.is_empty() {
        let _ = writeln!(out, "{INDENT}(none)");
    }
    for d in &flow.flow_decorators {
        let _ = writeln!(out, "{INDENT}{}", decorator(d));
    }

    out.push_str("\nsteps\n");
    for (i, step) in flow.steps.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        step_text(&mut out, step);
    }
    out
}

fn step_text(out: &mut String, step: &Step) {
    let mut heading = format!("{INDENT}{}", printable(&step.name));
    if step.is_join {
        heading.push_str(" (join)");
    }
    if let Some(base) = &step.inherited_from {
        let _ = write!(heading, " (inherited from {})", printable(base));
    }
    let _ = writeln!(out, "{heading}");
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "{INDENT}{INDENT}{name}: {value}");
    };
    if let Some(doc) = step.doc.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let first = doc.lines().next().unwrap_or_default();
        field(out, "doc", &printable(first));
    }
    // One decorator a line, top to bottom as written: long argument lists stay legible.
    for d in &step.decorators {
        let _ = writeln!(out, "{INDENT}{INDENT}{}", decorator(d));
    }
    spec_text(out, &step.spec, field);
    field(out, "next", &transition(&step.transition));
}

/// The highlights of a step's typed decorator view.
fn spec_text(out: &mut String, spec: &StepSpec, field: impl Fn(&mut String, &str, &str)) {
    let r = &spec.resources;
    let mut resources = format!("cpu {}, memory {} MB", r.cpu, r.memory_mb);
    if let Some(gpu) = r.gpu {
        let _ = write!(resources, ", gpu {gpu}");
    }
    if let Some(disk) = r.disk_mb {
        let _ = write!(resources, ", disk {disk} MB");
    }
    if let Some(shm) = r.shared_memory_mb {
        let _ = write!(resources, ", shared memory {shm} MB");
    }
    field(out, "resources", &resources);
    field(out, "compute", &compute(&spec.compute));
    if let Some(retry) = &spec.retry {
        let value = format!(
            "{}, {} between",
            plural(u64::from(retry.times), "time"),
            plural(u64::from(retry.minutes_between), "minute")
        );
        field(out, "retry", &value);
    }
    if let Some(timeout) = &spec.timeout {
        field(out, "timeout", &plural(timeout.seconds, "second"));
    }
    if let Some(catch) = &spec.catch {
        let var = catch.var.as_deref().map_or_else(
            || "no variable".to_string(),
            |v| format!("into self.{}", printable(v)),
        );
        let printing = if catch.print_exception {
            ", prints the exception"
        } else {
            ""
        };
        field(out, "catch", &format!("{var}{printing}"));
    }
    if spec.parallel {
        field(out, "parallel", "yes");
    }
}

fn compute(compute: &Compute) -> String {
    let (kind, details) = match compute {
        Compute::Local => return "local".to_string(),
        Compute::Batch(b) => (
            "batch",
            [
                ("image", &b.image),
                ("queue", &b.queue),
                ("iam role", &b.iam_role),
            ],
        ),
        Compute::Kubernetes(k) => (
            "kubernetes",
            [
                ("image", &k.image),
                ("namespace", &k.namespace),
                ("service account", &k.service_account),
            ],
        ),
    };
    let details: Vec<String> = details
        .iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| format!("{name} {}", printable(v))))
        .collect();
    if details.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", details.join(", "))
    }
}

fn transition(transition: &Transition) -> String {
    match transition {
        Transition::End => "(none: the flow ends here)".to_string(),
        Transition::Linear { to } => printable(&to.step),
        Transition::Branch { to } => {
            let names: Vec<String> = to.iter().map(|t| printable(&t.step)).collect();
            format!("{} (branch)", names.join(", "))
        }
        Transition::Foreach { to, over, .. } => format!(
            "{} for each item of self.{}",
            printable(&to.step),
            printable(over)
        ),
        Transition::Switch { on, cases, .. } => {
            let cases: Vec<String> = cases
                .iter()
                .map(|c| format!("{:?} => {}", c.value, printable(&c.target.step)))
                .collect();
            format!("switch on self.{}: {}", printable(on), cases.join(", "))
        }
    }
}

/// `@name(arg=value, ...)`, arguments in name order; `@name` when there are none.
fn decorator(d: &Decorator) -> String {
    if d.args.is_empty() {
        return format!("@{}", printable(&d.name));
    }
    let args: Vec<String> = d
        .args
        .iter()
        .map(|(name, value)| format!("{}={}", printable(name), python(value)))
        .collect();
    format!("@{}({})", printable(&d.name), args.join(", "))
}

fn type_name(ty: ParameterType) -> &'static str {
    match ty {
        ParameterType::Str => "str",
        ParameterType::Int => "int",
        ParameterType::Float => "float",
        ParameterType::Bool => "bool",
        ParameterType::Json => "JSONType",
        ParameterType::Other => "(custom type)",
    }
}

/// A value written the way Python would write it; an expression that could not be
/// evaluated is shown as its source text, marked as such.
fn python(value: &Value) -> String {
    match value {
        Value::None => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "nan".to_string(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.to_string(),
        // `{:?}` keeps the `.0` of a whole number, as Python's repr does.
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => format!("{s:?}"),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(python).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Dict(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", python(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Deferred { source_text, .. } => {
            format!("<expression {}>", printable(source_text))
        }
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Lines of user text indented `depth` levels.
fn push_block(out: &mut String, depth: usize, text: &str) {
    for line in text.lines() {
        let _ = writeln!(
            out,
            "{}{}",
            INDENT.repeat(depth),
            printable(line.trim_end())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn writes_values_as_python_does() {
        assert_eq!(python(&Value::Float(1.0)), "1.0");
        assert_eq!(python(&Value::Float(0.25)), "0.25");
        assert_eq!(python(&Value::Bool(true)), "True");
        assert_eq!(python(&Value::Str("a\"b\n".into())), "\"a\\\"b\\n\"");
        let dict = BTreeMap::from([(
            "k".to_string(),
            Value::List(vec![Value::Int(1), Value::None]),
        )]);
        assert_eq!(python(&Value::Dict(dict)), "{\"k\": [1, None]}");
        let deferred = Value::Deferred {
            source_text: "os.environ['X']".into(),
            span: flowc_ir::Span::new(0, 1),
        };
        assert_eq!(python(&deferred), "<expression os.environ['X']>");
    }

    #[test]
    fn summarises_a_flow() {
        let source = r#"
from metaflow import FlowSpec, step, Parameter, retry, resources, timeout

class TrainFlow(FlowSpec):
    """Train a model."""

    alpha = Parameter("alpha", help="Learning rate.", default=0.5)
    dataset = Parameter("dataset", required=True)

    @retry(times=2)
    @resources(cpu=2, memory=8192)
    @timeout(minutes=5)
    @step
    def start(self):
        """Load data."""
        self.items = [1, 2]
        self.next(self.train, foreach="items")

    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
        let checked = flowc::check("train.py", source, &flowc::FrontendOptions::default());
        assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
        let flow = checked.flow.expect("flow");
        let out = text(&flow);
        assert!(
            out.starts_with("flow TrainFlow\n    Train a model.\nsource train.py (sha256 "),
            "{out}"
        );
        assert!(
            out.contains("    --alpha float, default 0.5\n        Learning rate.\n"),
            "{out}"
        );
        assert!(out.contains("    --dataset str, required\n"), "{out}");
        assert!(
            out.contains(
                "        doc: Load data.\n        @retry(times=2)\n        \
                 @resources(cpu=2, memory=8192)\n        @timeout(minutes=5)\n        \
                 resources: cpu 2, memory 8192 MB\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("        retry: 2 times, 2 minutes between\n"),
            "{out}"
        );
        assert!(out.contains("        timeout: 300 seconds\n"), "{out}");
        assert!(
            out.contains("        next: train for each item of self.items\n"),
            "{out}"
        );
        assert!(out.contains("    join (join)\n"), "{out}");
        assert!(
            out.contains("        next: (none: the flow ends here)\n"),
            "{out}"
        );
    }
}
