//! The SFTP source (`type: sftp`): files on an SSH server (`sftp://host:22/dir`), with a password or a
//! private key. The server's host key is checked against `hostKey` (a `SHA256:` fingerprint) or a
//! known_hosts file (`knownHosts`, default `~/.ssh/known_hosts`); only `verifyHostKey: false` skips it.
//! Files are picked and read as over FTP: a glob, their format, streamed as they download.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;

use serde::{Deserialize, Serialize};

use crate::config::{FileFormat, Flag, Secret, SourceConfigDef, SourceDef, enabled, is_enabled};
use crate::sources::feed::spawn_feed;
use crate::sources::file::remote::Remote;
use crate::sources::file::select::{self, Fetch, FileEntry, Selection};
use crate::sources::formats::{self, EventSender, FormatOptions, ReadError};
use crate::sources::registry::{
    ConnectorSettings, FILE_KEYS, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of, validate_files,
};
use crate::sources::{Source, SourceError, SourceStream};

pub struct SftpSource {
    inner: Arc<Inner>,
}

/// How the server proves who it is.
#[derive(Debug, Clone)]
enum HostKeyRule {
    Fingerprint(String),
    KnownHosts(Option<String>),
    Anything,
}

enum Credential {
    Password(Secret),
    Key { text: Secret, passphrase: Option<Secret> },
}

struct Inner {
    at: Remote,
    user: String,
    credential: Credential,
    rule: HostKeyRule,
    connect_timeout: Duration,
    selection: Selection,
    options: FormatOptions,
}

/// The sftp source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "sftp",
    label: "SFTP",
    schemes: &["sftp"],
    local_paths: false,
    keys: FILE_KEYS,
    validate: validate_files,
    build: |def, config, _| Ok(Box::new(SftpSource::new(def, config)?)),
    probe: None,
    settings: Some(SettingsSchema {
        keys: &["privateKey", "privateKeyFile", "passphrase", "hostKey", "knownHosts", "verifyHostKey"],
        secrets: &["privateKey", "passphrase"],
        read: read_settings::<SftpSettings>,
    }),
    sync_settings: None,
    runs_programs: false,
    names_ids: false,
    fields: &[
        FormField { key: "privateKey", label: "Private key", input: Input::SecretText, placeholder: "-----BEGIN OPENSSH PRIVATE KEY-----" },
        FormField { key: "passphrase", label: "Key passphrase", input: Input::Secret, placeholder: "" },
        FormField { key: "hostKey", label: "Host key fingerprint", input: Input::Text, placeholder: "SHA256:…" },
    ],
};

/// The keys only an sftp source reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SftpSettings {
    /// A private key (OpenSSH or PEM text), instead of a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Secret>,
    /// A file holding the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
    /// The private key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Secret>,
    /// The server's host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// A known_hosts file to check the host key against (default `~/.ssh/known_hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    /// Check the server's host key (default true); `false` only on a network you trust.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub verify_host_key: Flag,
}

impl ConnectorSettings for SftpSettings {
    /// Key and known_hosts files are found next to the pipeline file, as its other paths are.
    fn anchor(&mut self, base: &std::path::Path) {
        for path in [&mut self.private_key_file, &mut self.known_hosts].into_iter().flatten().filter(|p| !p.starts_with('~')) {
            crate::config::anchor_location(path, base);
        }
    }
}

impl SftpSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<SftpSource, SourceError> {
        let selection = Selection::from_config(config)?;
        let at = Remote::parse(def, &selection, 22)?;
        let user =
            at.user.clone().ok_or_else(|| SourceError::Config("an sftp source needs a `username` (or user@ in the location)".into()))?;
        let settings: &SftpSettings = settings_of(def)?;
        let key_text = match (&settings.private_key, &settings.private_key_file) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(file)) => Some(Secret::new(
                std::fs::read_to_string(file).map_err(|e| SourceError::Config(format!("cannot read privateKeyFile {file}: {e}")))?,
            )),
            (None, None) => None,
        };
        let credential = match (key_text, &at.password) {
            (Some(text), _) => Credential::Key { text, passphrase: settings.passphrase.clone() },
            (None, Some(password)) => Credential::Password(password.clone()),
            (None, None) => return Err(SourceError::Config("an sftp source needs a `password`, `privateKey` or `privateKeyFile`".into())),
        };
        let rule = match (&settings.host_key, settings.verify_host_key.0) {
            (_, false) => HostKeyRule::Anything,
            (Some(fingerprint), true) => HostKeyRule::Fingerprint(fingerprint.trim().to_string()),
            (None, true) => HostKeyRule::KnownHosts(settings.known_hosts.clone()),
        };
        Ok(SftpSource {
            inner: Arc::new(Inner {
                at,
                user,
                credential,
                rule,
                connect_timeout: def.connect_timeout.map_or(Duration::from_secs(10), |s| s.0),
                selection,
                options: FormatOptions { limits: def.limits, ..FormatOptions::from_config(config)? },
            }),
        })
    }
}

/// Checks the host key during the handshake, keeping what it saw for the error message.
struct HostCheck {
    host: String,
    port: u16,
    rule: HostKeyRule,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone().into(),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint.clone());
        Ok(match &self.rule {
            HostKeyRule::Anything => true,
            HostKeyRule::Fingerprint(expected) => *expected == fingerprint,
            HostKeyRule::KnownHosts(Some(path)) => russh::keys::check_known_hosts_path(&self.host, self.port, &key, path).unwrap_or(false),
            HostKeyRule::KnownHosts(None) => russh::keys::check_known_hosts(&self.host, self.port, &key).unwrap_or(false),
        })
    }
}

impl Inner {
    fn ssh_error(&self, error: russh::Error, seen: &Mutex<Option<String>>) -> SourceError {
        let url = self.at.shown.clone();
        match error {
            russh::Error::UnknownKey => {
                let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
                let against = match &self.rule {
                    HostKeyRule::Fingerprint(expected) => format!("the configured hostKey {expected}"),
                    HostKeyRule::KnownHosts(path) => format!("known_hosts ({})", path.as_deref().unwrap_or("~/.ssh/known_hosts")),
                    HostKeyRule::Anything => "nothing".into(),
                };
                SourceError::Tls { url, reason: format!("the server's host key {seen} does not match {against}") }
            }
            russh::Error::IO(e) => SourceError::Connect { url, reason: e.to_string() },
            russh::Error::ConnectionTimeout | russh::Error::InactivityTimeout => SourceError::Timeout { url, reason: error.to_string() },
            other => SourceError::Protocol { url, reason: other.to_string() },
        }
    }

    /// Connects, checks the host key, logs in and opens the SFTP subsystem.
    async fn connect(&self) -> Result<SftpSession, SourceError> {
        let seen = Arc::new(Mutex::new(None));
        let check = HostCheck { host: self.at.host.clone(), port: self.at.port, rule: self.rule.clone(), seen: Arc::clone(&seen) };
        let config = Arc::new(client::Config::default());
        let connecting = client::connect(config, (self.at.host.as_str(), self.at.port), check);
        let mut session = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| SourceError::Timeout {
                url: self.at.shown.clone(),
                reason: format!("no SSH handshake within {:?}", self.connect_timeout),
            })?
            .map_err(|e| self.ssh_error(e, &seen))?;
        let fail = |e| self.ssh_error(e, &seen);
        let result = match &self.credential {
            Credential::Password(password) => session.authenticate_password(self.user.as_str(), password.expose()).await.map_err(fail)?,
            Credential::Key { text, passphrase } => {
                let key = russh::keys::decode_secret_key(text.expose(), passphrase.as_ref().map(Secret::expose))
                    .map_err(|e| SourceError::Config(format!("the private key cannot be read: {e}")))?;
                let hash = session.best_supported_rsa_hash().await.map_err(fail)?.flatten();
                session.authenticate_publickey(self.user.as_str(), PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await.map_err(fail)?
            }
        };
        if !result.success() {
            return Err(SourceError::Auth { url: self.at.shown.clone(), reason: format!("the server refused user `{}`", self.user) });
        }
        let channel = session.channel_open_session().await.map_err(fail)?;
        channel.request_subsystem(true, "sftp").await.map_err(fail)?;
        SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| SourceError::Protocol { url: self.at.shown.clone(), reason: format!("no SFTP subsystem: {e}") })
    }

    fn sftp_error(&self, what: &str, error: russh_sftp::client::error::Error) -> SourceError {
        SourceError::Protocol { url: what.to_string(), reason: error.to_string() }
    }

    async fn listing(&self, sftp: &SftpSession) -> Result<Vec<FileEntry>, SourceError> {
        let modified = |m: &russh_sftp::client::fs::Metadata| m.modified().ok().map(DateTime::<Utc>::from);
        if let Some(file) = &self.at.single {
            let meta = sftp.metadata(self.at.path(file)).await.map_err(|e| self.sftp_error(&self.at.shown, e))?;
            return Ok(vec![FileEntry { name: file.clone(), modified: modified(&meta), size: Some(meta.len()) }]);
        }
        let prefix = self.selection.list_prefix();
        let dir = self.at.list_dir(&self.selection).unwrap_or_else(|| ".".into());
        let entries = sftp.read_dir(dir.clone()).await.map_err(|e| self.sftp_error(&format!("{} ({dir})", self.at.shown), e))?;
        Ok(entries
            .filter(|entry| entry.metadata().is_regular())
            .map(|entry| {
                let meta = entry.metadata();
                let name = if prefix.is_empty() { entry.file_name() } else { format!("{prefix}/{}", entry.file_name()) };
                FileEntry { name, modified: modified(&meta), size: Some(meta.len()) }
            })
            .collect())
    }

    async fn feed(&self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let sftp = self.connect().await?;
        let listing = self.listing(&sftp).await?;
        select::feed(&self.selection, listing, cursor, &self.at.shown, tx, &mut Session { inner: self, sftp: &sftp }).await?;
        let _ = sftp.close().await;
        Ok(())
    }
}

struct Session<'a> {
    inner: &'a Inner,
    sftp: &'a SftpSession,
}

impl Fetch for Session<'_> {
    async fn fetch(&mut self, file: &FileEntry, tx: &EventSender) -> Result<(), ReadError> {
        let shown = self.inner.at.shown_name(&file.name);
        let format = self.inner.options.format_of(&file.name)?;
        if format == FileFormat::Parquet {
            return Err(ReadError::Failed(SourceError::Config(format!(
                "{shown}: Parquet files are read from a file source, not over SFTP"
            ))));
        }
        let remote =
            self.sftp.open(self.inner.at.path(&file.name)).await.map_err(|e| ReadError::Failed(self.inner.sftp_error(&shown, e)))?;
        formats::read_async(remote, &shown, format, &self.inner.options, tx).await.map(drop)
    }
}

impl Source for SftpSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move { inner.feed(cursor, &tx).await })
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let inner = &self.inner;
            let sftp = inner.connect().await?;
            let count = inner.listing(&sftp).await?.len();
            let _ = sftp.close().await;
            let glob = inner.selection.glob.as_deref().unwrap_or("*");
            Ok(format!("OK: logged in to {} as {}; {count} file(s) match `{glob}`", inner.at.shown, inner.user))
        }
        .boxed()
    }
}
