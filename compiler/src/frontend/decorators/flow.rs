//! Flow decorators → `FlowSpecView`: `@schedule`, `@project`, `@trigger`,
//! `@trigger_on_finish`, `@pypi_base` / `@conda_base`, with the rules Metaflow applies
//! to each when the flow is deployed.

use std::collections::{BTreeMap, BTreeSet};

use flowc_ir::{
    EventTrigger, FlowRef, FlowSpecView, Project, Schedule, ScheduleKind, Trigger, TriggerOnFinish,
    Value,
};

use super::check::{bad_value, show, Checked};
use super::python_env;
use crate::diagnostics::{codes, Diagnostic};

/// Metaflow's limit on `@project` names and branches.
const PROJECT_NAME_MAX: usize = 128;

pub(super) fn lower(checked: &[Checked<'_>], diagnostics: &mut Vec<Diagnostic>) -> FlowSpecView {
    let find = |name: &str| checked.iter().find(|c| c.name() == name);
    exit_hooks(checked, diagnostics);
    FlowSpecView {
        schedule: find("schedule").and_then(|c| schedule(c, diagnostics)),
        triggers: find("trigger")
            .and_then(|c| trigger(c, diagnostics))
            .into_iter()
            .collect(),
        trigger_on_finish: find("trigger_on_finish")
            .and_then(|c| trigger_on_finish(c, diagnostics))
            .into_iter()
            .collect(),
        project: find("project").and_then(|c| project(c, diagnostics)),
        python_env: python_env::for_flow(find("pypi_base"), find("conda_base"), diagnostics),
        // Metaflow 2.19 has no flow-level `@secrets`; the table reports it as misplaced.
        secrets: None,
    }
}

/// The schedule as Metaflow picks it: `cron`, else `weekly`, else `hourly`, else
/// `daily` (on by default). All flags off means no schedule at all. A flag set to
/// `True` that this order overrides is an error: the user asked for two schedules.
fn schedule(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Schedule> {
    if c.dropped("cron") {
        // A cron expression flowc cannot read: inventing the daily default would
        // schedule the flow at the wrong time, so the view says nothing.
        return None;
    }
    let cron = c.string("cron").filter(|s| !s.trim().is_empty());
    if let Some(expr) = &cron {
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            diagnostics.push(
                bad_value(
                    c,
                    "cron",
                    format!("`@schedule(cron=...)` has {fields} fields, expected 5 or 6"),
                )
                .with_label("not a cron expression")
                .with_help(
                    "write minutes, hours, day of month, month, day of week (and, for AWS, year), \
                         e.g. `cron=\"0 6 * * ? *\"`",
                ),
            );
        }
    }
    let order = [
        ("cron", cron.is_some()),
        ("weekly", c.flag("weekly")),
        ("hourly", c.flag("hourly")),
        ("daily", c.flag("daily")),
    ];
    let chosen = order.iter().find(|(_, on)| *on).map(|(name, _)| *name);
    if let Some(chosen) = chosen {
        for (name, _) in order.iter().skip_while(|(n, _)| *n != chosen).skip(1) {
            if c.value(name).and_then(Value::as_bool) == Some(true) {
                diagnostics.push(
                    bad_value(
                        c,
                        name,
                        format!("`@schedule({name}=True)` is ignored because `{chosen}` is given"),
                    )
                    .with_label("overridden")
                    .with_related(c.span(chosen), "this schedule wins")
                    .with_help(format!(
                        "keep only one schedule: remove `{name}=True` or `{chosen}`"
                    )),
                );
            }
        }
    }
    let kind = match chosen? {
        "cron" => ScheduleKind::Cron(cron?.trim().to_owned()),
        "weekly" => ScheduleKind::Weekly,
        "hourly" => ScheduleKind::Hourly,
        _ => ScheduleKind::Daily,
    };
    Some(Schedule {
        kind,
        timezone: c.string("timezone"),
    })
}

/// Metaflow's rule for project and branch names.
fn is_project_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn project(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Project> {
    let name = c.string("name").filter(|n| !n.is_empty());
    let Some(name) = name else {
        if !c.dropped("name") {
            diagnostics.push(
                bad_value(c, "name", "`@project` needs a name")
                    .with_label("no project name")
                    .with_help("give it one, e.g. `@project(name=\"fraud_detection\")`"),
            );
        }
        return None;
    };
    let mut ok = check_project_name(c, "name", &name, diagnostics);
    let branch = c.string("branch").filter(|b| !b.is_empty());
    if let Some(branch) = &branch {
        ok &= check_project_name(c, "branch", branch, diagnostics);
    }
    ok.then(|| Project {
        name,
        branch,
        production: c.flag("production"),
    })
}

fn check_project_name(
    c: &Checked<'_>,
    attr: &str,
    value: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    if !is_project_name(value) {
        let suggestion: String = value
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() {
                    ch.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        diagnostics.push(
            bad_value(c, attr, format!("`@project({attr}=...)` must use lowercase letters, digits and `_`, got `{value}`"))
                .with_label("invalid character")
                .with_help(format!("e.g. `{attr}=\"{suggestion}\"`")),
        );
        return false;
    }
    if value.len() > PROJECT_NAME_MAX {
        diagnostics.push(
            bad_value(
                c,
                attr,
                format!("`@project({attr}=...)` is {} characters long", value.len()),
            )
            .with_label("too long")
            .with_help(format!(
                "Metaflow allows at most {PROJECT_NAME_MAX} characters"
            )),
        );
        return false;
    }
    true
}

/// Exactly one of two alternative attributes (`event`/`events`, `flow`/`flows`) must
/// be given; returns the items to read, or `None` after reporting.
fn one_of<'a>(
    c: &Checked<'a>,
    single: &str,
    plural: &str,
    example: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Vec<&'a Value>> {
    let truthy = |v: Option<&'a Value>| {
        v.filter(|v| {
            !matches!(v, Value::Str(s) if s.is_empty())
                && !matches!(v, Value::List(l) if l.is_empty())
                && !matches!(v, Value::Dict(d) if d.is_empty())
        })
    };
    match (truthy(c.value(single)), truthy(c.value(plural))) {
        (Some(_), Some(_)) => {
            diagnostics.push(
                bad_value(
                    c,
                    plural,
                    format!("`@{}` takes `{single}` or `{plural}`, not both", c.name()),
                )
                .with_label("second list")
                .with_related(c.span(single), format!("`{single}` given here"))
                .with_help(format!("put every item in `{plural}=[...]`")),
            );
            None
        }
        (Some(one), None) => Some(vec![one]),
        (None, Some(Value::List(items))) => Some(items.iter().collect()),
        (None, _) => {
            if !c.dropped(single) && !c.dropped(plural) {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::DECORATOR_BAD_VALUE,
                        c.raw.span,
                        format!("`@{}` names nothing", c.name()),
                    )
                    .with_label(format!("no `{single}` or `{plural}`"))
                    .with_help(format!("e.g. `@{}({example})`", c.name())),
                );
            }
            None
        }
    }
}

fn trigger(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Trigger> {
    let items = one_of(c, "event", "events", "event=\"data_updated\"", diagnostics)?;
    let attr = if c.value("event").is_some() {
        "event"
    } else {
        "events"
    };
    let mut events = Vec::new();
    let mut names = BTreeSet::new();
    for item in items {
        let Some(event) = event(c, attr, item, diagnostics) else {
            continue;
        };
        if !names.insert(event.name.clone()) {
            diagnostics.push(
                bad_value(
                    c,
                    attr,
                    format!("`@trigger` names event `{}` twice", event.name),
                )
                .with_label("repeated event")
                .with_help("list each event once"),
            );
            continue;
        }
        events.push(event);
    }
    Some(Trigger {
        events,
        options: c.map("options"),
    })
}

fn event(
    c: &Checked<'_>,
    attr: &str,
    item: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<EventTrigger> {
    let fields = match item {
        Value::Str(name) => {
            return Some(EventTrigger {
                name: name.clone(),
                parameters: BTreeMap::new(),
            })
        }
        Value::Dict(fields) => fields,
        // Unevaluated items were reported when the arguments were checked.
        _ => return None,
    };
    let name = match fields.get("name") {
        Some(Value::Str(name)) => name.clone(),
        Some(Value::Deferred { .. }) => return None,
        Some(other) => {
            diagnostics.push(
                bad_value(
                    c,
                    attr,
                    format!(
                        "`@trigger({attr}=...)`: the event name must be a string, got `{}`",
                        show(other)
                    ),
                )
                .with_label("event name not a string"),
            );
            return None;
        }
        None => {
            diagnostics.push(
                bad_value(
                    c,
                    attr,
                    format!("`@trigger({attr}=...)`: an event dict needs a `name`"),
                )
                .with_label("no `name`")
                .with_help(
                    "e.g. `{\"name\": \"data_updated\", \"parameters\": {\"day\": \"date\"}}`",
                ),
            );
            return None;
        }
    };
    let mut parameters = BTreeMap::new();
    let bad = |what: String, diagnostics: &mut Vec<Diagnostic>| {
        diagnostics.push(
            bad_value(
                c,
                attr,
                format!("`@trigger({attr}=...)`: parameters of event `{name}` {what}"),
            )
            .with_label("invalid parameter mapping")
            .with_help(
                "map flow parameters to event fields with a dict `{\"param\": \"field\"}`, \
                     or list names (and `(param, field)` pairs) in a list",
            ),
        );
    };
    match fields.get("parameters") {
        None | Some(Value::None) | Some(Value::Deferred { .. }) => {}
        Some(Value::Dict(map)) => {
            for (param, field) in map {
                match field {
                    Value::Str(field) => {
                        parameters.insert(param.clone(), field.clone());
                    }
                    Value::Deferred { .. } => {}
                    other => bad(
                        format!("map `{param}` to `{}`, not a field name", show(other)),
                        diagnostics,
                    ),
                }
            }
        }
        Some(Value::List(items)) => {
            for entry in items {
                match entry {
                    // A bare name means the event field has the parameter's name.
                    Value::Str(param) => {
                        parameters.insert(param.clone(), param.clone());
                    }
                    Value::List(pair) => match pair.as_slice() {
                        [Value::Str(param), Value::Str(field)] => {
                            parameters.insert(param.clone(), field.clone());
                        }
                        _ => bad(
                            format!("contain `{}`, not a (param, field) pair", show(entry)),
                            diagnostics,
                        ),
                    },
                    Value::Deferred { .. } => {}
                    other => bad(
                        format!("contain `{}`, not a name", show(other)),
                        diagnostics,
                    ),
                }
            }
        }
        Some(other) => bad(
            format!("are `{}`, not a dict or a list", show(other)),
            diagnostics,
        ),
    }
    Some(EventTrigger { name, parameters })
}

fn trigger_on_finish(
    c: &Checked<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<TriggerOnFinish> {
    let items = one_of(c, "flow", "flows", "flow=\"TrainFlow\"", diagnostics)?;
    let attr = if c.value("flow").is_some() {
        "flow"
    } else {
        "flows"
    };
    let flows = items
        .into_iter()
        .filter_map(|item| match flow_ref(item) {
            Ok(flow) => flow,
            Err(problem) => {
                diagnostics.push(
                    bad_value(
                        c,
                        attr,
                        format!("`@trigger_on_finish({attr}=...)`: {problem}"),
                    )
                    .with_label("invalid flow reference")
                    .with_help(
                        "write `\"FlowName\"`, `\"project.branch.FlowName\"` or \
                             `{\"name\": \"FlowName\", \"project\": ..., \"project_branch\": ...}`",
                    ),
                );
                None
            }
        })
        .collect();
    Some(TriggerOnFinish {
        flows,
        options: c.map("options"),
    })
}

/// One flow named by `@trigger_on_finish`: `"Flow"`, `"project.branch.Flow"` (the
/// branch may itself hold dots, e.g. `user.alice`), or `{"name", "project",
/// "project_branch"}`. `Ok(None)` for an item that could not be evaluated.
fn flow_ref(item: &Value) -> Result<Option<FlowRef>, String> {
    let flow = match item {
        Value::Str(fq) => match fq.matches('.').count() {
            0 => FlowRef {
                name: fq.clone(),
                ..FlowRef::default()
            },
            1 => {
                return Err(format!(
                    "`{fq}` is neither a flow name nor project.branch.FlowName"
                ))
            }
            _ => {
                let (project, tail) = fq.split_once('.').unwrap_or_default();
                let (branch, name) = tail.rsplit_once('.').unwrap_or_default();
                FlowRef {
                    name: name.to_owned(),
                    project: Some(project.to_owned()),
                    branch: Some(branch.to_owned()),
                }
            }
        },
        Value::Dict(fields) => {
            let text = |key: &str| -> Result<Option<String>, String> {
                match fields.get(key) {
                    None | Some(Value::None) => Ok(None),
                    Some(Value::Str(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(format!("`{key}` must be a string, got `{}`", show(other))),
                }
            };
            if fields.values().any(Value::is_deferred) {
                return Ok(None);
            }
            let Some(name) = text("name")? else {
                return Err("a flow dict needs a `name`".to_owned());
            };
            if name.contains('.') {
                return Err(format!(
                    "`name` is the bare flow name, got `{name}`; put the project and branch in their own keys"
                ));
            }
            FlowRef {
                name,
                project: text("project")?,
                branch: text("project_branch")?,
            }
        }
        _ => return Ok(None),
    };
    if flow.name.is_empty()
        || !flow
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "`{}` is not a flow name (letters, digits and `_` only)",
            flow.name
        ));
    }
    Ok(Some(flow))
}

/// `@exit_hook` needs at least one hook; Metaflow refuses it otherwise.
fn exit_hooks(checked: &[Checked<'_>], diagnostics: &mut Vec<Diagnostic>) {
    for c in checked.iter().filter(|c| c.name() == "exit_hook") {
        let empty = |name: &str| {
            !c.dropped(name) && !matches!(c.value(name), Some(Value::List(l)) if !l.is_empty())
        };
        if empty("on_success") && empty("on_error") {
            diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_BAD_VALUE,
                    c.raw.span,
                    "`@exit_hook` has no hook",
                )
                .with_label("no `on_success` or `on_error`")
                .with_help("e.g. `@exit_hook(on_error=[notify])`"),
            );
        }
    }
}
