//! Flags a required parameter without a default in a flow that has `@schedule`.
//!
//! A scheduled run starts with no one to pass the parameter, so it could never start.
//! Metaflow refuses to deploy such a flow (an explicit `default=None` is a default).
//!
//! ```python
//! @schedule(daily=True)
//! class ReportFlow(FlowSpec):
//!     day = Parameter("day", required=True)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::SCHEDULE_REQUIRED_PARAMETER,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let flow = cx.flow;
    if flow.spec.schedule.is_none() {
        return;
    }
    let schedule = flow.flow_decorators.iter().find(|d| d.name == "schedule");
    for p in &flow.parameters {
        if !p.required || p.default.is_some() {
            continue;
        }
        let mut d = Diagnostic::new(
            &codes::SCHEDULE_REQUIRED_PARAMETER,
            p.span,
            format!(
                "parameter `{}` is required and has no default, but `{}` runs on a schedule",
                p.name, flow.name
            ),
        )
        .with_help(format!(
            "give `{}` a default for scheduled runs, or remove `required=True`",
            p.name
        ));
        if let Some(s) = schedule {
            d = d.with_related(s.span, "scheduled runs start without parameters");
        }
        out.push(d);
    }
}
