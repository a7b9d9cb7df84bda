//! Running a source's program: in a process group of its own (so a kill reaches whatever it started),
//! with only the environment the source names, its stderr read line by line into the job log, its
//! exit status checked. A [`Running`] program that is dropped (the run was cancelled, failed, or hit
//! its `timeout`) is killed with its whole group.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::sources::formats::EventSender;
use crate::sources::{SourceError, SourceEvent};

/// The `PATH` a program gets unless its `env` names one: the system's own directories, not syncline's.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The longest stderr line kept; the rest of a longer one is dropped.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// The last stderr lines a failure's message quotes.
const TAIL_LINES: usize = 3;

/// A program to run: resolved, with its arguments and the whole of its environment.
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// How messages name it: `command \`feed.py\``.
    pub shown: String,
}

/// Where `program` is: a path with a `/` is taken relative to `working_dir`, a bare name is looked
/// up in `path` (the program's own `PATH`, not syncline's).
pub fn resolve(program: &str, path: &str, working_dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = working_dir.join(program);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A started program. Dropping it kills its process group.
pub struct Running {
    child: Child,
    group: Option<i32>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
    shown: String,
}

impl Program {
    /// Starts the program with its stdout piped for the caller, stdin closed, and each stderr line
    /// sent to `log` as a job-log line.
    pub fn spawn(&self, log: &EventSender) -> Result<Running, SourceError> {
        let mut command = Command::new(&self.path);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|e| SourceError::Protocol { url: self.shown.clone(), reason: format!("cannot start it: {e}") })?;
        let stderr = child.stderr.take().map(|stderr| tokio::spawn(forward_stderr(stderr, log.clone())));
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        Ok(Running { child, group, stderr, shown: self.shown.clone() })
    }
}

impl Running {
    /// The program's standard output (taken once).
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the program to end: `Ok` when it exited 0; otherwise an error with its status and
    /// the last lines it wrote to stderr.
    pub async fn finish(mut self) -> Result<(), SourceError> {
        let status = self.child.wait().await;
        // Its stderr ends with it (unless something it started holds it open: then it is cut off).
        let tail = match self.stderr.take() {
            Some(task) => tokio::time::timeout(std::time::Duration::from_secs(2), task).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => VecDeque::new(),
        };
        let status = status.map_err(|e| SourceError::Protocol { url: self.shown.clone(), reason: format!("cannot wait for it: {e}") })?;
        if status.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => "ended abnormally".to_string(),
        };
        let said = if tail.is_empty() { String::new() } else { format!("; its last words on stderr: {}", Vec::from(tail).join(" | ")) };
        Err(SourceError::Protocol { url: self.shown.clone(), reason: format!("{how}{said} (nothing is deleted after a failed read)") })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            // The whole group: a shell script's children too. A group already gone answers ESRCH.
            // SAFETY: killpg only sends a signal; it touches no memory of this process.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
        if let Some(task) = self.stderr.take() {
            task.abort();
        }
    }
}

/// Sends each stderr line (cut at [`MAX_LINE_BYTES`]) to the job log; answers the last few.
async fn forward_stderr(stderr: ChildStderr, log: EventSender) -> VecDeque<String> {
    let mut reader = BufReader::new(stderr);
    let (mut line, mut tail) = (Vec::new(), VecDeque::new());
    loop {
        let (used, ended) = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => match buf.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    let room = MAX_LINE_BYTES.saturating_sub(line.len());
                    line.extend_from_slice(&buf[..at.min(room)]);
                    (at + 1, true)
                }
                None => {
                    let room = MAX_LINE_BYTES.saturating_sub(line.len());
                    line.extend_from_slice(&buf[..buf.len().min(room)]);
                    (buf.len(), false)
                }
            },
        };
        reader.consume(used);
        if ended {
            emit(&mut line, &mut tail, &log).await;
        }
    }
    emit(&mut line, &mut tail, &log).await;
    tail
}

async fn emit(line: &mut Vec<u8>, tail: &mut VecDeque<String>, log: &EventSender) {
    let text = String::from_utf8_lossy(line).trim_end().to_string();
    line.clear();
    if text.is_empty() {
        return;
    }
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(crate::secrets::scrub(&text).into_owned());
    let _ = log.send(Ok(SourceEvent::Log { level: "info", message: format!("stderr: {text}") })).await;
}
