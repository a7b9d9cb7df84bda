//! The FTP source against a real FTP server: libunftp, in-process, serving a temporary folder, with
//! password logins, and FTPS with a self-signed certificate made by `openssl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use syncline::pipeline::RunOptions;
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, Principal};

use crate::common::counts;
use crate::workspace::{Workspace, completed, create_rerun_edit, write_file};

#[derive(Debug)]
struct OnePassword(&'static str);

#[async_trait]
impl Authenticator for OnePassword {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        match creds.password.as_deref() {
            Some(p) if p == self.0 => Ok(Principal { username: username.to_string() }),
            _ => Err(AuthenticationError::BadPassword),
        }
    }
}

/// A running FTP server; stopped when dropped.
struct FtpServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_ftp(root: PathBuf, tls: Option<(PathBuf, PathBuf)>) -> FtpServer {
    let port = free_port();
    // Each server its own passive ports, so tests running side by side never share one.
    let passive = 40000 + (port % 200) * 100;
    let mut builder = libunftp::ServerBuilder::with_authenticator(
        Box::new(move || unftp_sbe_fs::Filesystem::new(root.clone()).expect("ftp root")),
        Arc::new(OnePassword("s3cret-ftp")),
    )
    .greeting("syncline test server")
    .passive_ports(passive..=passive + 99);
    if let Some((cert, key)) = tls {
        builder = builder.ftps(cert, key);
    }
    let server = builder.build().expect("ftp server builds");
    let task = tokio::spawn(async move {
        let _ = server.listen(format!("127.0.0.1:{port}")).await;
    });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    FtpServer { port, task }
}

fn ftp_source(server: &FtpServer, extra: &str) -> String {
    format!("{{ type: ftp, location: \"ftp://127.0.0.1:{}/exports\", username: feeds, password: s3cret-ftp{extra} }}", server.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_create_rerun_update_delete_and_incremental() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "exports/a.csv", b"id,name\n1,Rex\n2,Tom\n", 3600);
    write_file(&data, "exports/b.csv", b"id,name\n3,Kit\n", 3000);
    write_file(&data, "exports/skip.txt", b"not a feed", 3000);
    let server = start_ftp(data.clone(), None).await;
    ws.write(&ftp_source(&server, ""), r#"{ path: "*.csv", idPosition: id }"#);

    create_rerun_edit(&ws, &data).await;

    // Incremental: only files at or past the newest one read before.
    ws.write(&ftp_source(&server, ""), r#"{ path: "*.csv", idPosition: id, incremental: true }"#);
    completed(&ws.run().await);
    write_file(&data, "exports/c.csv", b"id,name\n4,Max\n", 60);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(report.job.counts.created, 1);
    assert_eq!(report.job.counts.found, 2, "the newest file before, and the new one: {:?}", counts(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_failures_fail_the_job_without_deleting() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "exports/a.csv", b"id,name\n1,Rex\n", 3600);
    let server = start_ftp(data.clone(), None).await;
    ws.write(&ftp_source(&server, ""), r#"{ path: "*.csv", idPosition: id }"#);
    completed(&ws.run().await);

    // A wrong password: auth, and the password is nowhere in what the job says.
    ws.write(
        &format!("{{ type: ftp, location: \"ftp://127.0.0.1:{}/exports\", username: feeds, password: wrong-pass }}", server.port),
        r#"{ path: "*.csv", idPosition: id }"#,
    );
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert_eq!(report.job.error_category.as_deref(), Some("auth"), "{:?}", report.job.error);
    assert!(!report.job.error.unwrap().contains("wrong-pass"));

    // The server gone: a connection failure, and nothing deleted.
    let port = server.port;
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    ws.write(
        &format!(
            "{{ type: ftp, location: \"ftp://127.0.0.1:{port}/exports\", username: feeds, password: s3cret-ftp, connectTimeout: 2s }}"
        ),
        r#"{ path: "*.csv", idPosition: id }"#,
    );
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert_eq!(report.job.error_category.as_deref(), Some("connection"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 1);
}

/// A self-signed certificate for 127.0.0.1, made with the openssl command line.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then_some((cert, key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_verifies_certificates_unless_told_not_to() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "exports/a.csv", b"id,name\n1,Rex\n", 3600);
    let Some(tls) = self_signed(ws.dir.path()) else {
        super::common::skipped("the openssl command is not available to make a certificate");
        return;
    };
    let server = start_ftp(data.clone(), Some(tls)).await;
    let source = |extra: &str| {
        format!("{{ type: ftp, location: \"ftps://127.0.0.1:{}/exports\", username: feeds, password: s3cret-ftp{extra} }}", server.port)
    };
    ws.write(&source(""), r#"{ path: "*.csv", idPosition: id }"#);
    let refused = ws.run().await;
    assert_eq!(refused.job.status.as_str(), "FAILED");
    assert_eq!(refused.job.error_category.as_deref(), Some("tls"), "{:?}", refused.job.error);

    ws.write(&source(", tls: { verify: false }"), r#"{ path: "*.csv", idPosition: id }"#);
    let report = ws.run_with(RunOptions::default()).await;
    completed(&report);
    assert_eq!(ws.objects()["1"], json!({"id": 1, "name": "Rex"}));
}
