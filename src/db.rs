//! The database connection: connect (creating the SQLite file if needed), migrate, and the
//! translation of constraint violations that every repo shares.

mod inline;
mod loopback;
mod reader;
mod rows;
mod template;

use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait, RuntimeErr, Select,
    SqlErr,
    sqlx::sqlite::{SqliteConnectOptions, SqliteError, SqliteJournalMode, SqliteSynchronous},
};

pub use self::{
    inline::{InlineSqlite, Job},
    loopback::resolve_url,
    reader::Reader,
    rows::{ModelColumns, Typed},
    template::Template,
};
use crate::error::{AppError, AppResult};

/// How long a SQLite statement waits for another connection's write lock, on every connection
/// (sqlx's and the KV's, `InlineSqlite`).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of a SQLite connection held for the process's life (`InlineSqlite`: the KV's, and
/// the readers of every request's token check and login lookup), in KiB. With the pool's 64 MiB
/// the KV's connection kept every page a login flood wrote (two rows a login, live for the
/// code's lifetime), so the process grew by about 1 KiB a login up to 64 MiB. The pages these
/// point statements reuse (the B-trees' upper levels, the newest rows) fit in 8 MiB; any other
/// is a read from the file system's cache.
const HELD_CACHE_KIB: i64 = 8192;

/// How long opening a connection, or waiting for one from the pool, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url` with at most `max_connections`.
///
/// SQLite runs in WAL mode with `synchronous = NORMAL` (durable across process crashes, and
/// the mode SQLite recommends with WAL), a busy timeout so writers queue instead of failing,
/// and foreign keys on; set per connection, since SQLite keeps pragmas per connection.
pub async fn connect(url: &str, max_connections: u32) -> AppResult<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        // No ping before every checkout: it doubled the round trips of the hottest path (each
        // query is one). A connection the server dropped fails the one request that meets it
        // (INTERNAL, nothing written) and leaves the pool.
        .test_before_acquire(false)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(sqlite_options);
    // Instances starting together on a new SQLite file each switch it to WAL as they open their
    // first connection, and SQLite can refuse one of two such switches at once, without waiting
    // out the busy timeout (seen as "database is locked" at start, one start in twenty under
    // load): such an open is tried again, within the connect timeout.
    let started = Instant::now();
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if is_sqlite_busy(&e) && started.elapsed() < CONNECT_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            connected => return connected.map_err(AppError::internal),
        }
    }
}

/// Whether `err` is SQLite's SQLITE_BUSY ("database is locked", any of its extended codes).
fn is_sqlite_busy(err: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(err)) = err else { return false };
    let Some(sqlite) = err.as_database_error().and_then(|e| e.try_downcast_ref::<SqliteError>()) else { return false };
    let code = sea_orm::sqlx::error::DatabaseError::code(sqlite);
    code.and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// SQLite's primary result code for a lock held by another connection.
const SQLITE_BUSY: i32 = 5;

/// Every SQLite connection's settings (SQLite keeps pragmas per connection).
fn sqlite_options(sqlite: SqliteConnectOptions) -> SqliteConnectOptions {
    sqlite
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        // 64 MiB of page cache per connection (SQLite's default is 2 MB): a directory search
        // that scans the users table stays in memory.
        .pragma("cache_size", "-65536")
}

/// Applies every pending migration over a connection of its own, closed afterwards, so that no
/// pooled SQLite connection holds a schema from before the migration.
///
/// Instances starting together take turns, so the first applies the migrations and the others
/// find nothing left to do: on PostgreSQL that one connection holds an advisory lock while it
/// migrates; on SQLite it migrates inside one `BEGIN IMMEDIATE` transaction (the file's write
/// lock, which also makes the whole run atomic), and the others wait on the busy timeout.
pub async fn migrate(url: &str) -> AppResult<()> {
    let db = connect(url, 1).await?;
    let (take, release_ok, release_failed) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            (format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"), unlock.clone(), unlock)
        }
        _ => ("BEGIN IMMEDIATE".to_owned(), "COMMIT".to_owned(), "ROLLBACK".to_owned()),
    };
    db.execute_unprepared(&take).await.map_err(AppError::internal)?;
    let migrated = Migrator::up(&db, None).await.map_err(AppError::internal);
    let release = if migrated.is_ok() { release_ok } else { release_failed };
    let released = db.execute_unprepared(&release).await.map_err(AppError::internal);
    migrated?;
    released?;
    db.close().await.map_err(AppError::internal)
}

/// The advisory lock key idgate's migrations hold on PostgreSQL ("idgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6964_6761_7465;

/// The row that `select`, a filter on a unique key, names.
///
/// Not `one()`: it binds `LIMIT ?`, and SQLite's planner reads a bound limit's value, so it
/// prepares such a statement again every time it runs (in profiles of a login flood, one
/// seventh of the SQLite thread's time). A unique key needs no limit.
pub async fn unique_row<E: EntityTrait>(select: Select<E>, db: &impl ConnectionTrait) -> AppResult<Option<E::Model>> {
    Ok(select.all(db).await.map_err(AppError::internal)?.into_iter().next())
}

/// The violated unique constraint's description (names the index on PostgreSQL, the column on
/// SQLite), if `err` is a unique violation.
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) => Some(detail),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Statement;

    use super::*;

    #[tokio::test]
    async fn a_held_connection_keeps_a_smaller_page_cache_than_the_pool() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cache.db").display());
        let pool = connect(&url, 1).await.unwrap_or_else(|e| panic!("{e}"));
        let pooled = pool
            .query_one_raw(Statement::from_string(pool.get_database_backend(), "PRAGMA cache_size"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .and_then(|row| row.try_get_by_index::<i64>(0).ok());
        let reader = Reader::new(&url, DbBackend::Sqlite, 1).unwrap_or_else(|e| panic!("{e:?}"));
        let read = Statement::from_string(DbBackend::Sqlite, "PRAGMA cache_size");
        let held = reader.rows(read, vec![("cache_size", sea_orm::ColumnType::BigInteger)].into()).await;
        let held = match held.unwrap_or_else(|e| panic!("{e:?}")).first().map(Vec::as_slice) {
            Some([sea_orm::Value::BigInt(size)]) => *size,
            other => panic!("{other:?}"),
        };
        let inline = InlineSqlite::open(&url).unwrap_or_else(|e| panic!("{e:?}"));
        let inline = inline.run(Job::Read, |c| c.query_row("PRAGMA cache_size", [], |row| row.get::<_, i64>(0))).await;
        // Negative: KiB rather than pages.
        assert_eq!((pooled, held, inline.ok()), (Some(-65536), Some(-8192), Some(-8192)));
    }
}
