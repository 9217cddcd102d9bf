//! Connections of their own for the reads on every request's path: the token check's session
//! read and a login's account read. sqlx's pool pings each connection it takes back, so a
//! pooled query is two round trips: two hand-offs to SQLite's worker thread, or a query and a
//! Sync/ReadyForQuery exchange with PostgreSQL. sqlx 0.9 has no setting to skip that ping;
//! these connections never go back to a pool, so they are never pinged.
//!
//! Only single statements that read go through here, never a transaction, so a request
//! cancelled halfway leaves nothing open: sqlx drains a PostgreSQL connection's pending answers
//! before its next statement, and resets a SQLite statement when its iterator drops. A
//! connection that fails is dropped; a read that failed on a connection opened earlier runs
//! once more on a new one, so a database restart costs the requests after it nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement,
    sqlx::{
        self, ConnectOptions as _, PgConnection, SqliteConnection, postgres::PgConnectOptions,
        sqlite::SqliteConnectOptions,
    },
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

/// A few held connections for reads, used in turns; see the module comment.
pub struct Reader {
    backend: DbBackend,
    url: String,
    /// Each slot holds one connection, opened at first use and again after a failure. A read
    /// takes a free slot, starting from the next in turn, or waits for that one.
    slots: Box<[Mutex<Option<Held>>]>,
    next: AtomicUsize,
}

enum Held {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Reader {
    /// A reader of `connections` connections (at least one) to `url`, a database of `backend`,
    /// each opened at its first use.
    pub fn new(url: &str, backend: DbBackend, connections: usize) -> Self {
        let slots = (0..connections.max(1)).map(|_| Mutex::new(None)).collect();
        Self { backend, url: url.to_owned(), slots, next: AtomicUsize::new(0) }
    }

    /// A new connection with a held connection's settings, within the pool's connect timeout,
    /// opened read-only: a statement that writes fails even when it comes as a query.
    async fn open(&self) -> Result<Held, sqlx::Error> {
        let connecting = async {
            Ok(match self.backend {
                DbBackend::Sqlite => {
                    let options: SqliteConnectOptions = self.url.parse()?;
                    let options = super::held_sqlite_options(options).read_only(true);
                    Held::Sqlite(options.disable_statement_logging().connect().await?)
                }
                _ => {
                    let options: PgConnectOptions = self.url.parse()?;
                    let options = options.options([("default_transaction_read_only", "on")]);
                    Held::Postgres(options.disable_statement_logging().connect().await?)
                }
            })
        };
        let timed_out = || sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"));
        tokio::time::timeout(super::CONNECT_TIMEOUT, connecting).await.unwrap_or_else(|_| Err(timed_out()))
    }

    async fn fetch_all(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        // A free slot if there is one, starting from the next in turn; else wait for that one.
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..self.slots.len()).find_map(|i| self.slots.get((turn + i) % self.slots.len())?.try_lock().ok());
        let mut held = match free {
            Some(held) => held,
            None => match self.slots.get(turn % self.slots.len()) {
                Some(slot) => slot.lock().await,
                None => return Err(DbErr::Custom("a reader without connections".into())),
            },
        };
        let failed = |error: sqlx::Error| DbErr::Query(RuntimeErr::SqlxError(error.into()));
        // A connection that sat in its slot may have died meanwhile (a database restart, a
        // server's idle timeout): a read is safe to run twice, so it runs once more on a new
        // connection before the request sees an error.
        let mut attempts = if held.is_some() { 2 } else { 1 };
        loop {
            attempts -= 1;
            if held.is_none() {
                *held = Some(self.open().await.map_err(failed)?);
            }
            let Some(connection) = held.as_mut() else { return Err(DbErr::Custom("no reader connection".into())) };
            // The connection stays in its slot while the statement runs: a request cancelled
            // halfway leaves it there, and its next statement first reads what this one left.
            match run(connection, &statement).await {
                Ok(rows) => return Ok(rows),
                Err(error) => {
                    *held = None;
                    if attempts == 0 {
                        return Err(failed(error));
                    }
                }
            }
        }
    }
}

/// Runs `statement` on `connection` and collects its rows.
async fn run(connection: &mut Held, statement: &Statement) -> Result<Vec<QueryResult>, sqlx::Error> {
    let values = SqlxValues(statement.values.clone().unwrap_or(sea_orm::Values(Vec::new())));
    let sql = sqlx::AssertSqlSafe(statement.sql.as_str());
    Ok(match connection {
        Held::Sqlite(connection) => {
            sqlx::query_with(sql, values).fetch_all(connection).await?.into_iter().map(QueryResult::from).collect()
        }
        Held::Postgres(connection) => {
            sqlx::query_with(sql, values).fetch_all(connection).await?.into_iter().map(QueryResult::from).collect()
        }
    })
}

/// Reads only: sea-orm's queries (`find`, `find_by_statement`) run on it; a write is refused.
#[async_trait::async_trait]
impl ConnectionTrait for Reader {
    fn get_database_backend(&self) -> DbBackend {
        self.backend
    }

    async fn execute_raw(&self, _: Statement) -> Result<ExecResult, DbErr> {
        Err(DbErr::Custom("the reader's connections do not write".into()))
    }

    async fn execute_unprepared(&self, _: &str) -> Result<ExecResult, DbErr> {
        Err(DbErr::Custom("the reader's connections do not write".into()))
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        Ok(self.fetch_all(statement).await?.into_iter().next())
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.fetch_all(statement).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A reader on a fresh, migrated SQLite file (its connections do not create one), and one
    /// on PostgreSQL when IDGATE_TEST_DATABASE_URL names a server.
    async fn readers(dir: &tempfile::TempDir) -> Vec<Reader> {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("reader.db").display());
        super::super::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
        let mut readers = vec![Reader::new(&url, DbBackend::Sqlite, 1)];
        if let Ok(url) = std::env::var("IDGATE_TEST_DATABASE_URL") {
            readers.push(Reader::new(&url, DbBackend::Postgres, 1));
        }
        readers
    }

    /// `sql`'s one row's `n`.
    async fn number(reader: &Reader, sql: &str) -> i64 {
        let statement = Statement::from_string(reader.backend, sql);
        let rows = reader.query_all_raw(statement).await.unwrap_or_else(|e| panic!("{e}"));
        rows.first().and_then(|row| row.try_get::<i64>("", "n").ok()).unwrap_or_else(|| panic!("no number from {sql}"))
    }

    #[tokio::test]
    async fn a_read_cancelled_halfway_leaves_its_connection_answering_the_next_one() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        for reader in readers(&dir).await {
            assert_eq!(number(&reader, "SELECT CAST(1 AS BIGINT) AS n").await, 1, "opens its connection");
            const BACKEND: &str = "SELECT CAST(pg_backend_pid() AS BIGINT) AS n";
            let server = if reader.backend == DbBackend::Postgres { number(&reader, BACKEND).await } else { 0 };
            let slow = match reader.backend {
                DbBackend::Sqlite => {
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                     SELECT max(x) AS n FROM c"
                }
                _ => "SELECT 7::BIGINT AS n FROM pg_sleep(0.1)",
            };
            // Polled once (the statement is sent), then dropped before any answer.
            let cut = tokio::time::timeout(
                Duration::ZERO,
                reader.query_all_raw(Statement::from_string(reader.backend, slow)),
            );
            assert!(cut.await.is_err(), "the read was cut off");
            // The next reads get their own answers, not what the cut one left behind.
            assert_eq!(number(&reader, "SELECT CAST(2 AS BIGINT) AS n").await, 2);
            assert_eq!(number(&reader, "SELECT CAST(3 AS BIGINT) AS n").await, 3);
            if reader.backend == DbBackend::Postgres {
                assert_eq!(number(&reader, BACKEND).await, server, "on the same connection, not a new one");
            }
        }
    }

    #[tokio::test]
    async fn a_read_on_a_connection_the_server_closed_runs_again_on_a_new_one() {
        let Ok(url) = std::env::var("IDGATE_TEST_DATABASE_URL") else { return };
        let reader = Reader::new(&url, DbBackend::Postgres, 1);
        const BACKEND: &str = "SELECT CAST(pg_backend_pid() AS BIGINT) AS n";
        let first = number(&reader, BACKEND).await;
        let admin = sea_orm::Database::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let kill = format!("SELECT pg_terminate_backend({first})");
        admin.execute_unprepared(&kill).await.unwrap_or_else(|e| panic!("{e}"));
        // Until the server has let it go, so the next read meets a closed connection.
        let gone =
            Statement::from_string(DbBackend::Postgres, format!("SELECT 1 FROM pg_stat_activity WHERE pid = {first}"));
        for _ in 0..100 {
            if admin.query_one_raw(gone.clone()).await.ok().flatten().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = number(&reader, BACKEND).await;
        assert_ne!(second, first, "answered on a new connection, without an error");
    }

    #[tokio::test]
    async fn a_reader_refuses_to_write() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        for reader in readers(&dir).await {
            let insert = Statement::from_string(reader.backend, "CREATE TABLE written (x INTEGER)");
            assert!(reader.execute_raw(insert.clone()).await.is_err());
            assert!(reader.execute_unprepared("CREATE TABLE written (x INTEGER)").await.is_err());
            // A write sent as a query meets a read-only connection.
            assert!(reader.query_all_raw(insert).await.is_err(), "{:?} ran a write", reader.backend);
            let tables = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM written) AS t";
            assert!(reader.query_all_raw(Statement::from_string(reader.backend, tables)).await.is_err(), "no table");
        }
    }
}
