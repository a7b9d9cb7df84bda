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

/// How a source starts its program: the command as configured, before each run's extra arguments
/// and variables.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    pub shown: String,
}

impl Launcher {
    /// The launcher of a program configured as `command` (the program, then its arguments), with
    /// `env` beside [`DEFAULT_PATH`] (unless `env` names a `PATH`), run in `working_dir` (already
    /// anchored; `.` when none); `what` names it in messages (`command`, `command target`).
    pub fn new(what: &str, command: &[String], env: &crate::config::TextMap, working_dir: Option<&str>) -> Launcher {
        let mut vars: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        if !env.contains_key("PATH") {
            vars.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        Launcher {
            shown: format!("{what} `{}`", command[0]),
            command: command.to_vec(),
            env: vars,
            working_dir: PathBuf::from(working_dir.unwrap_or(".")),
        }
    }

    /// The program as it will run: the command, then `args`; the source's environment, then `env`.
    pub fn program(&self, args: &[&str], env: Vec<(String, String)>) -> Result<Program, SourceError> {
        let path_var = self.env.iter().find(|(k, _)| k == "PATH").map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        let path = resolve(&self.command[0], path_var, &self.working_dir).ok_or_else(|| {
            SourceError::Config(format!(
                "{}: no such program (a name is looked up in the program's PATH, {path_var}; a path from {})",
                self.shown,
                self.working_dir.display()
            ))
        })?;
        Ok(Program {
            path,
            args: self.command[1..].iter().cloned().chain(args.iter().map(|a| a.to_string())).collect(),
            env: self.env.iter().cloned().chain(env).collect(),
            working_dir: self.working_dir.clone(),
            shown: self.shown.clone(),
        })
    }
}

/// A private folder for the files a program reads or writes (a config with secrets, a catalog, a
/// cursor): only this user can read it, and it is removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn create() -> Result<Scratch, SourceError> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("syncline-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| SourceError::Config(format!("cannot create a private folder in {}: {e}", std::env::temp_dir().display())))?;
        Ok(Scratch { dir })
    }

    /// Writes `bytes` to file `name` in it (readable by this user only), answering its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, SourceError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(bytes))
            .map_err(|e| SourceError::Config(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
        self.start(Stdio::null(), log)
    }

    /// [`Self::spawn`] with its stdin piped too, for a program that is written to (a command target).
    pub fn spawn_piped(&self, log: &EventSender) -> Result<Running, SourceError> {
        self.start(Stdio::piped(), log)
    }

    fn start(&self, stdin: Stdio, log: &EventSender) -> Result<Running, SourceError> {
        let mut command = Command::new(&self.path);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.working_dir)
            .stdin(stdin)
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
    /// The program's standard input, when piped (taken once).
    pub fn stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }

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
    let mut lines = BoundedLines::new(stderr, MAX_LINE_BYTES);
    let mut tail = VecDeque::new();
    while let Ok(Some(line)) = lines.next().await {
        let text = String::from_utf8_lossy(line.text()).trim_end().to_string();
        if text.is_empty() {
            continue;
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(crate::secrets::scrub(&text).into_owned());
        let _ = log.send(Ok(SourceEvent::Log { level: "info", message: format!("stderr: {text}") })).await;
    }
    tail
}

/// A line of a program's output: whole, or the first `limit` bytes of a longer one.
pub enum Line {
    Whole(Vec<u8>),
    /// The line's length; what is kept of it.
    TooLong(usize, Vec<u8>),
}

impl Line {
    pub fn text(&self) -> &[u8] {
        match self {
            Line::Whole(text) | Line::TooLong(_, text) => text,
        }
    }
}

/// Lines of a byte stream, none held past `limit` bytes (the rest of a longer line is counted and
/// dropped): a program cannot make syncline buffer without bound.
pub struct BoundedLines<R> {
    reader: BufReader<R>,
    limit: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> BoundedLines<R> {
    pub fn new(reader: R, limit: usize) -> Self {
        BoundedLines { reader: BufReader::with_capacity(64 * 1024, reader), limit }
    }

    /// The next line without its newline; `None` at the end.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        let (mut line, mut length) = (Vec::new(), 0usize);
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok((length > 0).then(|| self.finish(line, length)));
            }
            let (used, ended) = match buf.iter().position(|b| *b == b'\n') {
                Some(at) => (at, true),
                None => (buf.len(), false),
            };
            let room = self.limit.saturating_sub(line.len());
            line.extend_from_slice(&buf[..used.min(room)]);
            length += used;
            self.reader.consume(used + usize::from(ended));
            if ended {
                return Ok(Some(self.finish(line, length)));
            }
        }
    }

    fn finish(&self, line: Vec<u8>, length: usize) -> Line {
        if length > self.limit { Line::TooLong(length, line) } else { Line::Whole(line) }
    }
}

/// `run`, failed as a timeout when it takes longer than `limit` (when there is one): dropped then,
/// which kills the program it runs.
pub async fn within<T>(
    limit: Option<std::time::Duration>,
    shown: &str,
    run: impl std::future::Future<Output = Result<T, crate::sources::formats::ReadError>>,
) -> Result<T, crate::sources::formats::ReadError> {
    let Some(limit) = limit else { return run.await };
    tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
        Err(crate::sources::formats::ReadError::Failed(SourceError::Timeout {
            url: shown.to_string(),
            reason: format!("it ran longer than the source's timeout ({limit:?}) and was stopped"),
        }))
    })
}
