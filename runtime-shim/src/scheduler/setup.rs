//! What a run prepares once, before its first task: the real Python interpreter, the
//! flow's code package, and the warm interpreter (zygote) every task forks from.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::package;
use crate::store::{BlobStore, CodePackageRef, FlowName, LocalStore};
use crate::task::zygote::{Zygote, ZygoteConfig};
use crate::task::{PythonCommand, PYTHON_ENV_VAR};

/// Asks the interpreter the tasks would start (`configured`, else `$FLOWC_PYTHON`,
/// else `python3`) for its real path. A wrapper such as a pyenv shim is a shell
/// script that starts several processes (about 0.4 s) before Python runs: resolving it
/// once per run, here, spares every task that cost.
pub(crate) fn resolve_python(configured: Option<&OsStr>) -> Result<OsString, String> {
    let interpreter = configured
        .filter(|name| !name.is_empty())
        .map_or_else(PythonCommand::interpreter_from_env, OsStr::to_owned);
    let output = Command::new(&interpreter)
        .args(["-c", "import sys; sys.stdout.write(sys.executable or '')"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| {
            format!(
                "cannot start the Python interpreter `{}`: {err} (choose another with --python \
                 or {PYTHON_ENV_VAR})",
                interpreter.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "the Python interpreter `{}` failed to start ({}); choose another with --python \
             or {PYTHON_ENV_VAR}",
            interpreter.to_string_lossy(),
            output.status
        ));
    }
    let real = String::from_utf8(output.stdout).unwrap_or_default();
    let real = real.trim();
    // An embedded interpreter may not know its path; the name that worked still works.
    if real.is_empty() || !Path::new(real).is_absolute() {
        return Ok(interpreter);
    }
    Ok(OsString::from(real))
}

/// The code package a run's tasks run from.
pub(crate) struct RunPackage {
    pub(crate) reference: CodePackageRef,
    /// The flow file inside the unpacked package: the very file every task runs, so
    /// the zygote preloads it.
    pub(crate) flow_file: PathBuf,
}

/// Builds the flow's code package, stores it as a blob of `flow` and unpacks it into
/// the datastore's code cache (where the tasks would unpack it). Files of an included
/// type that were left out are listed on stderr, so a missing helper module is no
/// surprise when a task imports it.
pub(crate) fn code_package(
    store: &LocalStore,
    flow: &FlowName,
    flow_file: &Path,
) -> Result<RunPackage, String> {
    let built = package::build(flow_file).map_err(|err| format!("code package: {err}"))?;
    for skipped in &built.skipped {
        super::engine::say(&format!(
            "flowc: left `{}` out of the code package: {}",
            skipped.path, skipped.reason
        ));
    }
    store
        .put(flow, &built.bytes)
        .map_err(|err| format!("cannot store the code package: {err}"))?;
    let cache = package::cache_root(store.root());
    let dir = package::unpack(&built.bytes, &built.hash, &cache)
        .map_err(|err| format!("cannot unpack the code package: {err}"))?;
    let unpacked = package::entry_path(&dir, &built.hash, &built.entry)
        .map_err(|err| format!("code package: {err}"))?;
    Ok(RunPackage {
        reference: CodePackageRef {
            hash: built.hash,
            entry: built.entry,
        },
        flow_file: unpacked,
    })
}

/// Starts the run's zygote, preloading the packaged flow file with `python`. A zygote
/// that cannot start costs one line on stderr: the tasks then start Python themselves.
pub(crate) fn start_zygote(python: &OsStr, flow_file: &Path) -> Option<Zygote> {
    let config = ZygoteConfig {
        python: Some(python.to_owned()),
        flow_file: Some(flow_file.to_path_buf()),
        preload_flow: true,
        ..ZygoteConfig::default()
    };
    match Zygote::start(&config) {
        Ok(zygote) => Some(zygote),
        Err(err) => {
            super::engine::say(&format!(
                "flowc: warm interpreter unavailable ({err}); every task starts Python itself"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interpreter_is_named_with_advice() {
        let err = resolve_python(Some(OsStr::new("/nonexistent/python-flowc"))).unwrap_err();
        assert!(err.contains("/nonexistent/python-flowc"), "{err}");
        assert!(err.contains("--python"), "{err}");
    }

    #[test]
    fn an_interpreter_that_fails_is_refused() {
        // `false` starts and exits 1 whatever its arguments: not a Python interpreter.
        let err = resolve_python(Some(OsStr::new("false"))).unwrap_err();
        assert!(err.contains("failed to start"), "{err}");
    }
}
