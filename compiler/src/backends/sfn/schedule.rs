//! `@schedule` → an EventBridge Scheduler schedule (`CreateSchedule` request) starting
//! the state machine. EventBridge's cron has six fields (minute hour day-of-month month
//! day-of-week year, weekdays 1–7 from Sunday, one of the two day fields `?`); the
//! standard 5-field form is converted to it.

use flowc_ir::{Flow, Schedule as FlowSchedule, ScheduleKind};

use super::types::{FlexibleTimeWindow, Schedule, ScheduleTarget};
use super::{decorator_span, Identity, SfnConfig};
use crate::diagnostics::{codes, Diagnostic};

/// EventBridge Scheduler's longest schedule name.
const MAX_SCHEDULE_NAME: usize = 64;

pub(crate) fn schedule(
    flow: &Flow,
    config: &SfnConfig,
    ids: &Identity,
    schedule: &FlowSchedule,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Schedule> {
    let span = decorator_span(flow, "schedule");
    let mut report = |message: String, help: &str| {
        diagnostics.push(Diagnostic::new(&codes::BAD_SCHEDULE, span, message).with_help(help));
    };
    let expression = match &schedule.kind {
        ScheduleKind::Hourly => "cron(0 * * * ? *)".to_owned(),
        ScheduleKind::Daily => "cron(0 0 * * ? *)".to_owned(),
        ScheduleKind::Weekly => "cron(0 0 ? * 1 *)".to_owned(),
        ScheduleKind::Cron(cron) => match to_eventbridge_cron(cron) {
            Ok(fields) => format!("cron({fields})"),
            Err(reason) => {
                report(
                    format!("cron expression `{cron}` cannot run on EventBridge: {reason}"),
                    "write EventBridge's 6 fields (minute hour day month weekday year), or 5 standard ones",
                );
                return None;
            }
        },
    };
    if ids.name.len() > MAX_SCHEDULE_NAME {
        report(
            format!(
                "the schedule name `{}` is {} characters, over the {MAX_SCHEDULE_NAME} EventBridge Scheduler accepts",
                ids.name,
                ids.name.len()
            ),
            "shorten the flow class name, or the @project name and branch",
        );
        return None;
    }
    let (Some(region), Some(account), Some(role)) =
        (&config.region, &config.account, &config.schedule_role)
    else {
        report(
            format!(
                "the schedule of `{}` needs the state machine's region and account and a role for EventBridge Scheduler",
                flow.name
            ),
            "give --region, --account and --schedule-role (or FLOWC_SFN_* / [sfn] in flowc.toml)",
        );
        return None;
    };
    Some(Schedule {
        name: ids.name.clone(),
        description: format!("Runs the flow {} (flowc)", flow.name),
        schedule_expression: expression,
        schedule_expression_timezone: schedule.timezone.clone(),
        flexible_time_window: FlexibleTimeWindow {
            mode: "OFF".to_owned(),
        },
        state: "ENABLED".to_owned(),
        target: ScheduleTarget {
            arn: format!(
                "arn:aws:states:{region}:{account}:stateMachine:{}",
                ids.name
            ),
            role_arn: role.clone(),
            input: "{}".to_owned(),
        },
    })
}

/// A 5- or 6-field cron expression as EventBridge's 6 fields.
pub(crate) fn to_eventbridge_cron(cron: &str) -> Result<String, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let mut fields: Vec<String> = match fields.len() {
        6 => fields.iter().map(|f| (*f).to_owned()).collect(),
        5 => {
            // Standard cron numbers weekdays 0 (or 7) = Sunday to 6; EventBridge 1 to 7.
            let mut out: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            out[4] = shift_weekdays(fields[4])?;
            out.push("*".to_owned());
            out
        }
        n => return Err(format!("it has {n} fields, not 5 or 6")),
    };
    for field in &fields {
        if field.is_empty()
            || !field.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | ',' | '-' | '/' | '#')
            })
        {
            return Err(format!("`{field}` is not a cron field"));
        }
    }
    // EventBridge wants exactly one of day-of-month and day-of-week to be `?`.
    match (fields[2].as_str(), fields[4].as_str()) {
        ("?", "?") => return Err("day of month and day of week cannot both be `?`".to_owned()),
        ("?", _) | (_, "?") => {}
        (_, "*") => fields[4] = "?".to_owned(),
        ("*", _) => fields[2] = "?".to_owned(),
        _ => {
            return Err(
                "it sets both the day of the month and the day of the week, which EventBridge cannot combine"
                    .to_owned(),
            )
        }
    }
    Ok(fields.join(" "))
}

fn shift_weekdays(field: &str) -> Result<String, String> {
    let shift = |part: &str| -> Result<String, String> {
        if part == "*" || part == "?" || part.chars().all(|c| c.is_ascii_alphabetic()) {
            return Ok(part.to_owned());
        }
        match part.parse::<u8>() {
            Ok(day @ 0..=6) => Ok((day + 1).to_string()),
            Ok(7) => Ok("1".to_owned()),
            _ => Err(format!("`{part}` is not a day of the week")),
        }
    };
    let (range, step) = match field.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (field, None),
    };
    let mut out = Vec::new();
    for item in range.split(',') {
        let shifted = match item.split_once('-') {
            Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
            None => shift(item)?,
        };
        out.push(shifted);
    }
    let mut text = out.join(",");
    if let Some(step) = step {
        text.push('/');
        text.push_str(step);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fields_pass_through() {
        assert_eq!(to_eventbridge_cron("0 6 * * ? *").unwrap(), "0 6 * * ? *");
        assert_eq!(
            to_eventbridge_cron("0 6 ? * MON-FRI *").unwrap(),
            "0 6 ? * MON-FRI *"
        );
    }

    #[test]
    fn five_fields_gain_a_year_a_question_mark_and_shifted_weekdays() {
        assert_eq!(to_eventbridge_cron("0 6 * * *").unwrap(), "0 6 * * ? *");
        assert_eq!(to_eventbridge_cron("30 2 * * 0").unwrap(), "30 2 ? * 1 *");
        assert_eq!(to_eventbridge_cron("0 0 * * 1-5").unwrap(), "0 0 ? * 2-6 *");
        assert_eq!(to_eventbridge_cron("0 0 1 * *").unwrap(), "0 0 1 * ? *");
    }

    #[test]
    fn impossible_expressions_are_refused() {
        assert!(to_eventbridge_cron("0 0 1 * 1").is_err());
        assert!(to_eventbridge_cron("0 0 * *").is_err());
        assert!(to_eventbridge_cron("0 0 * * 9").is_err());
        assert!(to_eventbridge_cron("0 0 ? * ? *").is_err());
        assert!(to_eventbridge_cron("0 0 * * \"x\" *").is_err());
    }
}
