//! What a source says itself during a run (a program's stderr), kept for the job log within bounds.

/// The lines a source logged in a run, as many as the job log keeps of them: the first
/// [`SourceLog::MAX_LINES`], each cut at [`SourceLog::MAX_LINE_CHARS`], then a count of the rest (a
/// program that prints a line per record must not fill the job store).
#[derive(Default)]
pub(super) struct SourceLog {
    lines: Vec<(&'static str, String)>,
    left_out: u64,
}

impl SourceLog {
    const MAX_LINES: usize = 1000;
    const MAX_LINE_CHARS: usize = 2000;

    pub(super) fn push(&mut self, level: &'static str, mut message: String) {
        if self.lines.len() >= Self::MAX_LINES {
            self.left_out += 1;
            return;
        }
        if let Some((cut, _)) = message.char_indices().nth(Self::MAX_LINE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        self.lines.push((level, message));
    }

    pub(super) fn lines(&mut self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        let more = (self.left_out > 0).then(|| ("warn", format!("… and {} more line(s) from the source, not kept", self.left_out)));
        self.lines.drain(..).chain(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chatty_source_is_kept_within_bounds() {
        let mut log = SourceLog::default();
        log.push("info", "x".repeat(SourceLog::MAX_LINE_CHARS + 10));
        for n in 1..SourceLog::MAX_LINES + 5 {
            log.push("info", format!("line {n}"));
        }
        let lines: Vec<_> = log.lines().collect();
        assert_eq!(lines.len(), SourceLog::MAX_LINES + 1);
        assert_eq!(lines[0].1.chars().count(), SourceLog::MAX_LINE_CHARS + 1, "cut, with an ellipsis");
        assert_eq!(lines.last().unwrap(), &("warn", "… and 5 more line(s) from the source, not kept".to_string()));
    }
}
