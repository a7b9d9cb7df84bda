//! Dates as Twig and PHP read and write them: the `date` filter and function with PHP's format letters
//! (`{{ "now"|date("Y-m-d H:i:s") }}` works verbatim), `date_modify`, what `strtotime` reads, named
//! and fixed time zones; and OpenConnector's `slugify`.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

/// OpenConnector's slugify: lowercase, spaces and `_` to `-`, only `[a-z0-9-]`, no repeated or
/// surrounding `-`.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        let c = if c == ' ' || c == '_' { '-' } else { c };
        if c.is_ascii_lowercase() || c.is_ascii_digit() || (c == '-' && !out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

/// Twig's `date(format = "F j, Y H:i", timezone = UTC)`; a `false` timezone keeps the date's own.
pub fn date_filter(value: Value, format: Option<Value>, timezone: Option<Value>) -> Result<String, Error> {
    let format = format.filter(|v| !v.is_none() && !v.is_undefined()).map(|v| v.to_string());
    let keep_own = timezone.as_ref().is_some_and(|t| t.kind() == minijinja::value::ValueKind::Bool && !t.is_true());
    let (instant, own) = moment(&value)?;
    let zone = if keep_own { own } else { zone(timezone.filter(|t| !t.is_none() && !t.is_undefined()).map(|t| t.to_string()).as_deref())? };
    Ok(format_php(&zone.at(instant), format.as_deref().unwrap_or("F j, Y H:i"), &zone))
}

fn zone(name: Option<&str>) -> Result<Zone, Error> {
    let name = name.unwrap_or("UTC");
    Zone::named(name).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("date: unknown timezone `{name}`")))
}

/// A DateTime, as Twig's `date()` function and `date_modify` filter give one: a moment in a zone. Like
/// PHP's, it cannot be printed; the `date` filter formats it.
#[derive(Debug)]
pub struct Moment {
    at: DateTime<Utc>,
    zone: Zone,
}

impl minijinja::value::Object for Moment {}

/// A value as a moment and the zone it carries: a DateTime, a Unix timestamp, null or '' for now, or
/// a date as `strtotime` reads it (in UTC, unless it says its offset).
fn moment(value: &Value) -> Result<(DateTime<Utc>, Zone), Error> {
    if let Some(moment) = value.downcast_object_ref::<Moment>() {
        return Ok((moment.at, moment.zone.clone()));
    }
    let utc = utc_zone();
    let instant = if let Some(n) = value.as_i64() {
        DateTime::from_timestamp(n, 0)
    } else if value.is_none() || value.is_undefined() || value.as_str() == Some("") {
        Some(Utc::now())
    } else {
        let text = value.to_string();
        let parsed = parse_date(&text, &utc, Utc::now());
        // A date that says its offset keeps it as its zone.
        if let (Some(at), Ok(with_offset)) = (parsed, DateTime::parse_from_rfc3339(text.trim())) {
            let name = with_offset.format("%:z").to_string();
            return Ok((at, Zone::named(&name).unwrap_or(utc)));
        }
        parsed
    };
    let instant = instant.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("Failed to parse time string ({value})")))?;
    Ok((instant, utc))
}

/// The instant of a DateTime value (`date()`, `date_modify`), which PHP compares by time.
pub fn instant_of(value: &Value) -> Option<DateTime<Utc>> {
    value.downcast_object_ref::<Moment>().map(|m| m.at)
}

/// A method of a DateTime that a mapping may call: `format`, `getTimestamp`, `modify`; `None` for
/// a value that is no DateTime.
pub fn call_method(value: &Value, name: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    let moment = value.downcast_object_ref::<Moment>()?;
    let arg = |i: usize| args.get(i).map(Value::to_string).unwrap_or_default();
    Some(match name {
        "format" => Ok(Value::from(format_php(&moment.zone.at(moment.at), &arg(0), &moment.zone))),
        "getTimestamp" => Ok(Value::from(moment.at.timestamp())),
        "modify" => date_modify(value.clone(), arg(0)),
        other => Err(Error::new(ErrorKind::InvalidOperation, format!("Call to undefined method DateTime::{other}()"))),
    })
}

/// Twig's `date_modify(modifier)`: the moment moved as `strtotime` reads the modifier.
pub fn date_modify(value: Value, modifier: String) -> Result<Value, Error> {
    let (at, zone) = moment(&value)?;
    let moved = parse_date(&modifier, &zone, at)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("Failed to parse time string ({modifier})")))?;
    Ok(Value::from_object(Moment { at: moved, zone }))
}

/// Twig's `date(date = "now", timezone = null)` function: the moment (read in UTC), shown in `timezone`.
pub fn date_function(value: Option<Value>, timezone: Option<String>) -> Result<Value, Error> {
    let (at, own) = moment(&value.unwrap_or(Value::from(())))?;
    let zone = match timezone {
        Some(name) => zone(Some(&name))?,
        None => own,
    };
    Ok(Value::from_object(Moment { at, zone }))
}

/// A timezone: UTC, a fixed offset or an IANA name.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: Option<chrono_tz::Tz>,
    fixed: FixedOffset,
    name: String,
}

impl Zone {
    pub fn named(name: &str) -> Option<Zone> {
        if name.eq_ignore_ascii_case("UTC") || name == "Z" {
            return Some(Zone { tz: None, fixed: FixedOffset::east_opt(0)?, name: "UTC".into() });
        }
        if let Some(fixed) = parse_offset(name) {
            return Some(Zone { tz: None, fixed, name: name.to_string() });
        }
        let tz: chrono_tz::Tz = name.parse().ok()?;
        Some(Zone { tz: Some(tz), fixed: FixedOffset::east_opt(0)?, name: name.to_string() })
    }

    fn at(&self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self.tz {
            Some(tz) => instant.with_timezone(&tz).fixed_offset(),
            None => instant.with_timezone(&self.fixed),
        }
    }

    fn abbreviation(&self, at: &DateTime<FixedOffset>) -> String {
        match self.tz {
            Some(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).to_string(),
            None if self.fixed.local_minus_utc() == 0 => "UTC".into(),
            None => at.format("%:z").to_string(),
        }
    }

    /// Reads a wall-clock time in this zone.
    fn local(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz {
            Some(tz) => tz.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc)),
            None => self.fixed.from_local_datetime(&naive).single().map(|d| d.with_timezone(&Utc)),
        }
    }
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 4 || rest.len() > 5 {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Reads what PHP's `strtotime` reads most often: `now`, `today`, `tomorrow`, `yesterday`, relative
/// `+1 day` / `-2 weeks`, unix timestamps, ISO 8601 / RFC 3339, `Y-m-d`, `Y-m-d H:i:s` and RFC 2822.
pub fn parse_date(text: &str, zone: &Zone, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let midnight = |day: DateTime<Utc>| zone.local(zone.at(day).date_naive().and_hms_opt(0, 0, 0)?);
    match lower.as_str() {
        "" | "now" => return Some(now),
        "today" | "midnight" => return midnight(now),
        "tomorrow" => return midnight(now + Duration::days(1)),
        "yesterday" => return midnight(now - Duration::days(1)),
        _ => {}
    }
    if let Some(rest) = lower.strip_prefix('@').or_else(|| lower.chars().all(|c| c.is_ascii_digit()).then_some(lower.as_str()))
        && let Ok(seconds) = rest.parse::<i64>()
    {
        return DateTime::from_timestamp(seconds, 0);
    }
    if let Some(relative) = parse_relative(lower.strip_prefix("now").unwrap_or(&lower), now) {
        return Some(relative);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(text) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S %z"] {
        if let Ok(d) = DateTime::parse_from_str(text, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d-%m-%Y %H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return zone.local(naive);
        }
    }
    for format in ["%Y-%m-%d", "%d-%m-%Y", "%Y/%m/%d", "%m/%d/%Y"] {
        if let Ok(date) = NaiveDate::parse_from_str(text, format) {
            return zone.local(date.and_hms_opt(0, 0, 0)?);
        }
    }
    None
}

/// `+1 day`, `-3 hours`, `+2 weeks 1 day`.
fn parse_relative(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return None;
    }
    let mut at = now;
    for pair in words.chunks(2) {
        let amount: i64 = pair[0].trim_start_matches('+').parse().ok()?;
        let unit = pair[1].trim_end_matches('s');
        at = match unit {
            "sec" | "second" => at + Duration::seconds(amount),
            "min" | "minute" => at + Duration::minutes(amount),
            "hour" => at + Duration::hours(amount),
            "day" => at + Duration::days(amount),
            "week" => at + Duration::weeks(amount),
            "month" => add_months(at, amount)?,
            "year" => add_months(at, amount * 12)?,
            _ => return None,
        };
    }
    Some(at)
}

/// PHP's month arithmetic: the day of the month is kept, and a day the new month does not have runs
/// over into the next (`2024-01-31 +1 month` is `2024-03-02`).
fn add_months(at: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let total = i64::from(at.year()) * 12 + i64::from(at.month0()) + months;
    let (year, month) = (i32::try_from(total.div_euclid(12)).ok()?, total.rem_euclid(12) as u32 + 1);
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let date = first.checked_add_signed(Duration::days(i64::from(at.day()) - 1))?;
    Some(date.and_time(at.time()).and_utc())
}

const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/// Formats `at` with PHP's `date()` format letters; `\` escapes the next character.
pub fn format_php(at: &DateTime<FixedOffset>, format: &str, zone: &Zone) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(format.len() * 2);
    let mut chars = format.chars();
    let weekday = at.weekday().num_days_from_monday() as usize;
    let hour12 = match at.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = at.offset().local_minus_utc();
    let offset_text = |colon: bool| {
        let sign = if offset < 0 { '-' } else { '+' };
        let (h, m) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
        if colon { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}{m:02}") }
    };
    while let Some(c) = chars.next() {
        let _ = match c {
            'd' => write!(out, "{:02}", at.day()),
            'D' => write!(out, "{}", &DAYS[weekday][..3]),
            'j' => write!(out, "{}", at.day()),
            'l' => write!(out, "{}", DAYS[weekday]),
            'N' => write!(out, "{}", weekday + 1),
            'S' => write!(out, "{}", ordinal_suffix(at.day())),
            'w' => write!(out, "{}", at.weekday().num_days_from_sunday()),
            'z' => write!(out, "{}", at.ordinal0()),
            'W' => write!(out, "{:02}", at.iso_week().week()),
            'F' => write!(out, "{}", MONTHS[at.month0() as usize]),
            'm' => write!(out, "{:02}", at.month()),
            'M' => write!(out, "{}", &MONTHS[at.month0() as usize][..3]),
            'n' => write!(out, "{}", at.month()),
            't' => write!(out, "{}", days_in_month(at.year(), at.month())),
            'L' => write!(out, "{}", u8::from(NaiveDate::from_ymd_opt(at.year(), 2, 29).is_some())),
            'o' => write!(out, "{}", at.iso_week().year()),
            'Y' => write!(out, "{}", at.year()),
            'y' => write!(out, "{:02}", at.year() % 100),
            'a' => write!(out, "{}", if at.hour() < 12 { "am" } else { "pm" }),
            'A' => write!(out, "{}", if at.hour() < 12 { "AM" } else { "PM" }),
            'g' => write!(out, "{hour12}"),
            'G' => write!(out, "{}", at.hour()),
            'h' => write!(out, "{hour12:02}"),
            'H' => write!(out, "{:02}", at.hour()),
            'i' => write!(out, "{:02}", at.minute()),
            's' => write!(out, "{:02}", at.second()),
            'u' => write!(out, "{:06}", at.timestamp_subsec_micros()),
            'v' => write!(out, "{:03}", at.timestamp_subsec_millis()),
            'e' => write!(out, "{}", zone.name),
            'I' => write!(out, "{}", u8::from(zone.tz.is_some_and(|tz| is_dst(tz, at)))),
            'O' => write!(out, "{}", offset_text(false)),
            'P' => write!(out, "{}", offset_text(true)),
            'p' => write!(out, "{}", if offset == 0 { "Z".to_string() } else { offset_text(true) }),
            'T' => write!(out, "{}", zone.abbreviation(at)),
            'Z' => write!(out, "{offset}"),
            'c' => write!(out, "{}", format_php(at, "Y-m-d\\TH:i:sP", zone)),
            'r' => write!(out, "{}", format_php(at, "D, d M Y H:i:s O", zone)),
            'U' => write!(out, "{}", at.timestamp()),
            '\\' => match chars.next() {
                Some(next) => write!(out, "{next}"),
                None => write!(out, "\\"),
            },
            other => write!(out, "{other}"),
        };
    }
    out
}

fn ordinal_suffix(day: u32) -> &'static str {
    match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(next_year, next_month, 1).and_then(|d| d.pred_opt()).map(|d| d.day()).unwrap_or(30)
}

fn is_dst(tz: chrono_tz::Tz, at: &DateTime<FixedOffset>) -> bool {
    use chrono_tz::OffsetComponents;
    !tz.offset_from_utc_datetime(&at.naive_utc()).dst_offset().is_zero()
}

/// UTC, Twig's default timezone here.
pub fn utc_zone() -> Zone {
    Zone { tz: None, fixed: Utc.fix(), name: "UTC".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn php_letters() {
        let zone = utc_zone();
        let t = zone.at(at("2024-03-01T07:05:09Z"));
        assert_eq!(format_php(&t, "Y-m-d H:i:s", &zone), "2024-03-01 07:05:09");
        assert_eq!(format_php(&t, "D, d M Y", &zone), "Fri, 01 Mar 2024");
        assert_eq!(format_php(&t, "l jS F y, g:i a", &zone), "Friday 1st March 24, 7:05 am");
        assert_eq!(format_php(&t, "N w z t L W", &zone), "5 5 60 31 1 09");
        assert_eq!(format_php(&t, "c", &zone), "2024-03-01T07:05:09+00:00");
        assert_eq!(format_php(&t, "U", &zone), "1709276709");
        assert_eq!(format_php(&t, "\\Y\\-m", &zone), "Y-03");
        assert_eq!(format_php(&t, "e T P p O", &zone), "UTC UTC +00:00 Z +0000");
    }

    #[test]
    fn named_zones_and_dst() {
        let zone = Zone::named("Europe/Amsterdam").unwrap();
        let summer = zone.at(at("2024-07-01T12:00:00Z"));
        assert_eq!(format_php(&summer, "H:i T I P", &zone), "14:00 CEST 1 +02:00");
        let winter = zone.at(at("2024-01-01T12:00:00Z"));
        assert_eq!(format_php(&winter, "H:i T I", &zone), "13:00 CET 0");
    }

    #[test]
    fn parses_what_strtotime_reads() {
        let zone = utc_zone();
        let now = at("2024-03-01T07:05:09Z");
        assert_eq!(parse_date("now", &zone, now), Some(now));
        assert_eq!(parse_date("2024-02-29", &zone, now), Some(at("2024-02-29T00:00:00Z")));
        assert_eq!(parse_date("2024-02-29 10:11:12", &zone, now), Some(at("2024-02-29T10:11:12Z")));
        assert_eq!(parse_date("2024-02-29T10:11:12+02:00", &zone, now), Some(at("2024-02-29T08:11:12Z")));
        assert_eq!(parse_date("+1 day", &zone, now), Some(at("2024-03-02T07:05:09Z")));
        assert_eq!(parse_date("-1 month", &zone, now), Some(at("2024-02-01T07:05:09Z")));
        assert_eq!(parse_date("tomorrow", &zone, now), Some(at("2024-03-02T00:00:00Z")));
        assert_eq!(parse_date("1709276709", &zone, now), Some(now));
        assert_eq!(parse_date("not a date", &zone, now), None);
    }

    #[test]
    fn slugify_matches_openconnector() {
        assert_eq!(slugify("  Hello World_Foo!! "), "hello-world-foo");
        assert_eq!(slugify("a--b"), "a-b");
    }
}
