//! The categories a failed job is filed under (a job's `error_category`), shared by every stage.

use serde::{Deserialize, Serialize};

/// Why a job failed, coarsely, so that callers can branch on it (retry later, fix credentials, fix the
/// pipeline file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// The pipeline file or the run's options are wrong.
    Config,
    /// The source could not be reached.
    Connection,
    /// The source did not answer in time.
    Timeout,
    /// The source's TLS certificate was refused.
    Tls,
    /// The source refused the credentials (401, 403).
    Auth,
    /// The source kept answering 429.
    RateLimited,
    /// The source answered an HTTP error.
    Http,
    /// The source answered something that is not the expected format.
    Format,
    /// The source answered an error of its own protocol (an FTP reply, an SQL error).
    Protocol,
    /// The target could not be written.
    Target,
    /// The state directory could not be read or written.
    State,
    /// The run was cancelled.
    Cancelled,
    /// The run would have deleted more objects than the synchronization allows.
    DeleteGuard,
    /// An input was larger or deeper than one of the source's `limits`.
    Limit,
    /// Every record of the run failed (each with its own error).
    Records,
    /// A bug.
    Internal,
}

impl ErrorCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Config => "config",
            ErrorCategory::Connection => "connection",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Tls => "tls",
            ErrorCategory::Auth => "auth",
            ErrorCategory::RateLimited => "rate_limited",
            ErrorCategory::Http => "http",
            ErrorCategory::Format => "format",
            ErrorCategory::Protocol => "protocol",
            ErrorCategory::Target => "target",
            ErrorCategory::State => "state",
            ErrorCategory::Cancelled => "cancelled",
            ErrorCategory::DeleteGuard => "delete_guard",
            ErrorCategory::Limit => "limit",
            ErrorCategory::Records => "records",
            ErrorCategory::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
