//! Schedules of synchronizations: `manual`, `every 5m`, `hourly`, `daily`, or a cron expression.

use std::time::Duration;

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
        let cron_chars = |f: &&str| f.chars().all(|c| c.is_ascii_alphanumeric() || "*,-/?".contains(c));
        if (5..=6).contains(&fields.len()) && fields.iter().all(cron_chars) {
            return Ok(Schedule::Cron(text.to_string()));
        }
        Err(format!("`{text}` is not a schedule: write manual, every 5m, hourly, daily, or a cron expression such as `0 3 * * *`"))
    }
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
    }
}
