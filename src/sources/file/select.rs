//! Which files of a listing a run reads: those matching the `path` glob, old enough (`minimumAge`),
//! and, for an incremental run, modified at or after the saved cursor. Shared by every file source.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use globset::{GlobBuilder, GlobMatcher};

use crate::config::SourceConfigDef;
use crate::sources::formats::{EventSender, ReadError};
use crate::sources::{SourceError, SourceEvent};

/// A file a listing found.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Relative to the source's directory, `/`-separated.
    pub name: String,
    pub modified: Option<DateTime<Utc>>,
    pub size: Option<u64>,
}

/// The rules of one synchronization.
#[derive(Debug, Clone)]
pub struct Selection {
    pub pattern: Option<GlobMatcher>,
    /// The glob as written, for messages.
    pub glob: Option<String>,
    pub minimum_age: Option<Duration>,
    pub incremental: bool,
}

impl Selection {
    pub fn from_config(config: &SourceConfigDef) -> Result<Selection, SourceError> {
        let pattern = match &config.path {
            Some(glob) => Some(
                // `*` stays within a folder, `**` crosses folders, as in a shell.
                GlobBuilder::new(glob.trim_start_matches('/'))
                    .literal_separator(true)
                    .build()
                    .map_err(|e| SourceError::Config(format!("`{glob}` is not a glob: {e}")))?
                    .compile_matcher(),
            ),
            None => None,
        };
        Ok(Selection {
            pattern,
            glob: config.path.clone(),
            minimum_age: config.minimum_age.map(|s| s.0),
            incremental: config.incremental.is_some_and(|f| f.0),
        })
    }

    /// The directory to list: the glob's literal leading segments (`exports/2024/*.csv` → `exports/2024`).
    pub fn list_prefix(&self) -> String {
        let Some(glob) = &self.glob else { return String::new() };
        let glob = glob.trim_start_matches('/');
        let literal: Vec<&str> = glob.split('/').take_while(|s| !s.contains(['*', '?', '[', '{'])).collect();
        let segments = glob.split('/').count();
        // The last segment is the file name itself when nothing in the glob is a wildcard.
        let take = if literal.len() == segments { segments.saturating_sub(1) } else { literal.len() };
        literal[..take].join("/")
    }

    /// The files to read, oldest first (so a cursor only moves forward), and whether the cursor
    /// narrowed them.
    pub fn select(&self, listing: Vec<FileEntry>, cursor: Option<&str>, now: DateTime<Utc>) -> (Vec<FileEntry>, bool) {
        let since =
            if self.incremental { cursor.and_then(|c| DateTime::parse_from_rfc3339(c).ok()).map(|c| c.with_timezone(&Utc)) } else { None };
        let mut files: Vec<FileEntry> = listing
            .into_iter()
            .filter(|f| self.pattern.as_ref().is_none_or(|p| p.is_match(&f.name)))
            .filter(|f| match (self.minimum_age, f.modified) {
                (Some(age), Some(modified)) => (now - modified).to_std().is_ok_and(|d| d >= age),
                _ => true,
            })
            // At or after: a file written in the same instant as the cursor's is read again, never lost.
            .filter(|f| match (since, f.modified) {
                (Some(since), Some(modified)) => modified >= since,
                _ => true,
            })
            .collect();
        files.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        (files, since.is_some())
    }
}

/// Reads one listed file and sends its records: what each file protocol provides.
pub trait Fetch {
    fn fetch(&mut self, file: &FileEntry, tx: &EventSender) -> impl Future<Output = Result<(), ReadError>> + Send;
}

/// The run over a listing shared by every file source: pick the files, tell the pipeline when the read
/// is incremental, read each, and report the new cursor.
pub async fn feed(
    selection: &Selection,
    listing: Vec<FileEntry>,
    cursor: Option<String>,
    shown: &str,
    tx: &EventSender,
    fetch: &mut impl Fetch,
) -> Result<(), ReadError> {
    let send = |event| async { tx.send(Ok(event)).await.map_err(|_| ReadError::Stopped) };
    let (files, narrowed) = selection.select(listing, cursor.as_deref(), Utc::now());
    if narrowed {
        send(SourceEvent::Incremental(format!("files modified since {}", cursor.unwrap_or_default()))).await?;
    } else if files.is_empty() {
        send(SourceEvent::Warning(format!("no file in {shown} matches `{}`", selection.glob.as_deref().unwrap_or("*")))).await?;
    }
    for file in &files {
        fetch.fetch(file, tx).await?;
    }
    if selection.incremental
        && let Some(cursor) = newest(&files)
    {
        send(SourceEvent::Cursor(cursor)).await?;
    }
    Ok(())
}

/// The cursor after reading `files`: the newest modification time among them.
pub fn newest(files: &[FileEntry]) -> Option<String> {
    files.iter().filter_map(|f| f.modified).max().map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, minutes_ago: i64, now: DateTime<Utc>) -> FileEntry {
        FileEntry { name: name.into(), modified: Some(now - chrono::Duration::minutes(minutes_ago)), size: None }
    }

    fn selection(glob: &str, age: Option<u64>, incremental: bool) -> Selection {
        let config = SourceConfigDef {
            path: Some(glob.into()),
            minimum_age: age.map(|m| crate::config::Span(Duration::from_secs(m * 60))),
            incremental: Some(crate::config::Flag(incremental)),
            ..SourceConfigDef::default()
        };
        Selection::from_config(&config).unwrap()
    }

    #[test]
    fn globs_ages_and_cursors() {
        let now = Utc::now();
        let listing = vec![
            entry("exports/a.csv", 30, now),
            entry("exports/b.csv", 10, now),
            entry("exports/c.txt", 10, now),
            entry("exports/d.csv", 0, now),
        ];
        let (files, _) = selection("exports/*.csv", Some(1), false).select(listing.clone(), None, now);
        assert_eq!(files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["exports/a.csv", "exports/b.csv"]);
        let cursor = newest(&files[..1]).unwrap();
        let (files, narrowed) = selection("exports/*.csv", None, true).select(listing, Some(&cursor), now);
        assert!(narrowed);
        assert_eq!(files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["exports/a.csv", "exports/b.csv", "exports/d.csv"]);
    }

    #[test]
    fn list_prefixes() {
        assert_eq!(selection("exports/2024/*.csv", None, false).list_prefix(), "exports/2024");
        assert_eq!(selection("*.csv", None, false).list_prefix(), "");
        assert_eq!(selection("exports/pets.csv", None, false).list_prefix(), "exports");
        assert_eq!(selection("/a/**/x.csv", None, false).list_prefix(), "a");
    }
}
