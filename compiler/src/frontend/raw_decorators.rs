//! Decorator expressions as written (`@name`, `@mod.name(...)`) → `RawDecorator`s with
//! their arguments statically evaluated, for `decorators` to interpret.

use super::decorators::{RawArg, RawDecorator};
use super::eval::{Evaluator, Scope};
use super::imports::Imports;
use super::syntax::{span, text, Argument, DecoratorExpr};
use tree_sitter::Node;

/// Lower one decorator. `class` is the scope it is evaluated in: the class body for
/// step decorators (Python evaluates them there), none for flow decorators.
pub(crate) fn raw_decorator<'t>(
    deco: &DecoratorExpr<'t>,
    src: &str,
    imports: &Imports,
    eval: &Evaluator<'t, '_>,
    class: Option<&Scope<'t>>,
) -> RawDecorator {
    let arg = |name: Option<String>, whole: Node<'t>, value: Node<'t>| {
        let value = eval.eval(value, class);
        RawArg {
            name,
            span: span(whole),
            too_deep: eval.too_deep_in(&value),
            value,
        }
    };
    let args = deco
        .call
        .map(|call| {
            call.arguments()
                .into_iter()
                .map(|a| match a {
                    Argument::Positional(value) => arg(None, value, value),
                    Argument::Keyword { node, name, value } => {
                        arg(Some(text(name, src).to_string()), node, value)
                    }
                    // `*args` / `**kwargs`: nothing to read statically; kept as a
                    // positional deferred value so the table reports it.
                    Argument::Splat(node) => arg(None, node, node),
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
