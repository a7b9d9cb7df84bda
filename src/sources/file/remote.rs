//! Where a file server's files are: host, port, credentials and directory from `location` (and the
//! source's `username`/`password`, which win over the URL's). Shared by FTP and SFTP.

use crate::config::{Secret, SourceDef};
use crate::sources::SourceError;
use crate::sources::file::select::Selection;

pub struct Remote {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The directory on the server (empty: the login directory).
    pub dir: String,
    /// The file itself, when `location` names one (no `path` glob).
    pub single: Option<String>,
    /// The location without its password, for messages.
    pub shown: String,
}

impl Remote {
    pub fn parse(def: &SourceDef, selection: &Selection, default_port: u16) -> Result<Remote, SourceError> {
        let url = url::Url::parse(&def.location)
            .map_err(|e| SourceError::Config(format!("`{}` is not a URL: {e}", crate::secrets::mask_unparsed_url(&def.location))))?;
        let host = url.host_str().ok_or_else(|| SourceError::Config(format!("a {} location needs a host", url.scheme())))?.to_string();
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let user = def.username.clone().or_else(|| (!url.username().is_empty()).then(|| decode(url.username())));
        let password = def.password.clone().or_else(|| url.password().map(|p| Secret::new(decode(p))));
        let path = decode(url.path()).trim_end_matches('/').to_string();
        let (dir, single) = match (&selection.glob, path.rsplit_once('/')) {
            (None, Some((dir, file))) if !file.is_empty() => (dir.to_string(), Some(file.to_string())),
            _ => (path, None),
        };
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        Ok(Remote {
            host,
            port: url.port().unwrap_or(default_port),
            user,
            password,
            dir,
            single,
            shown: shown.to_string().trim_end_matches('/').to_string(),
        })
    }

    /// The server path of a file named relative to the directory.
    pub fn path(&self, name: &str) -> String {
        if self.dir.is_empty() { name.to_string() } else { format!("{}/{name}", self.dir) }
    }

    /// The directory to list for `selection`'s glob (`None`: the login directory).
    pub fn list_dir(&self, selection: &Selection) -> Option<String> {
        let prefix = selection.list_prefix();
        let dir = match (self.dir.is_empty(), prefix.is_empty()) {
            (true, _) => prefix,
            (false, true) => self.dir.clone(),
            (false, false) => format!("{}/{prefix}", self.dir),
        };
        (!dir.is_empty()).then_some(dir)
    }

    /// A file as the user knows it, for messages.
    pub fn shown_name(&self, name: &str) -> String {
        if self.single.is_some() { self.shown.clone() } else { format!("{}/{name}", self.shown) }
    }
}
