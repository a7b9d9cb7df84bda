//! Leases on PostgreSQL (`--leases postgres://…`): "a synchronization runs on at most one machine at a
//! time" for processes that share no disk, where the run lock (a `flock`) cannot reach. A lease is a
//! row that its holder renews; a holder that dies stops renewing, and another machine may take the
//! lease once it has expired, within one lease time. Every time is the database's clock, so machines
//! whose clocks disagree still agree on who holds what.
//!
//! A holder that cannot renew (the database is gone, or the row was taken) reports the lease lost
//! before it could have expired, so its run stops before another machine may start one. The same
//! database also keeps each scheduled synchronization's last firing, so a schedule fires once across
//! every replica (compare-and-set on a firing count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// The schema version this build creates and understands.
const VERSION: i32 = 1;

/// The migrations, by version: each is applied once, in order, under a lock all starters share.
const MIGRATIONS: [&str; 1] = ["CREATE TABLE {schema}.leases (
        synchronization text PRIMARY KEY,
        holder text NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE {schema}.schedule (
        synchronization text PRIMARY KEY,
        fires bigint NOT NULL,
        last_fired_ms bigint NOT NULL,
        fired_by text NOT NULL
    );"];

/// A connection to the leases' database, shared by every run of this process.
pub struct Leases {
    url: String,
    shown: String,
    schema: String,
    /// How long a lease lasts without renewal.
    ttl: Duration,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Names this process in the leases it holds (host, pid and a random part).
    process: String,
}

/// A synchronization's schedule as every replica sees it: how often it fired, and when last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub fires: i64,
    pub last_fired_ms: i64,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn pg(shown: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |error| StoreError::Location(format!("leases at {shown}: {}", crate::secrets::scrub(&error.to_string())))
}

impl Leases {
    /// Connects, creates or migrates the schema (`?schema=NAME` in the URL, default `syncline`), and
    /// refuses a schema a newer syncline made.
    pub async fn connect(location: &str, ttl: Duration) -> Result<Leases, StoreError> {
        let mut url = url::Url::parse(location).map_err(|e| StoreError::Location(format!("leases: `{location}` is not a URL: {e}")))?;
        let mut shown_url = url.clone();
        let _ = shown_url.set_password(None);
        let shown = shown_url.to_string();
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(StoreError::Location(format!("leases: `{shown}` is not a postgres:// URL")));
        }
        let schema = url.query_pairs().find(|(k, _)| k == "schema").map(|(_, v)| v.into_owned()).unwrap_or_else(|| "syncline".into());
        let rest: Vec<(String, String)> = url.query_pairs().filter(|(k, _)| k != "schema").map(|(k, v)| (k.into(), v.into())).collect();
        url.set_query(None);
        if !rest.is_empty() {
            url.query_pairs_mut().extend_pairs(rest);
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let process = format!("{host}/{}/{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let leases = Leases { url: url.to_string(), shown, schema, ttl, client: tokio::sync::Mutex::new(None), process };
        leases.migrate().await?;
        Ok(leases)
    }

    /// Where the leases are, for messages (without the password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", quote(&self.schema))
    }

    /// The connection, opened again when the last one closed.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let connect = tokio_postgres::connect(&self.url, NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| StoreError::Location(format!("leases at {}: no answer within 10 s", self.shown)))?
            .map_err(pg(&self.shown))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let error = pg(&self.shown);
        let client = self.client().await?;
        let schema = quote(&self.schema);
        // One starter at a time migrates; the others wait, then find the work done.
        client.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(hashtext('syncline-migrations'))").await.map_err(&error)?;
        let result = async {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema};
                     CREATE TABLE IF NOT EXISTS {schema}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                ))
                .await
                .map_err(&error)?;
            let row = client.query_one(&format!("SELECT coalesce(max(version), 0) FROM {schema}.migrations"), &[]).await.map_err(&error)?;
            let at: i32 = row.get(0);
            if at > VERSION {
                return Err(StoreError::Location(format!(
                    "leases at {}: schema `{}` is at version {at}, made by a newer syncline (this one knows {VERSION})",
                    self.shown, self.schema
                )));
            }
            for (version, sql) in MIGRATIONS.iter().enumerate().map(|(i, sql)| (i as i32 + 1, sql)).filter(|(v, _)| *v > at) {
                client.batch_execute(&sql.replace("{schema}", &schema)).await.map_err(&error)?;
                client.execute(&format!("INSERT INTO {schema}.migrations (version) VALUES ($1)"), &[&version]).await.map_err(&error)?;
            }
            Ok(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        client.batch_execute(end).await.map_err(&error)?;
        result
    }

    /// Whether the database answers.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await.map_err(pg(&self.shown))?;
        Ok(())
    }

    /// Takes the lease of `sync` if nobody holds it (or its holder let it expire); `None` when held.
    pub async fn acquire(self: &Arc<Self>, sync: &str) -> Result<Option<Lease>, StoreError> {
        let holder = format!("{}/{}", self.process, &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let client = self.client().await?;
        let asked = Instant::now();
        let taken = client
            .query_opt(
                &format!(
                    "INSERT INTO {table} AS l (synchronization, holder, expires_at)
                     VALUES ($1, $2, now() + make_interval(secs => $3))
                     ON CONFLICT (synchronization) DO UPDATE SET holder = EXCLUDED.holder, acquired_at = now(), expires_at = EXCLUDED.expires_at
                     WHERE l.expires_at < now()
                     RETURNING holder",
                    table = self.table("leases")
                ),
                &[&sync, &holder, &self.ttl.as_secs_f64()],
            )
            .await
            .map_err(pg(&self.shown))?;
        if taken.is_none() {
            return Ok(None);
        }
        let lost = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(self), sync.to_string(), holder.clone(), lost.clone(), asked + self.ttl));
        Ok(Some(Lease { leases: Arc::clone(self), sync: sync.to_string(), holder, lost, heartbeat: Some(heartbeat) }))
    }

    /// Who holds the lease of `sync` now (an unexpired one), if anyone.
    pub async fn holder(&self, sync: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT holder FROM {} WHERE synchronization = $1 AND expires_at >= now()", self.table("leases")), &[&sync])
            .await
            .map_err(pg(&self.shown))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// How often, and when last, `sync`'s schedule fired on any replica.
    pub async fn fired(&self, sync: &str) -> Result<Option<Fired>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT fires, last_fired_ms FROM {} WHERE synchronization = $1", self.table("schedule")), &[&sync])
            .await
            .map_err(pg(&self.shown))?;
        Ok(row.map(|r| Fired { fires: r.get(0), last_fired_ms: r.get(1) }))
    }

    /// Claims the next firing of `sync`'s schedule, given what `fired` said: true for exactly one of
    /// the replicas that saw the same count.
    pub async fn claim_firing(&self, sync: &str, seen: Option<Fired>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let seen = seen.map(|f| f.fires).unwrap_or(0);
        let claimed = client
            .query_opt(
                &format!(
                    "INSERT INTO {table} AS s (synchronization, fires, last_fired_ms, fired_by)
                     VALUES ($1, 1, (extract(epoch from clock_timestamp()) * 1000)::bigint, $3)
                     ON CONFLICT (synchronization) DO UPDATE
                     SET fires = s.fires + 1, last_fired_ms = EXCLUDED.last_fired_ms, fired_by = EXCLUDED.fired_by
                     WHERE s.fires = $2
                     RETURNING fires",
                    table = self.table("schedule")
                ),
                &[&sync, &seen, &self.process],
            )
            .await
            .map_err(pg(&self.shown))?;
        // An insert claims only when nobody had fired it yet.
        Ok(claimed.is_some_and(|row| row.get::<_, i64>(0) == seen + 1))
    }
}

/// A held lease: renewed in the background until released or dropped.
pub struct Lease {
    leases: Arc<Leases>,
    sync: String,
    holder: String,
    lost: CancellationToken,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Cancelled when the lease is lost: the run must stop.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Gives the lease back at once, so another machine need not wait for it to expire.
    pub async fn release(mut self) {
        self.stop();
        if let Ok(client) = self.leases.client().await {
            let sql = format!("DELETE FROM {} WHERE synchronization = $1 AND holder = $2", self.leases.table("leases"));
            let _ = client.execute(&sql, &[&self.sync, &self.holder]).await;
        }
    }

    fn stop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released explicitly (a panic, an early return): give it back from a task, else it
        // expires within the lease time.
        if self.heartbeat.is_none() {
            return;
        }
        self.stop();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (leases, sync, holder) = (Arc::clone(&self.leases), self.sync.clone(), self.holder.clone());
            runtime.spawn(async move {
                if let Ok(client) = leases.client().await {
                    let sql = format!("DELETE FROM {} WHERE synchronization = $1 AND holder = $2", leases.table("leases"));
                    let _ = client.execute(&sql, &[&sync, &holder]).await;
                }
            });
        }
    }
}

/// Renews the lease three times a lease time; declares it lost when a renewal finds another holder,
/// or when renewals have failed for so long that it may have expired. Past `valid_until` the lease
/// may have expired in the database: the holder must have stopped by then.
async fn heartbeat(leases: Arc<Leases>, sync: String, holder: String, lost: CancellationToken, mut valid_until: Instant) {
    let every = leases.ttl / 3;
    let sql = format!(
        "UPDATE {} SET expires_at = now() + make_interval(secs => $3) WHERE synchronization = $1 AND holder = $2",
        leases.table("leases")
    );
    loop {
        // Stop a margin before the lease could expire: the run needs that time to stop writing.
        let margin = (leases.ttl / 10).max(Duration::from_millis(100));
        let deadline = valid_until.checked_sub(margin).unwrap_or(valid_until);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                tracing::warn!(synchronization = %sync, "lease not renewed in time: the run stops");
                lost.cancel();
                return;
            }
        }
        let asked = Instant::now();
        let renewed = async {
            let client = leases.client().await?;
            client.execute(&sql, &[&sync, &holder, &leases.ttl.as_secs_f64()]).await.map_err(pg(&leases.shown))
        };
        match tokio::time::timeout(every, renewed).await {
            Ok(Ok(1)) => valid_until = asked + leases.ttl,
            Ok(Ok(_)) => {
                tracing::warn!(synchronization = %sync, "lease taken by another holder: the run stops");
                lost.cancel();
                return;
            }
            // The database did not answer: try again until the lease could have expired.
            Ok(Err(error)) => tracing::warn!(synchronization = %sync, "lease not renewed: {error}"),
            Err(_) => tracing::warn!(synchronization = %sync, "lease not renewed: no answer in time"),
        }
    }
}
