//! The FTP source (`type: ftp`): files on an FTP server (`ftp://host:21/dir`), or FTPS with explicit
//! TLS (`ftps://`, verified against the system's roots unless `tls: {verify: false}`). Passive mode by
//! default. Files are picked by the `path` glob in the location's directory and streamed through their
//! format's reader as they download.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use suppaftp::list::{File, ListParser};
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream, ImplAsyncFtpStream, TokioTlsStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};

use serde::{Deserialize, Serialize};

use crate::config::{FileFormat, Flag, Secret, SourceConfigDef, SourceDef, enabled, is_enabled};
use crate::sources::feed::spawn_feed;
use crate::sources::file::remote::Remote;
use crate::sources::file::select::{self, Fetch, FileEntry, Selection};
use crate::sources::formats::{self, EventSender, FormatOptions, ReadError};
use crate::sources::registry::{
    ConnectorSettings, FILE_KEYS, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of, validate_files,
};
use crate::sources::{Source, SourceError, SourceStream, tls};

pub struct FtpSource {
    inner: Arc<Inner>,
}

struct Inner {
    at: Remote,
    secure: bool,
    user: String,
    passive: bool,
    verify: bool,
    connect_timeout: Duration,
    selection: Selection,
    options: FormatOptions,
}

/// The ftp source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "ftp",
    label: "FTP / FTPS",
    schemes: &["ftp", "ftps"],
    local_paths: false,
    keys: FILE_KEYS,
    validate: validate_files,
    build: |def, config, _| Ok(Box::new(FtpSource::new(def, config)?)),
    probe: None,
    settings: Some(SettingsSchema { keys: &["passive"], secrets: &[], read: read_settings::<FtpSettings> }),
    sync_settings: None,
    runs_programs: false,
    names_ids: false,
    fields: &[FormField { key: "passive", label: "Passive mode", input: Input::Check, placeholder: "" }],
};

/// The keys only an ftp source reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FtpSettings {
    /// Passive mode (default true); `false` for active mode.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub passive: Flag,
}

impl ConnectorSettings for FtpSettings {}

impl FtpSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<FtpSource, SourceError> {
        let selection = Selection::from_config(config)?;
        let at = Remote::parse(def, &selection, 21)?;
        let settings: &FtpSettings = settings_of(def)?;
        Ok(FtpSource {
            inner: Arc::new(Inner {
                secure: def.location.starts_with("ftps:"),
                user: at.user.clone().unwrap_or_else(|| "anonymous".into()),
                at,
                passive: settings.passive.0,
                verify: def.tls.verify.0,
                connect_timeout: def.connect_timeout.map_or(Duration::from_secs(10), |s| s.0),
                selection,
                options: FormatOptions { limits: def.limits, ..FormatOptions::from_config(config)? },
            }),
        })
    }
}

/// An FTP failure in the source's words: login refused, TLS refused, server unreachable, or a reply.
fn ftp_error(shown: &str, error: FtpError) -> SourceError {
    let url = shown.to_string();
    match error {
        FtpError::ConnectionError(e) => SourceError::Connect { url, reason: e.to_string() },
        FtpError::SecureError(reason) => SourceError::Tls { url, reason },
        FtpError::UnexpectedResponse(r) if r.status == Status::NotLoggedIn => {
            SourceError::Auth { url, reason: String::from_utf8_lossy(&r.body).trim().to_string() }
        }
        FtpError::UnexpectedResponse(r) => {
            SourceError::Protocol { url, reason: format!("the server answered {}", String::from_utf8_lossy(&r.body).trim()) }
        }
        other => SourceError::Protocol { url, reason: other.to_string() },
    }
}

impl Inner {
    async fn address(&self) -> Result<SocketAddr, SourceError> {
        let unreachable = |reason: String| SourceError::Connect { url: self.at.shown.clone(), reason };
        tokio::net::lookup_host((self.at.host.as_str(), self.at.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("the host name has no address".into()))
    }

    async fn connect_plain(&self) -> Result<suppaftp::tokio::AsyncFtpStream, SourceError> {
        let address = self.address().await?;
        let ftp = suppaftp::tokio::AsyncFtpStream::connect_timeout(address, self.connect_timeout)
            .await
            .map_err(|e| ftp_error(&self.at.shown, e))?;
        self.login(ftp).await
    }

    /// Explicit FTPS: the control connection turns to TLS (`AUTH TLS`) before the login.
    async fn connect_secure(&self) -> Result<AsyncRustlsFtpStream, SourceError> {
        let address = self.address().await?;
        let fail = |e| ftp_error(&self.at.shown, e);
        let ftp = AsyncRustlsFtpStream::connect_timeout(address, self.connect_timeout).await.map_err(fail)?;
        let connector = AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(tls::client_config(self.verify)));
        let ftp = ftp.into_secure(connector, &self.at.host).await.map_err(fail)?;
        self.login(ftp).await
    }

    /// Logs in and switches to binary transfers in the configured mode.
    async fn login<T: TokioTlsStream + Send>(&self, mut ftp: ImplAsyncFtpStream<T>) -> Result<ImplAsyncFtpStream<T>, SourceError> {
        let fail = |e| ftp_error(&self.at.shown, e);
        if !self.passive {
            ftp = ftp.active_mode(self.connect_timeout);
        }
        let password = self.at.password.as_ref().map_or("", Secret::expose);
        ftp.login(self.user.as_str(), password).await.map_err(fail)?;
        ftp.transfer_type(FileType::Binary).await.map_err(fail)?;
        Ok(ftp)
    }

    async fn listing<T: TokioTlsStream + Send>(&self, ftp: &mut ImplAsyncFtpStream<T>) -> Result<Vec<FileEntry>, SourceError> {
        let fail = |e| ftp_error(&self.at.shown, e);
        if let Some(file) = &self.at.single {
            let remote = self.at.path(file);
            let size = ftp.size(&remote).await.map_err(fail)?;
            let modified = ftp.mdtm(&remote).await.ok().map(|t| Utc.from_utc_datetime(&t));
            return Ok(vec![FileEntry { name: file.clone(), modified, size: Some(size as u64) }]);
        }
        let prefix = self.selection.list_prefix();
        let dir = self.at.list_dir(&self.selection);
        let dir_arg = dir.as_deref();
        // MLSD gives exact, machine-readable facts; servers without it get LIST, parsed either way.
        let files: Vec<File> = match ftp.mlsd(dir_arg).await {
            Ok(lines) => lines.iter().filter_map(|l| ListParser::parse_mlsd(l).ok()).collect(),
            Err(_) => ftp
                .list(dir_arg)
                .await
                .map_err(fail)?
                .iter()
                .filter_map(|l| ListParser::parse_posix(l).or_else(|_| ListParser::parse_dos(l)).ok())
                .collect(),
        };
        let mut entries = Vec::new();
        for file in files.iter().filter(|f| f.is_file()) {
            let name = if prefix.is_empty() { file.name().to_string() } else { format!("{prefix}/{}", file.name()) };
            if !self.selection.pattern.as_ref().is_none_or(|p| p.is_match(&name)) {
                continue;
            }
            // A LIST time may be to the minute only: ask for the exact one, which minimumAge needs.
            let modified = match ftp.mdtm(self.at.path(&name)).await {
                Ok(t) => Some(Utc.from_utc_datetime(&t)),
                Err(_) => Some(chrono::DateTime::<Utc>::from(file.modified())),
            };
            entries.push(FileEntry { name, modified, size: Some(file.size() as u64) });
        }
        Ok(entries)
    }

    /// How many files match, and the server's greeting, for `check`.
    async fn summary<T: TokioTlsStream + Send>(&self, mut ftp: ImplAsyncFtpStream<T>) -> Result<(usize, String), SourceError> {
        let count = self.listing(&mut ftp).await?.len();
        let welcome = ftp.get_welcome_msg().unwrap_or("").trim().to_string();
        let _ = ftp.quit().await;
        Ok((count, welcome))
    }

    async fn feed<T: TokioTlsStream + Send + 'static>(
        &self,
        mut ftp: ImplAsyncFtpStream<T>,
        cursor: Option<String>,
        tx: &EventSender,
    ) -> Result<(), ReadError> {
        let listing = self.listing(&mut ftp).await?;
        select::feed(&self.selection, listing, cursor, &self.at.shown, tx, &mut Session { inner: self, ftp: &mut ftp }).await?;
        let _ = ftp.quit().await;
        Ok(())
    }
}

/// A logged-in connection reading the files of one run, one transfer at a time.
struct Session<'a, T: TokioTlsStream + Send> {
    inner: &'a Inner,
    ftp: &'a mut ImplAsyncFtpStream<T>,
}

impl<T: TokioTlsStream + Send + 'static> Fetch for Session<'_, T> {
    async fn fetch(&mut self, file: &FileEntry, tx: &EventSender) -> Result<(), ReadError> {
        let shown = self.inner.at.shown_name(&file.name);
        let format = self.inner.options.format_of(&file.name)?;
        if format == FileFormat::Parquet {
            return Err(ReadError::Failed(SourceError::Config(format!(
                "{shown}: Parquet files are read from a file source, not over FTP"
            ))));
        }
        let fail = |e| ReadError::Failed(ftp_error(&shown, e));
        let download = self.ftp.retr_as_stream(self.inner.at.path(&file.name)).await.map_err(fail)?;
        let download = formats::read_async(download, &shown, format, &self.inner.options, tx).await?;
        // The server's closing reply is the only word on whether the whole file arrived.
        download.finish().await.map_err(fail)
    }
}

impl Source for FtpSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move {
            if inner.secure {
                let ftp = inner.connect_secure().await?;
                inner.feed(ftp, cursor, &tx).await
            } else {
                let ftp = inner.connect_plain().await?;
                inner.feed(ftp, cursor, &tx).await
            }
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let inner = &self.inner;
            let (count, welcome) = if inner.secure {
                inner.summary(inner.connect_secure().await?).await?
            } else {
                inner.summary(inner.connect_plain().await?).await?
            };
            let glob = inner.selection.glob.as_deref().unwrap_or("*");
            Ok(format!("OK: logged in to {} as {} ({welcome}); {count} file(s) match `{glob}`", inner.at.shown, inner.user))
        }
        .boxed()
    }
}
