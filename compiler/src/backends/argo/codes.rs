//! Diagnostic codes of the Argo target.
//!
//! They belong in the registry (`diagnostics::codes`), as a `flowc::argo::*` section.
//! They are kept here until the registry's completeness test can tell codes that only a
//! backend reports (and no `flowc check` fixture can exercise) from the checker's own.

use crate::diagnostics::{Code, Severity};

pub(crate) const NAME_TOO_LONG: Code = Code {
    name: "flowc::argo::name-too-long",
    severity: Severity::Error,
    summary: "a Kubernetes name made from the flow is over 63 characters",
};
pub(crate) const CRON_NAME_TOO_LONG: Code = Code {
    name: "flowc::argo::cron-name-too-long",
    severity: Severity::Error,
    summary: "a CronWorkflow name is over 52 characters (Argo appends a timestamp)",
};
pub(crate) const DOCUMENT_TOO_LARGE: Code = Code {
    name: "flowc::argo::document-too-large",
    severity: Severity::Error,
    summary: "a document is over the 1 MB Kubernetes keeps for one object",
};
pub(crate) const DEFAULT_TOO_LARGE: Code = Code {
    name: "flowc::argo::parameter-default-too-large",
    severity: Severity::Error,
    summary: "a parameter default is over 256 KB, too large for a workflow argument",
};
pub(crate) const UNSUPPORTED_GRAPH: Code = Code {
    name: "flowc::argo::unsupported-graph",
    severity: Severity::Error,
    summary: "a graph shape the Argo target cannot express yet",
};
pub(crate) const BAD_SCHEDULE: Code = Code {
    name: "flowc::argo::bad-schedule",
    severity: Severity::Error,
    summary: "a @schedule cron expression Argo's 5-field cron cannot express",
};
pub(crate) const INVALID_NAME: Code = Code {
    name: "flowc::argo::invalid-name",
    severity: Severity::Error,
    summary: "a name given to Kubernetes (secret, label) that Kubernetes rejects",
};
