//! Hostile input: what an upstream sends or a user types that is deep, huge, malformed, slow or
//! malicious. Each case runs the real binary (or the real service) against real sockets and files and
//! asserts a clean outcome: an exit code, an error naming the limit, the good records delivered, the
//! child's peak memory (from the kernel, `wait4`) below a bound; never a signal.

mod config;
mod files;
mod pages;
mod service;
mod sheets;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use syncline::store::{JobRecord, StateDir};

/// How a child run of the binary ended.
#[derive(Debug)]
pub struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Peak resident memory, in MiB (sampled every few milliseconds).
    pub peak_mib: u64,
    pub out: String,
}

impl Ran {
    /// The run ended with `code`, not a signal, within `mib` of memory.
    #[track_caller]
    pub fn expect(&self, code: i32, mib: u64) -> &Ran {
        assert_eq!(self.signal, None, "killed by a signal: {}", self.out);
        assert_eq!(self.code, Some(code), "exit code: {}", self.out);
        assert!(self.peak_mib <= mib, "peak memory {} MiB > {mib} MiB: {}", self.peak_mib, self.out);
        self
    }

    #[track_caller]
    pub fn says(&self, text: &str) -> &Ran {
        assert!(self.out.contains(text), "wanted {text:?} in:\n{}", self.out);
        self
    }
}

/// Runs `syncline --state STATE ARGS…` and measures it.
pub fn syncline(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(state)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("syncline starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    // The kernel's peak for the child's own memory (`VmHWM`), read until it exits. (`wait4`'s
    // `ru_maxrss` would count the test process too: a spawned child inherits its parent's peak.)
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak_kib = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kib) =
                status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            else {
                break;
            };
            peak_kib = peak_kib.max(kib);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        peak_kib
    });
    let status = child.wait().expect("syncline ends");
    let peak_kib = sampler.join().unwrap_or(0);
    let out = format!("{}{}", stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    use std::os::unix::process::ExitStatusExt;
    Ran { code: status.code(), signal: status.signal(), peak_mib: peak_kib / 1024, out }
}

/// [`syncline`] from async tests: the runtime goes on serving the upstream meanwhile.
pub async fn syncline_async(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let (state, args) = (state.to_path_buf(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        syncline(&state, &args, &env)
    })
    .await
    .expect("the run's thread")
}

/// A folder with a pipeline file and a state directory.
pub struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    pub fn new() -> Case {
        Case { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes `pipeline.yaml`; its path.
    pub fn pipeline(&self, yaml: &str) -> String {
        let path = self.path("pipeline.yaml");
        std::fs::write(&path, yaml).expect("pipeline written");
        path.display().to_string()
    }

    /// `syncline run pipeline.yaml`.
    pub async fn run(&self, yaml: &str) -> Ran {
        let file = self.pipeline(yaml);
        syncline_async(&self.state(), &["run", &file], &[]).await
    }

    /// The register's objects of synchronization `s`, by origin id.
    pub fn objects(&self) -> Vec<(String, Value)> {
        StateDir::open(&self.state()).expect("state").register().expect("register").objects_of("s").expect("objects")
    }

    /// The newest job of synchronization `s`.
    pub fn job(&self) -> JobRecord {
        StateDir::open(&self.state()).expect("state").jobs().expect("jobs").list(Some("s"), 1).expect("jobs").remove(0)
    }
}

/// A pipeline reading the API at `url` (its `/page`) into the register, with `source` lines added to
/// the source and `config` added to its sourceConfig.
pub fn api_pipeline(url: &str, source: &str, config: &str) -> String {
    let source = format!("type: api\nlocation: \"{url}\"\nretries: {{ maxAttempts: 1 }}\n{source}");
    pipeline(&source, r#"{ name: "{{ name }}" }"#, &format!("endpoint: /page, idPosition: id, resultsPosition: items {config}"))
}

/// A pipeline reading the file `path` into the register; `config` adds to its sourceConfig.
pub fn file_pipeline(path: &str, source: &str, config: &str) -> String {
    pipeline(&format!("type: file\nlocation: \"{path}\"\n{source}"), "{}", &format!("idPosition: id {config}"))
}

/// Source `up` (its `source` lines), passed through `mapping` into register `r/s` by synchronization `s`.
fn pipeline(source: &str, mapping: &str, config: &str) -> String {
    let source = source.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
    format!(
        "sources:\n  up:\n{source}\nmappings:\n  m:\n    mapping: {mapping}\n    passThrough: true\nregisters:\n  r:\n    schemas:\n      s: {{ type: object }}\n\
         synchronizations:\n  s:\n    source: up\n    sourceConfig: {{ {config} }}\n    mapping: m\n    target: {{ type: register, register: r, schema: s }}\n"
    )
}

/// `levels` nested objects around a number: `{"a":{"a":…1…}}`.
pub fn deep_object(levels: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
}
