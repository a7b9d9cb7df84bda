//! The SFTP source against a real OpenSSH server: `sshd` started by the test on a loopback port, with
//! its own host key and an authorized client key. Skipped, saying why, where sshd cannot run (it is
//! Debian's `openssh-server`; `.ci/run` installs it when missing).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::workspace::{Workspace, completed, create_rerun_edit, write_file};

struct Sshd {
    port: u16,
    child: Child,
    /// `SHA256:…` of the host key.
    fingerprint: String,
    /// `[127.0.0.1]:port ssh-ed25519 …`, a known_hosts line.
    known_host: String,
    client_key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) -> bool {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn whoami() -> String {
    Command::new("id").arg("-un").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

/// A real sshd on a free port, or `None` after saying why it could not be had.
async fn start_sshd(dir: &Path) -> Option<Sshd> {
    match launch_sshd(dir).await {
        Ok(sshd) => Some(sshd),
        Err(why) => {
            super::common::skipped(&why);
            None
        }
    }
}

async fn launch_sshd(dir: &Path) -> Result<Sshd, String> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err("no /usr/sbin/sshd (install openssh-server)".into());
    }
    if whoami() != "root" {
        return Err("sshd needs root to start".into());
    }
    let _ = std::fs::create_dir_all("/run/sshd");
    let (host_key, client_key) = (dir.join("host_key"), dir.join("client_key"));
    if !keygen(&host_key) || !keygen(&client_key) {
        return Err("ssh-keygen failed".into());
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).map_err(|e| format!("authorized_keys: {e}"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| format!("no free port: {e}"))?.port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
             StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nSubsystem sftp internal-sftp\n",
            host = host_key.display(),
            dir = dir.display()
        ),
    )
    .map_err(|e| format!("sshd_config: {e}"))?;
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("sshd does not start: {e}"))?;
    let printed =
        Command::new("ssh-keygen").arg("-lf").arg(dir.join("host_key.pub")).output().map_err(|e| format!("ssh-keygen -lf: {e}"))?;
    let fingerprint =
        String::from_utf8_lossy(&printed.stdout).split_whitespace().nth(1).ok_or("ssh-keygen printed no fingerprint")?.to_string();
    let public = std::fs::read_to_string(dir.join("host_key.pub")).map_err(|e| format!("host_key.pub: {e}"))?;
    let known_host = format!("[127.0.0.1]:{port} {}", public.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(Sshd { port, child, fingerprint, known_host, client_key });
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    Err("sshd did not start listening".into())
}

fn source(server: &Sshd, data: &Path, extra: &str) -> String {
    format!(
        "{{ type: sftp, location: \"sftp://127.0.0.1:{}{}/exports\", username: {}, privateKeyFile: \"{}\"{extra} }}",
        server.port,
        data.display(),
        whoami(),
        server.client_key.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_create_rerun_update_delete_and_incremental() {
    let ws = Workspace::new();
    let Some(server) = start_sshd(ws.dir.path()).await else { return };
    let data = ws.data();
    write_file(&data, "exports/a.csv", b"id,name\n1,Rex\n2,Tom\n", 3600);
    write_file(&data, "exports/b.ndjson", b"{\"id\": 3, \"name\": \"Kit\"}\n", 3000);
    let pinned = format!(", hostKey: \"{}\"", server.fingerprint);
    ws.write(&source(&server, &data, &pinned), r#"{ path: "*.{csv,ndjson}", idPosition: id }"#);
    create_rerun_edit(&ws, &data).await;

    ws.write(&source(&server, &data, &pinned), r#"{ path: "*.{csv,ndjson}", idPosition: id, incremental: true }"#);
    completed(&ws.run().await);
    write_file(&data, "exports/c.csv", b"id,name\n4,Max\n", 60);
    let report = ws.run().await;
    completed(&report);
    assert_eq!((report.job.counts.found, report.job.counts.created), (2, 1), "the newest file before, and the new one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_host_keys_and_credentials_are_checked() {
    let ws = Workspace::new();
    let Some(server) = start_sshd(ws.dir.path()).await else { return };
    let data = ws.data();
    write_file(&data, "exports/a.csv", b"id,name\n1,Rex\n", 3600);
    let config = r#"{ path: "*.csv", idPosition: id }"#;

    // A known_hosts file that lists the server: accepted.
    let known = ws.dir.path().join("known_hosts");
    std::fs::write(&known, format!("{}\n", server.known_host)).unwrap();
    ws.write(&source(&server, &data, &format!(", knownHosts: \"{}\"", known.display())), config);
    completed(&ws.run().await);

    // A different pinned key: refused before logging in, as a TLS-class failure naming the key seen.
    ws.write(&source(&server, &data, ", hostKey: \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""), config);
    let report = ws.run().await;
    assert_eq!(report.job.error_category.as_deref(), Some("tls"), "{:?}", report.job.error);
    assert!(report.job.error.unwrap().contains(&server.fingerprint));

    // A key the server does not know: auth.
    let stranger = ws.dir.path().join("stranger");
    assert!(keygen(&stranger));
    let text = format!(
        "{{ type: sftp, location: \"sftp://127.0.0.1:{}{}/exports\", username: {}, privateKeyFile: \"{}\", verifyHostKey: false }}",
        server.port,
        data.display(),
        whoami(),
        stranger.display()
    );
    ws.write(&text, config);
    let report = ws.run().await;
    assert_eq!(report.job.error_category.as_deref(), Some("auth"), "{:?}", report.job.error);

    // The server gone: a connection failure.
    let config_with_key = source(&server, &data, ", verifyHostKey: false");
    drop(server);
    ws.write(&config_with_key, config);
    let report = ws.run().await;
    assert_eq!(report.job.error_category.as_deref(), Some("connection"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 1, "failed runs delete nothing");
}
