//! Schedules of synchronizations: `manual`, `every 5m`, `hourly`, `daily`, or a cron expression
//! (`minute hour day-of-month month day-of-week`, or with seconds first; in UTC).
//!
//! A schedule answers one question: after the last run, when is the next one due? A run missed while
//! the service was down is due once, at start, however many were missed.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::config::de::Span;

/// When a synchronization runs by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Manual,
    Every(Duration),
    Cron(String),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        match text {
            "" | "manual" => return Ok(Schedule::Manual),
            "hourly" => return Ok(Schedule::Every(Duration::from_secs(3600))),
            "daily" => return Ok(Schedule::Every(Duration::from_secs(86400))),
            _ => {}
        }
        if let Some(every) = text.strip_prefix("every ") {
            return match Span::parse(every) {
                Some(d) if d >= Duration::from_secs(1) => Ok(Schedule::Every(d)),
                _ => Err(format!("`{text}`: write an interval of at least 1s, such as `every 5m`")),
            };
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        if (5..=6).contains(&fields.len()) {
            return Cron::parse(text).map(|_| Schedule::Cron(text.to_string()));
        }
        Err(format!("`{text}` is not a schedule: write manual, every 5m, hourly, daily, or a cron expression such as `0 3 * * *`"))
    }

    /// When the next run is due: `last` is the last run's start (`None`: never ran), `since` when the
    /// schedule started to count (the service's start). A due time in the past means now.
    pub fn next_due(&self, last: Option<DateTime<Utc>>, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Manual => None,
            // Never ran: due at once. Otherwise one interval after the last run, never several.
            Schedule::Every(interval) => Some(match last {
                None => since,
                Some(last) => last + chrono::Duration::from_std(*interval).ok()?,
            }),
            Schedule::Cron(text) => Cron::parse(text).ok()?.next_after(last.unwrap_or(since)),
        }
    }
}

/// A parsed cron expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone)]
struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Cron's rule: with both day fields restricted, a day matching either one matches.
    either_day: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            6 => (field(fields[0], 0, 59, &[]).map_err(|e| format!("`{text}`: seconds: {e}"))?, &fields[1..]),
            5 => (1, &fields[..]),
            _ => return Err(format!("`{text}`: a cron expression has 5 fields (or 6, with seconds first)")),
        };
        let at =
            |i: usize, name: &str, min, max, names: &[&str]| field(rest[i], min, max, names).map_err(|e| format!("`{text}`: {name}: {e}"));
        let mut weekdays = at(4, "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        let restricted = |f: &str| f != "*" && f != "?";
        Ok(Cron {
            seconds,
            minutes: at(0, "minute", 0, 59, &[])?,
            hours: at(1, "hour", 0, 23, &[])?,
            days: at(2, "day of month", 1, 31, &[])?,
            months: at(3, "month", 1, 12, &MONTHS)?,
            weekdays,
            either_day: restricted(rest[2]) && restricted(rest[4]),
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let day = self.days & (1 << t.day()) != 0;
        let weekday = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        if self.either_day { day || weekday } else { day && weekday }
    }

    /// The first matching second after `after`, looking up to four years ahead (29 February).
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after.with_nanosecond(0)? + chrono::Duration::seconds(1);
        let limit = after + chrono::Duration::days(4 * 366);
        while t <= limit {
            if self.months & (1 << t.month()) == 0 || !self.day_matches(&t) {
                // Skip to the next day's midnight.
                t = (t + chrono::Duration::days(1)).with_hour(0)?.with_minute(0)?.with_second(0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + chrono::Duration::hours(1)).with_minute(0)?.with_second(0)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = (t + chrono::Duration::minutes(1)).with_second(0)?;
                continue;
            }
            if self.seconds & (1 << t.second()) == 0 {
                t += chrono::Duration::seconds(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// One cron field (`*`, `5`, `1-5`, `*/15`, `mon-fri`, lists of those) as a bit set.
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Month names count from 1 (`jan`), weekday names from 0 (`sun`): each from its field's minimum.
            return Ok(i as u32 + min);
        }
        let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
        if n < min || n > max { Err(format!("{n} is outside {min}-{max}")) } else { Ok(n) }
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| format!("`{step}` is not a step"))?),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, max),
                None => (value(range)?, value(range)?),
            },
        };
        if from > to {
            return Err(format!("`{range}` runs backwards"));
        }
        for n in (from..=to).step_by(step as usize) {
            bits |= 1 << n;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(Schedule::parse("manual"), Ok(Schedule::Manual));
        assert_eq!(Schedule::parse("every 5m"), Ok(Schedule::Every(Duration::from_secs(300))));
        assert_eq!(Schedule::parse("hourly"), Ok(Schedule::Every(Duration::from_secs(3600))));
        assert!(matches!(Schedule::parse("0 3 * * *"), Ok(Schedule::Cron(_))));
        assert!(Schedule::parse("sometimes").is_err());
        assert!(Schedule::parse("every 0s").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("0 3 * * funday").is_err());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_runs() {
        let since = at("2026-11-24T10:00:00Z");
        let every = Schedule::parse("every 5m").unwrap();
        assert_eq!(every.next_due(None, since), Some(since), "never ran: due at once");
        // Down for a day: due once, right away; not 288 times.
        assert_eq!(every.next_due(Some(at("2026-11-23T10:00:00Z")), since), Some(at("2026-11-23T10:05:00Z")));
        let cron = Schedule::parse("30 3 * * mon-fri").unwrap();
        assert_eq!(cron.next_due(Some(at("2026-11-24T10:00:00Z")), since), Some(at("2026-11-25T03:30:00Z")));
        assert_eq!(cron.next_due(Some(at("2026-11-27T04:00:00Z")), since), Some(at("2026-11-30T03:30:00Z")), "friday → monday");
        let quarter = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(quarter.next_due(Some(at("2026-11-24T10:07:13Z")), since), Some(at("2026-11-24T10:15:00Z")));
        let seconds = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(seconds.next_due(Some(at("2026-11-24T10:00:01Z")), since), Some(at("2026-11-24T10:00:10Z")));
        let leap = Schedule::parse("0 0 29 feb *").unwrap();
        assert_eq!(leap.next_due(Some(at("2026-11-24T10:00:00Z")), since), Some(at("2028-02-29T00:00:00Z")));
        assert_eq!(Schedule::Manual.next_due(None, since), None);
    }
}
