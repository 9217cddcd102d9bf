//! Connections of their own for the reads on every request's path: the token check's session
//! read and a login's account read. sqlx's pool pings each connection it takes back, so a
//! pooled query is two round trips: two hand-offs to SQLite's worker thread, or a query and a
//! Sync/ReadyForQuery exchange with PostgreSQL. sqlx 0.9 has no setting to skip that ping;
//! these connections never go back to a pool, so they are never pinged.
//!
//! Only single statements that read go through here, never a transaction, so a request
//! cancelled halfway leaves nothing open: sqlx drains a PostgreSQL connection's pending answers
//! before its next statement, and resets a SQLite statement when its iterator drops. A
//! connection that fails is dropped and the next statement opens a new one, so a database
//! restart fails the statements that meet a dead connection (INTERNAL) and nothing after.

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
    /// takes the next slot in turn and waits for it if another read holds it.
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

    /// A new connection with the pool's settings.
    async fn open(&self) -> Result<Held, sqlx::Error> {
        Ok(match self.backend {
            DbBackend::Sqlite => {
                let options: SqliteConnectOptions = self.url.parse()?;
                Held::Sqlite(super::sqlite_options(options).connect().await?)
            }
            _ => {
                let options: PgConnectOptions = self.url.parse()?;
                Held::Postgres(options.disable_statement_logging().connect().await?)
            }
        })
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
        let result = match held.take() {
            Some(connection) => Ok(connection),
            None => self.open().await,
        };
        let result = match result {
            Ok(mut connection) => {
                let rows = run(&mut connection, &statement).await;
                if rows.is_ok() {
                    *held = Some(connection);
                }
                rows
            }
            Err(error) => Err(error),
        };
        result.map_err(|error| DbErr::Query(RuntimeErr::SqlxError(error.into())))
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
