//! Warns about a parameter with neither a default nor `required=True`.
//!
//! When the user does not pass it, the parameter is `None` in every step, which is
//! rarely what the code expects. An explicit `default=None` says it is intended and
//! is not reported. `IncludeFile` behaves the same way.
//!
//! ```python
//! alpha = Parameter("alpha", type=float)      # None unless --alpha is given
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARAM_NO_DEFAULT,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for p in &cx.flow.parameters {
        if p.default.is_some() || p.required {
            continue;
        }
        out.push(
            Diagnostic::new(
                &codes::PARAM_NO_DEFAULT,
                p.name_span,
                format!(
                    "parameter `{}` has no default and is not required: it is `None` when not given",
                    p.name
                ),
            )
            .with_help("give it a default, `default=...`, or make it `required=True`"),
        );
    }
}
