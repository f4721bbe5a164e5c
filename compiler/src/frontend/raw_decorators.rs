//! Decorator expressions as written (`@name`, `@mod.name(...)`) → `RawDecorator`s with
//! their arguments statically evaluated, for `decorators` to interpret.

use super::decorators::{RawArg, RawDecorator};
use super::eval::{Evaluator, Scope};
use super::imports::Imports;
use super::syntax::{span, text, Argument, DecoratorExpr};

/// Lower one decorator. `class` is the scope it is evaluated in: the class body for
/// step decorators (Python evaluates them there), none for flow decorators.
pub(crate) fn raw_decorator<'t>(
    deco: &DecoratorExpr<'t>,
    src: &str,
    imports: &Imports,
    eval: &Evaluator<'t, '_>,
    class: Option<&Scope<'t>>,
) -> RawDecorator {
    let args = deco
        .call
        .map(|call| {
            call.arguments()
                .into_iter()
                .map(|arg| match arg {
                    Argument::Positional(value) => RawArg {
                        name: None,
                        span: span(value),
                        value: eval.eval(value, class),
                    },
                    Argument::Keyword { node, name, value } => RawArg {
                        name: Some(text(name, src).to_string()),
                        span: span(node),
                        value: eval.eval(value, class),
                    },
                    // `*args` / `**kwargs`: nothing to read statically; kept as a
                    // positional deferred value so the table reports it.
                    Argument::Splat(node) => RawArg {
                        name: None,
                        span: span(node),
                        value: eval.eval(node, class),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    RawDecorator {
        name: imports.decorator_name(deco.callee, src).to_string(),
        name_span: span(deco.callee),
        span: deco.span(),
        args,
    }
}
