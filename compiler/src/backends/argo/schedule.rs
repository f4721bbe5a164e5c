//! `@schedule` → a `CronWorkflow` submitting the WorkflowTemplate. AWS-style cron
//! (6 fields, `?`, days of the week 1–7 from Sunday) becomes Argo's 5-field cron.

use flowc_ir::{Schedule, ScheduleKind, Span};

use super::types::{CronWorkflow, CronWorkflowSpec, TemplateRef, WorkflowRefSpec, WORKFLOWS_API};
use super::{ArgoConfig, Identity};
use crate::diagnostics::{codes, Diagnostic};

pub(crate) fn cron_workflow(
    config: &ArgoConfig,
    ids: &Identity,
    schedule: &Schedule,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<CronWorkflow> {
    let expression = match &schedule.kind {
        ScheduleKind::Hourly => "0 * * * *".to_owned(),
        ScheduleKind::Daily => "0 0 * * *".to_owned(),
        ScheduleKind::Weekly => "0 0 * * 0".to_owned(),
        ScheduleKind::Cron(cron) => match to_argo_cron(cron) {
            Ok(expression) => expression,
            Err(reason) => {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::ARGO_BAD_SCHEDULE,
                        span,
                        format!("cron expression `{cron}` cannot run on Argo: {reason}"),
                    )
                    .with_help(
                        "write 5 fields (minute hour day month weekday), or AWS's 6 with `*` as the year",
                    ),
                );
                return None;
            }
        },
    };
    Some(CronWorkflow {
        api_version: WORKFLOWS_API.to_owned(),
        kind: "CronWorkflow".to_owned(),
        metadata: ids.metadata(&ids.template_name, config),
        spec: CronWorkflowSpec {
            schedules: vec![expression],
            timezone: schedule.timezone.clone(),
            // A run still going when the next is due is left to finish; the next waits
            // for the following slot, as Metaflow's scheduled runs behave.
            concurrency_policy: "Forbid".to_owned(),
            workflow_spec: WorkflowRefSpec {
                workflow_template_ref: TemplateRef {
                    name: ids.template_name.clone(),
                },
                arguments: None,
            },
        },
    })
}

/// An AWS-style or standard cron expression as Argo's 5 fields.
pub(crate) fn to_argo_cron(cron: &str) -> Result<String, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let (fields, aws) = match fields.len() {
        5 => (fields, false),
        6 => {
            let year = fields.get(5).copied().unwrap_or("*");
            if year != "*" && year != "?" {
                return Err(format!("Argo has no year field (`{year}`)"));
            }
            (fields[..5].to_vec(), true)
        }
        n => return Err(format!("it has {n} fields, not 5 or 6")),
    };
    let mut out = Vec::with_capacity(5);
    for (i, field) in fields.iter().enumerate() {
        if let Some(token) = field
            .split([',', '-', '/'])
            .find(|token| !is_cron_token(token))
        {
            return Err(format!(
                "`{token}` in `{field}` is not a number, `*` or a month or weekday name (Argo has no L, W or #)"
            ));
        }
        let field = if *field == "?" { "*" } else { field };
        if i == 4 && aws {
            out.push(shift_weekdays(field)?);
        } else {
            out.push(field.to_owned());
        }
    }
    Ok(out.join(" "))
}

fn is_cron_token(token: &str) -> bool {
    const NAMES: [&str; 19] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
        "MON", "TUE", "WED", "THU", "FRI", "SAT",
    ];
    token == "*"
        || token == "?"
        || (!token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()))
        || NAMES.contains(&token.to_ascii_uppercase().as_str())
}

/// AWS numbers weekdays 1 (Sunday) to 7; cron 0 (Sunday) to 6. Names stay as they are.
fn shift_weekdays(field: &str) -> Result<String, String> {
    let shift = |part: &str| -> Result<String, String> {
        if part == "*" || part.chars().all(|c| c.is_ascii_alphabetic()) {
            return Ok(part.to_owned());
        }
        match part.parse::<u8>() {
            Ok(day @ 1..=7) => Ok((day - 1).to_string()),
            _ => Err(format!("`{part}` is not a weekday (1-7 or SUN-SAT)")),
        }
    };
    field
        .split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            let range = match range.split_once('-') {
                Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
                None => shift(range)?,
            };
            Ok(match step {
                Some(step) => format!("{range}/{step}"),
                None => range,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|items| items.join(","))
}

#[cfg(test)]
mod tests {
    use super::to_argo_cron;

    #[test]
    fn aws_cron_loses_the_year_and_question_marks() {
        assert_eq!(to_argo_cron("0 6 * * ? *").unwrap(), "0 6 * * *");
        assert_eq!(to_argo_cron("15 10 ? * 2-6 *").unwrap(), "15 10 * * 1-5");
        assert_eq!(to_argo_cron("0 12 ? * 1,7 *").unwrap(), "0 12 * * 0,6");
        assert_eq!(
            to_argo_cron("0 12 ? * MON-FRI *").unwrap(),
            "0 12 * * MON-FRI"
        );
    }

    #[test]
    fn standard_cron_passes_through() {
        assert_eq!(to_argo_cron("*/5 * * * 1").unwrap(), "*/5 * * * 1");
    }

    #[test]
    fn what_argo_cannot_express_is_an_error() {
        assert!(to_argo_cron("0 6 * * ? 2027").is_err());
        assert!(to_argo_cron("0 6 L * ? *").is_err());
        assert!(to_argo_cron("0 6 * * 2#1 *").is_err());
        assert!(to_argo_cron("0 6 * *").is_err());
        assert!(to_argo_cron("0 6 * * 8 *").is_err());
    }
}
