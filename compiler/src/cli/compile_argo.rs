//! `flowc compile --target argo`: resolves the Argo settings (flags, then `FLOWC_ARGO_*`
//! environment variables, then the `[argo]` table of the nearest `flowc.toml`), builds
//! the flow's code package, and writes the documents the `argo` backend returns. The
//! image and datastore root come from the flags every target shares
//! ([`SharedArgs`]); the others from this target's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowc::backends::argo::{argo_yaml, ArgoConfig, CodePackageRef, Document};
use flowc_ir::Flow;
use serde::Deserialize;

use super::compile::SharedArgs;
use super::{report, source, Outcome, Status, Terminal};

pub(crate) const ARGO_HELP: &str = "\
Argo settings (--target argo) come from the flags (--image and --datastore-root
included), else the environment variables FLOWC_ARGO_IMAGE, FLOWC_ARGO_NAMESPACE,
FLOWC_ARGO_SERVICE_ACCOUNT, FLOWC_ARGO_DATASTORE_ROOT, FLOWC_ARGO_SHIM_IMAGE,
FLOWC_ARGO_LABELS (k=v,k=v), FLOWC_ARGO_EVENT_SOURCE and
FLOWC_ARGO_EVENT_WEBHOOK_URL, else the [argo] table of the nearest flowc.toml
(looked for in the flow file's directory and its parents):

  [argo]
  image = \"python:3.12-slim\"
  namespace = \"flows\"
  service_account = \"flowc-runner\"
  datastore_root = \"s3://bucket/flowc\"
  shim_image = \"registry.example.com/flowc-shim:0.1.0\"
  event_source = \"flowc-events\"
  event_webhook_url = \"http://flowc-events-eventsource-svc:12000/flowc\"
  labels = { team = \"ml\" }

With -o DIR, each document goes to DIR/<name>.workflow-template.yaml,
.cron-workflow.yaml or .sensor.yaml, and the code package to
DIR/<name>.code-package.tar; without it, the documents go to stdout as one
multi-document YAML stream.";

/// The flags of the Argo target alone.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Argo settings (--target argo)")]
pub(crate) struct ArgoArgs {
    /// [argo] Namespace of the documents.
    #[arg(long, value_name = "NAME")]
    namespace: Option<String>,
    /// [argo] Service account of the pods and the sensor.
    #[arg(long, value_name = "NAME")]
    service_account: Option<String>,
    /// [argo] Image holding flowc-shim at /usr/local/bin/flowc-shim.
    #[arg(long, value_name = "IMAGE")]
    shim_image: Option<String>,
    /// [argo] A label for every document and pod, repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// [argo] The Argo Events EventSource carrying flowc's events.
    #[arg(long, value_name = "NAME")]
    event_source: Option<String>,
    /// [argo] Where finished runs post their event (default: the EventSource's
    /// service, http://<event-source>-eventsource-svc:12000/flowc).
    #[arg(long, value_name = "URL")]
    event_webhook_url: Option<String>,
}

impl ArgoArgs {
    /// The first flag given, for the targets that do not take these.
    pub(crate) fn given(&self) -> Option<&'static str> {
        [
            ("--namespace", self.namespace.is_some()),
            ("--service-account", self.service_account.is_some()),
            ("--shim-image", self.shim_image.is_some()),
            ("--label", !self.labels.is_empty()),
            ("--event-source", self.event_source.is_some()),
            ("--event-webhook-url", self.event_webhook_url.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, set)| set.then_some(flag))
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The `[argo]` table of `flowc.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    image: Option<String>,
    namespace: Option<String>,
    service_account: Option<String>,
    datastore_root: Option<String>,
    shim_image: Option<String>,
    event_source: Option<String>,
    event_webhook_url: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default)]
    argo: FileSettings,
}

const DEFAULT_IMAGE: &str = "python:3.12-slim";
const DEFAULT_EVENT_SOURCE: &str = "flowc-events";

/// The nearest `flowc.toml` from `flow_file`'s directory upwards, read.
fn file_settings(flow_file: &Path) -> Result<(FileSettings, Option<PathBuf>), String> {
    let start = std::fs::canonicalize(flow_file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut dir = start.as_deref();
    while let Some(here) = dir {
        let candidate = here.join("flowc.toml");
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate)
                .map_err(|e| format!("cannot read {}: {e}", candidate.display()))?;
            let parsed: FileConfig =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", candidate.display()))?;
            return Ok((parsed.argo, Some(candidate)));
        }
        dir = here.parent();
    }
    Ok((FileSettings::default(), None))
}

/// Flag, else environment variable, else `flowc.toml`.
fn pick(
    flag: &Option<String>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &Option<String>,
) -> Option<String> {
    flag.clone()
        .or_else(|| env(var).filter(|v| !v.is_empty()))
        .or_else(|| file.clone())
}

/// Resolves the settings; `env` reads an environment variable (a parameter so that
/// tests do not touch the process environment).
fn resolve(
    shared: &SharedArgs,
    args: &ArgoArgs,
    file: FileSettings,
    env: &dyn Fn(&str) -> Option<String>,
    code_package: CodePackageRef,
) -> Result<ArgoConfig, String> {
    let datastore_root = pick(&shared.datastore_root, "FLOWC_ARGO_DATASTORE_ROOT", env, &file.datastore_root)
        .ok_or("the Argo target needs a datastore root every pod can reach: give --datastore-root, FLOWC_ARGO_DATASTORE_ROOT or datastore_root in flowc.toml's [argo]")?;
    let version = env!("CARGO_PKG_VERSION");
    let mut labels = file.labels.clone();
    if let Some(text) = env("FLOWC_ARGO_LABELS") {
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = parse_label(item).map_err(|e| format!("FLOWC_ARGO_LABELS: {e}"))?;
            labels.insert(key, value);
        }
    }
    labels.extend(args.labels.iter().cloned());
    Ok(ArgoConfig {
        image: pick(&shared.image, "FLOWC_ARGO_IMAGE", env, &file.image)
            .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        namespace: pick(
            &args.namespace,
            "FLOWC_ARGO_NAMESPACE",
            env,
            &file.namespace,
        ),
        service_account: pick(
            &args.service_account,
            "FLOWC_ARGO_SERVICE_ACCOUNT",
            env,
            &file.service_account,
        ),
        datastore_root,
        shim_image: pick(
            &args.shim_image,
            "FLOWC_ARGO_SHIM_IMAGE",
            env,
            &file.shim_image,
        )
        .unwrap_or_else(|| format!("flowc-shim:{version}")),
        labels,
        code_package,
        user: env("USER").or_else(|| env("USERNAME")),
        event_source: pick(
            &args.event_source,
            "FLOWC_ARGO_EVENT_SOURCE",
            env,
            &file.event_source,
        )
        .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned()),
        event_webhook_url: pick(
            &args.event_webhook_url,
            "FLOWC_ARGO_EVENT_WEBHOOK_URL",
            env,
            &file.event_webhook_url,
        ),
        flowc_version: version.to_owned(),
    })
}

/// Compiles `flow` (read from `flow_file`) for Argo and writes the result.
pub(crate) fn run(
    flow: &Flow,
    flow_file: &Path,
    shared: &SharedArgs,
    args: &ArgoArgs,
    output: Option<&Path>,
    warnings: String,
    terminal: &Terminal,
) -> Outcome {
    let trouble = |message: String| {
        Outcome::failure(Status::Trouble, format!("{warnings}error: {message}\n"))
    };
    let package = match flowc_shim::package::build(flow_file) {
        Ok(package) => package,
        Err(err) => return trouble(format!("cannot build the code package: {err}")),
    };
    let (file, _) = match file_settings(flow_file) {
        Ok(found) => found,
        Err(message) => return trouble(message),
    };
    let code_package = CodePackageRef {
        hash: package.hash.to_string(),
        entry: package.entry.clone(),
    };
    let config = match resolve(
        shared,
        args,
        file,
        &|name| std::env::var(name).ok(),
        code_package,
    ) {
        Ok(config) => config,
        Err(message) => return trouble(message),
    };
    let emitted = match argo_yaml(flow, &config) {
        Ok(documents) => documents,
        Err(diagnostics) => {
            let text = source::read(flow_file).map(|f| f.text).unwrap_or_default();
            let shown = flow_file.to_string_lossy();
            let rendered = report::render_text(
                &report::Source::new(&shown, &text),
                &diagnostics,
                terminal.stderr,
            );
            return Outcome::failure(Status::Failed, format!("{warnings}{rendered}"));
        }
    };
    // The backend wrote every document's YAML for its size check: write those texts.
    let mut documents = Vec::with_capacity(emitted.len());
    let mut texts = Vec::with_capacity(emitted.len());
    for (document, text) in emitted {
        match text {
            Ok(text) => texts.push(text),
            Err(err) => return trouble(format!("cannot serialise `{}`: {err}", document.name())),
        }
        documents.push(document);
    }
    let Some(dir) = output else {
        let mut stdout = String::new();
        for text in &texts {
            stdout.push_str("---\n");
            stdout.push_str(text);
        }
        return Outcome {
            stdout,
            stderr: warnings,
            status: Status::Ok,
        };
    };
    let mut written = Vec::new();
    if let Err(err) = std::fs::create_dir_all(dir) {
        return trouble(format!("cannot create `{}`: {err}", dir.display()));
    }
    for (document, text) in documents.iter().zip(&texts) {
        let path = dir.join(document.file_name());
        if let Err(err) = std::fs::write(&path, text) {
            return trouble(format!("cannot write `{}`: {err}", path.display()));
        }
        written.push(path);
    }
    let package_path = dir.join(format!("{}.code-package.tar", template_name(&documents)));
    if let Err(err) = package.write_to(&package_path) {
        return trouble(format!("cannot write `{}`: {err}", package_path.display()));
    }
    written.push(package_path);
    let mut stderr = warnings;
    for path in written {
        stderr.push_str(&format!("wrote {}\n", path.display()));
    }
    stderr.push_str(&format!(
        "code package {} (store it under the datastore root before submitting)\n",
        config.code_package.hash
    ));
    Outcome {
        stdout: String::new(),
        stderr,
        status: Status::Ok,
    }
}

fn template_name(documents: &[Document]) -> &str {
    documents.first().map_or("flow", Document::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> CodePackageRef {
        CodePackageRef {
            hash: "00".repeat(32),
            entry: "flow.py".to_owned(),
        }
    }

    #[test]
    fn flags_win_over_environment_which_wins_over_the_file() {
        let shared = SharedArgs {
            image: Some("flag-image".to_owned()),
            datastore_root: None,
        };
        let args = ArgoArgs {
            labels: vec![("team".to_owned(), "flag".to_owned())],
            ..ArgoArgs::default()
        };
        let file: FileConfig = toml::from_str(
            "[argo]\nimage = \"file-image\"\nnamespace = \"file-ns\"\nservice_account = \"file-sa\"\ndatastore_root = \"s3://file\"\nlabels = { team = \"file\", tier = \"file\" }\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "FLOWC_ARGO_IMAGE" => Some("env-image".to_owned()),
            "FLOWC_ARGO_NAMESPACE" => Some("env-ns".to_owned()),
            "FLOWC_ARGO_LABELS" => Some("tier=env".to_owned()),
            _ => None,
        };
        let config = resolve(&shared, &args, file.argo, &env, package()).unwrap();
        assert_eq!(config.image, "flag-image");
        assert_eq!(config.namespace.as_deref(), Some("env-ns"));
        assert_eq!(config.service_account.as_deref(), Some("file-sa"));
        assert_eq!(config.datastore_root, "s3://file");
        assert_eq!(config.labels["team"], "flag");
        assert_eq!(config.labels["tier"], "env");
        assert_eq!(config.event_source, DEFAULT_EVENT_SOURCE);
    }

    #[test]
    fn a_missing_datastore_root_is_explained() {
        let err = resolve(
            &SharedArgs::default(),
            &ArgoArgs::default(),
            FileSettings::default(),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("--datastore-root"), "{err}");
    }

    #[test]
    fn the_shared_flags_win_over_this_targets_variables_and_table() {
        let shared = SharedArgs {
            image: Some("flag-image".to_owned()),
            datastore_root: Some("s3://flag/root".to_owned()),
        };
        let file: FileConfig = toml::from_str(
            "[argo]\nimage = \"file-image\"\ndatastore_root = \"s3://file\"\n[sfn]\nimage = \"sfn-image\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "FLOWC_ARGO_DATASTORE_ROOT" => Some("s3://env".to_owned()),
            "FLOWC_SFN_IMAGE" => Some("sfn-env-image".to_owned()),
            _ => None,
        };
        let config = resolve(&shared, &ArgoArgs::default(), file.argo, &env, package()).unwrap();
        assert_eq!(config.image, "flag-image");
        assert_eq!(config.datastore_root, "s3://flag/root");
        // Without the flags, the Argo variable and table, never the sfn ones.
        let file: FileConfig = toml::from_str(
            "[argo]\nimage = \"file-image\"\ndatastore_root = \"s3://file\"\n[sfn]\nimage = \"sfn-image\"\n",
        )
        .unwrap();
        let config = resolve(
            &SharedArgs::default(),
            &ArgoArgs::default(),
            file.argo,
            &env,
            package(),
        )
        .unwrap();
        assert_eq!(config.image, "file-image");
        assert_eq!(config.datastore_root, "s3://env");
    }

    #[test]
    fn given_names_the_first_argo_flag_set() {
        assert_eq!(ArgoArgs::default().given(), None);
        let args = ArgoArgs {
            labels: vec![("team".to_owned(), "ml".to_owned())],
            ..ArgoArgs::default()
        };
        assert_eq!(args.given(), Some("--label"));
    }

    #[test]
    fn unknown_keys_in_flowc_toml_are_refused() {
        assert!(toml::from_str::<FileConfig>("[argo]\nimgae = \"x\"\n").is_err());
    }
}
