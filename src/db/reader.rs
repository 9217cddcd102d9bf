//! Connections of their own for the reads on every request's path: the token check's session
//! read and a login's account read. sqlx's pool pings each connection it takes back, so a
//! pooled query is two round trips: two hand-offs to SQLite's worker thread, or a query and a
//! Sync/ReadyForQuery exchange with PostgreSQL. sqlx 0.9 has no setting to skip that ping;
//! these connections never go back to a pool, so they are never pinged.
//!
//! On SQLite they are not sqlx's at all: each read runs on the request's own thread
//! (`InlineSqlite`, no hand-off to a worker thread), and `db::rows` decodes its rows into
//! sea-orm's models, so the queries and models stay sea-orm's. Only point reads go through here
//! (by primary key or unique index), which take microseconds.
//!
//! Only single statements that read go through here, never a transaction, so a request
//! cancelled halfway leaves nothing open: sqlx drains a PostgreSQL connection's pending answers
//! before its next statement, and a SQLite read always runs to its end. A PostgreSQL
//! connection that fails is dropped; a read that failed on a connection opened earlier runs
//! once more on a new one, so a database restart costs the requests after it nothing.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use sea_orm::{
    DbBackend, DbErr, EntityTrait, FromQueryResult as _, QueryResult, RuntimeErr, Statement, TryIntoModel, Value,
    sqlx::{self, ConnectOptions as _, PgConnection, postgres::PgConnectOptions},
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

use super::{
    InlineSqlite,
    rows::{self, ModelColumns, Typed},
};
use crate::error::{AppError, AppResult};

/// A few held connections for reads, used in turns; see the module comment.
pub struct Reader {
    backend: DbBackend,
    connections: Connections,
    next: AtomicUsize,
}

enum Connections {
    /// Read on the calling thread (`InlineSqlite`), opened read-only at start.
    Sqlite(Box<[InlineSqlite]>),
    /// Each slot holds one connection, opened at first use and again after a failure. A read
    /// takes a free slot, starting from the next in turn, or waits for that one.
    Postgres { url: String, slots: Box<[Mutex<Option<PgConnection>>]> },
}

impl Reader {
    /// A reader of `connections` connections (at least one) to `url`, a database of `backend`:
    /// on SQLite opened now (the file is created and migrated), on PostgreSQL at first use.
    ///
    /// Errors: INTERNAL when a SQLite connection cannot be opened.
    pub fn new(url: &str, backend: DbBackend, connections: usize) -> AppResult<Self> {
        let count = connections.max(1);
        let connections = match backend {
            DbBackend::Sqlite => {
                Connections::Sqlite((0..count).map(|_| InlineSqlite::open_read_only(url)).collect::<AppResult<_>>()?)
            }
            _ => Connections::Postgres { url: url.to_owned(), slots: (0..count).map(|_| Mutex::new(None)).collect() },
        };
        Ok(Self { backend, connections, next: AtomicUsize::new(0) })
    }

    /// The backend the statements are built for.
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// The rows of `statement` (a query built for [`Reader::backend`]), each as `E`'s model
    /// followed by the values of `columns`' extra ones.
    ///
    /// Errors: INTERNAL when the database fails or a column does not read as its type.
    pub async fn models<E>(
        &self,
        statement: Statement,
        columns: &ModelColumns<E>,
    ) -> AppResult<Vec<(E::Model, Vec<Value>)>>
    where
        E: EntityTrait,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        let models: Result<Vec<_>, DbErr> = match self.fetch(statement, columns.all()).await? {
            Found::Sqlite(found) => found.into_iter().map(|values| columns.split(values)).collect(),
            // sqlx's rows: sea-orm decodes the model itself.
            Found::Postgres(found) => found
                .iter()
                .map(|row| Ok((E::Model::from_query_result(row, "")?, rows::read_postgres(row, columns.extra())?)))
                .collect(),
        };
        models.map_err(AppError::internal)
    }

    /// The rows of `statement`, each as its `columns` read as their types, in order.
    pub async fn rows(&self, statement: Statement, columns: Arc<[Typed]>) -> AppResult<Vec<Vec<Value>>> {
        match self.fetch(statement, &columns).await? {
            Found::Sqlite(found) => Ok(found),
            Found::Postgres(found) => found
                .iter()
                .map(|row| rows::read_postgres(row, &columns))
                .collect::<Result<_, _>>()
                .map_err(AppError::internal),
        }
    }

    /// Runs `statement` on the next connection in turn; on SQLite its rows are read as
    /// `columns` there and then.
    async fn fetch(&self, statement: Statement, columns: &Arc<[Typed]>) -> AppResult<Found> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let values = statement.values.map(|values| values.0).unwrap_or_default();
        match &self.connections {
            Connections::Sqlite(connections) => {
                let (sql, columns) = (statement.sql, Arc::clone(columns));
                let read =
                    move |connection: &mut rusqlite::Connection| rows::query(connection, &sql, &values, &columns);
                Ok(Found::Sqlite(InlineSqlite::read_on_any(connections, turn, read).await?))
            }
            Connections::Postgres { url, slots } => {
                let rows = fetch_all_postgres(url, slots, turn, &statement.sql, values).await;
                Ok(Found::Postgres(rows.map_err(AppError::internal)?))
            }
        }
    }
}

/// A read's rows: already typed on SQLite, sqlx's on PostgreSQL.
enum Found {
    Sqlite(Vec<Vec<Value>>),
    Postgres(Vec<QueryResult>),
}

/// A new connection with a held connection's settings, within the pool's connect timeout,
/// opened read-only: a statement that writes fails even when it comes as a query.
async fn open(url: &str) -> Result<PgConnection, sqlx::Error> {
    let connecting = async {
        let options: PgConnectOptions = url.parse()?;
        let options = options.options([("default_transaction_read_only", "on")]);
        options.disable_statement_logging().connect().await
    };
    let timed_out = || sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"));
    tokio::time::timeout(super::CONNECT_TIMEOUT, connecting).await.unwrap_or_else(|_| Err(timed_out()))
}

async fn fetch_all_postgres(
    url: &str,
    slots: &[Mutex<Option<PgConnection>>],
    turn: usize,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    // A free slot if there is one, starting from the next in turn; else wait for that one.
    let free = (0..slots.len()).find_map(|i| slots.get((turn + i) % slots.len())?.try_lock().ok());
    let mut held = match free {
        Some(held) => held,
        None => match slots.get(turn % slots.len()) {
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
            *held = Some(open(url).await.map_err(failed)?);
        }
        let Some(connection) = held.as_mut() else { return Err(DbErr::Custom("no reader connection".into())) };
        // The connection stays in its slot while the statement runs: a request cancelled
        // halfway leaves it there, and its next statement first reads what this one left.
        match run(connection, sql, &values).await {
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

/// Runs `sql` with `values` on `connection` and collects its rows.
async fn run(connection: &mut PgConnection, sql: &str, values: &[Value]) -> Result<Vec<QueryResult>, sqlx::Error> {
    let values = SqlxValues(sea_orm::Values(values.to_vec()));
    let sql = sqlx::AssertSqlSafe(sql);
    Ok(sqlx::query_with(sql, values).fetch_all(connection).await?.into_iter().map(QueryResult::from).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ColumnType, ConnectionTrait as _};

    use super::*;

    /// A fresh, migrated SQLite file (the reader's connections do not create one), and a
    /// PostgreSQL server's URL when IDGATE_TEST_DATABASE_URL names one.
    async fn urls(dir: &tempfile::TempDir) -> Vec<(String, DbBackend)> {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("reader.db").display());
        super::super::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
        let mut urls = vec![(url, DbBackend::Sqlite)];
        if let Ok(url) = std::env::var("IDGATE_TEST_DATABASE_URL") {
            urls.push((url, DbBackend::Postgres));
        }
        urls
    }

    async fn readers(dir: &tempfile::TempDir) -> Vec<Reader> {
        let urls = urls(dir).await.into_iter();
        urls.map(|(url, backend)| Reader::new(&url, backend, 1).unwrap_or_else(|e| panic!("{e:?}"))).collect()
    }

    fn statement(reader: &Reader, sql: &str) -> Statement {
        Statement::from_string(reader.backend, sql)
    }

    /// `sql`'s one row's `n`.
    async fn number(reader: &Reader, sql: &str) -> i64 {
        let rows = reader.rows(statement(reader, sql), vec![("n", ColumnType::BigInteger)].into()).await;
        match rows.unwrap_or_else(|e| panic!("{e:?}")).first().map(Vec::as_slice) {
            Some([Value::BigInt(Some(n))]) => *n,
            other => panic!("no number from {sql}: {other:?}"),
        }
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
            // Polled once (on PostgreSQL the statement is sent; on SQLite it runs to its end
            // there and then), then dropped.
            let cut = tokio::time::timeout(
                Duration::ZERO,
                reader.rows(statement(&reader, slow), vec![("n", ColumnType::BigInteger)].into()),
            );
            let cut = cut.await;
            if reader.backend == DbBackend::Postgres {
                assert!(cut.is_err(), "the read was cut off");
            }
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
        let reader = Reader::new(&url, DbBackend::Postgres, 1).unwrap_or_else(|e| panic!("{e:?}"));
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
            // A write sent as a query meets a read-only connection.
            let create = statement(&reader, "CREATE TABLE written (x INTEGER)");
            assert!(reader.rows(create, Vec::new().into()).await.is_err(), "{:?} ran a write", reader.backend);
            let tables = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM written) AS t";
            assert!(reader.rows(statement(&reader, tables), Vec::new().into()).await.is_err(), "no table");
        }
    }
}
