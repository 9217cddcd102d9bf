//! A SQLite connection whose statements run on the calling thread, for the KV's point reads and
//! writes (`kv::DatabaseKv`), which every login, code and rate limit goes through, and for the
//! point reads on every request's path (`db::Reader`: the token check, a login's account).
//!
//! Why not sqlx: each sqlx statement is a hand-off to the connection's worker thread and back,
//! two thread wake-ups that, during a login flood, are taken from the hashing threads (a login
//! makes two KV calls and one account read). A point statement on a key in SQLite's page cache
//! takes tens of microseconds, less than the two wake-ups, so here it runs where it is asked
//! for.
//!
//! What keeps that from stalling a Tokio thread:
//! - the connection's busy timeout is zero, so a statement that meets another connection's
//!   write lock fails at once with SQLITE_BUSY, having changed nothing, and the job runs
//!   again on the blocking pool, where it waits for the lock with every connection's busy
//!   timeout;
//! - a job that finds the connection in use goes to the blocking pool too;
//! - its own commits never checkpoint (`wal_autocheckpoint = 0`): SQLite would copy the WAL
//!   into the database and fsync both within the commit that crosses the threshold. A
//!   checkpoint runs on the blocking pool instead every [`CHECKPOINT_EVERY`] writes;
//! - `synchronous = NORMAL` with WAL (as on every connection): a commit appends to the WAL
//!   without an fsync; a crash of the process loses nothing committed.
//!
//! Costly jobs (the sweep of expired rows) go straight to the blocking pool.

use std::{
    path::Path,
    str::FromStr as _,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, TryLockError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;

use super::{HELD_CACHE_KIB, SQLITE_BUSY_TIMEOUT};
use crate::error::{AppError, AppResult};

/// Writes between two checkpoints. SQLite's own default is a checkpoint once the WAL holds
/// 1,000 pages; a KV write adds three or four (the row's page and its two indexes'), so this
/// checkpoints about as often. The WAL starts over after a checkpoint that copied all of it,
/// so it stays within a few MiB.
const CHECKPOINT_EVERY: u64 = 128;

/// A SQLite connection that runs short jobs inline; see the module comment.
pub struct InlineSqlite {
    connection: Arc<Mutex<Connection>>,
    writes: AtomicU64,
}

/// Whether a job changes the database (and so counts towards the next checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Read,
    Write,
}

impl InlineSqlite {
    /// Opens the database at sqlx's `url` (a file; already created and migrated).
    pub fn open(url: &str) -> AppResult<Self> {
        Self::open_with(url, OpenFlags::default())
    }

    /// Opens the database at sqlx's `url` for reads only: a statement that writes fails.
    pub fn open_read_only(url: &str) -> AppResult<Self> {
        Self::open_with(url, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    }

    fn open_with(url: &str, flags: OpenFlags) -> AppResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(AppError::internal)?;
        let connection = connect(options.get_filename(), flags).map_err(AppError::internal)?;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), writes: AtomicU64::new(0) })
    }

    /// Runs the read `job` on this thread on the first free one of `connections`, starting at
    /// `first`; when none is free, or the database is busy, on the blocking pool on the
    /// `first`, as [`InlineSqlite::run`] does.
    pub async fn read_on_any<R, F>(connections: &[InlineSqlite], first: usize, mut job: F) -> AppResult<R>
    where
        R: Send + 'static,
        F: FnMut(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let count = connections.len();
        let Some(fallback) = connections.get(first % count.max(1)) else {
            return Err(AppError::internal_msg("no SQLite connection to read on"));
        };
        for connection in (0..count).filter_map(|i| connections.get((first + i) % count)) {
            job = match connection.try_here(job) {
                Ok(done) => return done.map_err(AppError::internal),
                Err(job) => job,
            };
        }
        fallback.on_blocking_pool(job).await?.map_err(AppError::internal)
    }

    /// Runs `job` on the connection: on this thread when the connection is free and no other
    /// connection holds the write lock, else on the blocking pool. `job` may run twice (the
    /// first time failing with SQLITE_BUSY, which leaves nothing written), and it always runs
    /// to its end, even when the caller stops waiting.
    pub async fn run<R, F>(&self, kind: Job, job: F) -> AppResult<R>
    where
        R: Send + 'static,
        F: FnMut(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let done = match self.try_here(job) {
            Ok(done) => done,
            Err(job) => self.on_blocking_pool(job).await?,
        };
        self.finished(kind, done)
    }

    /// Runs `job` on this thread if the connection is free; hands it back if the connection is
    /// in use or another connection holds the write lock.
    fn try_here<R, F>(&self, mut job: F) -> Result<rusqlite::Result<R>, F>
    where
        F: FnMut(&mut Connection) -> rusqlite::Result<R>,
    {
        let mut connection = match self.connection.try_lock() {
            Ok(connection) => connection,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(job),
        };
        match job(&mut connection) {
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => Err(job),
            done => Ok(done),
        }
    }

    /// Runs `job` on the blocking pool, waiting for the connection and the write lock.
    pub async fn run_blocking<R, F>(&self, kind: Job, job: F) -> AppResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let done = self.on_blocking_pool(job).await?;
        self.finished(kind, done)
    }

    async fn on_blocking_pool<R, F>(&self, job: F) -> AppResult<rusqlite::Result<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = lock(&connection);
            connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
            let done = job(&mut connection);
            // The job's outcome stands whatever this says (it may have committed).
            if let Err(e) = connection.busy_timeout(Duration::ZERO) {
                tracing::warn!(error = %e, "an inline SQLite connection kept its busy timeout");
            }
            done
        })
        .await
        .map_err(AppError::internal)
    }

    fn finished<R>(&self, kind: Job, done: rusqlite::Result<R>) -> AppResult<R> {
        if kind == Job::Write && done.is_ok() {
            let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
            if writes.is_multiple_of(CHECKPOINT_EVERY) {
                self.spawn_checkpoint();
            }
        }
        done.map_err(AppError::internal)
    }

    /// A PASSIVE checkpoint on the blocking pool, on this connection: its writes wait for it
    /// (on the blocking pool, as when the connection is in use), so the checkpoint copies the
    /// whole WAL and the next write starts the WAL over. (On a connection of its own it ran
    /// behind a stream of writes and never caught up: the WAL grew by every write.)
    fn spawn_checkpoint(&self) {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let connection = lock(&connection);
            if let Err(e) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "a checkpoint of the KV's writes failed");
            }
        });
    }
}

/// A connection with every connection's settings (`db::sqlite_options`): WAL, `synchronous =
/// NORMAL`, foreign keys, and a held connection's page cache; no checkpoints of its own.
fn connect(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(path, flags)?;
    // Zero: SQLITE_BUSY at once, and the job goes to the blocking pool (`InlineSqlite::run`).
    connection.busy_timeout(Duration::ZERO)?;
    if connection.is_readonly(rusqlite::MAIN_DB)? {
        // A reader follows the file's journal mode (WAL, set by the writers) and writes nothing.
        connection.pragma_update(None, "cache_size", -HELD_CACHE_KIB)?;
        return Ok(connection);
    }
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "normal")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(None, "cache_size", -HELD_CACHE_KIB)?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}

/// A poisoned lock still holds a usable connection: a job that panicked either committed or
/// left its transaction to be rolled back when it was dropped.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
