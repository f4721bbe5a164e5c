//! `@pypi` / `@conda` on steps over `@pypi_base` / `@conda_base` on the flow, merged
//! as Metaflow does: packages merged with the step's winning, `python` from the step
//! else the flow, `disabled` from the step when written else the flow. Metaflow cannot
//! mix PyPI and Conda packages in one environment, so both at once is an error.

use flowc_ir::{PythonEnv, PythonEnvManager};

use super::check::{bad_value, Checked};
use super::step::{manager_of, python_env_of};
use crate::diagnostics::Diagnostic;

/// The flow's base environment from `@pypi_base` / `@conda_base`.
pub(super) fn for_flow(
    pypi_base: Option<&Checked<'_>>,
    conda_base: Option<&Checked<'_>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<PythonEnv> {
    let pypi = pypi_base.map(python_env_of);
    let conda = conda_base.map(python_env_of);
    if let (Some(p), Some(c), Some(pd), Some(cd)) = (&pypi, &conda, pypi_base, conda_base) {
        if !p.packages.is_empty() && !c.packages.is_empty() {
            diagnostics.push(mixing(cd, Some(pd.raw.span)));
        }
    }
    choose(pypi, conda)
}

/// One step's environment. A base environment applies to every step, as Metaflow
/// attaches the matching step decorator to each one.
pub(super) fn for_step(
    pypi: Option<&Checked<'_>>,
    conda: Option<&Checked<'_>>,
    base: Option<&PythonEnv>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<PythonEnv> {
    if pypi.is_none() && conda.is_none() {
        return base.cloned();
    }
    let side = |manager: PythonEnvManager, step: Option<&Checked<'_>>| {
        let base = base.filter(|b| b.manager == manager);
        if step.is_none() && base.is_none() {
            return None;
        }
        Some(merge(manager, base, step))
    };
    let pypi_env = side(PythonEnvManager::Pypi, pypi);
    let conda_env = side(PythonEnvManager::Conda, conda);
    if let (Some(p), Some(c)) = (&pypi_env, &conda_env) {
        if !p.packages.is_empty() && !c.packages.is_empty() {
            // Point at the step decorator that brings the second set of packages.
            let (at, other) = match (pypi, conda) {
                (Some(p), Some(c)) => (c, Some(p.raw.span)),
                (Some(p), None) => (p, None),
                (None, Some(c)) => (c, None),
                (None, None) => return choose(pypi_env, conda_env),
            };
            let mut d = mixing(at, other);
            if other.is_none() {
                d = d.with_help(format!(
                    "the flow's `@{}` packages apply to every step; use the same manager on the step",
                    if at.name() == "pypi" { "conda_base" } else { "pypi_base" }
                ));
            }
            diagnostics.push(d);
        }
    }
    choose(pypi_env, conda_env)
}

fn merge(
    manager: PythonEnvManager,
    base: Option<&PythonEnv>,
    step: Option<&Checked<'_>>,
) -> PythonEnv {
    let mut packages = base.map(|b| b.packages.clone()).unwrap_or_default();
    let own = step.map(python_env_of);
    if let Some(own) = &own {
        packages.extend(own.packages.clone());
    }
    PythonEnv {
        manager,
        packages,
        python: own
            .as_ref()
            .and_then(|o| o.python.clone())
            .or_else(|| base.and_then(|b| b.python.clone())),
        disabled: step
            .and_then(|s| s.explicit_flag("disabled"))
            .unwrap_or_else(|| base.is_some_and(|b| b.disabled)),
    }
}

/// The environment that holds the packages (PyPI when both or neither do), with the
/// other's `python` as a fallback, as Metaflow resolves the interpreter.
fn choose(pypi: Option<PythonEnv>, conda: Option<PythonEnv>) -> Option<PythonEnv> {
    match (pypi, conda) {
        (Some(p), Some(c)) => {
            let (mut chosen, other) = if p.packages.is_empty() && !c.packages.is_empty() {
                (c, p)
            } else {
                (p, c)
            };
            if chosen.python.is_none() {
                chosen.python = other.python;
            }
            chosen.disabled |= other.disabled;
            Some(chosen)
        }
        (p, c) => p.or(c),
    }
}

fn mixing(at: &Checked<'_>, other: Option<flowc_ir::Span>) -> Diagnostic {
    let other_manager = match manager_of(at.name()) {
        PythonEnvManager::Pypi => "Conda",
        PythonEnvManager::Conda => "PyPI",
    };
    let d = bad_value(
        at,
        "packages",
        format!("`@{}` packages cannot be mixed with {other_manager} packages", at.name()),
    )
    .with_label("second package manager")
    .with_help("Metaflow builds one environment per step from either PyPI or Conda; list every package with one of them");
    match other {
        Some(span) => d.with_related(span, "the other package list"),
        None => d,
    }
}
