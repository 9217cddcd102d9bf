//! The embedded store: a table in the application's database (`kv_entries`), used when no Redis
//! is configured. Codes, link tokens and counters are then as durable as the accounts they
//! protect: a restart or a crash loses none of them, and several instances on one PostgreSQL
//! share them without Redis.
//!
//! Each operation is one SQL statement, so it is atomic per key on both SQLite and PostgreSQL
//! (`INSERT … ON CONFLICT … RETURNING`, `DELETE … RETURNING`); on SQLite, the hits of one
//! [`Kv::admit`] or [`Kv::admit_each`] are one transaction that holds the write lock while it
//! reads each limit's state and writes it back. Expiry follows the injected
//! clock, so tests that move time see entries expire. Expired rows are invisible at once and
//! deleted by [`DatabaseKv::sweep`], which the app runs on an interval.
//!
//! The SQL is hand-written rather than built through an entity: the conditional upserts below
//! are what makes each operation atomic, and they read more plainly as SQL than as a builder.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, TransactionBehavior, params_from_iter, types::Value as SqliteValue};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};

use super::{Admission, Hit, Kv, Write};
use crate::{
    clock::Clock,
    db::{InlineSqlite, Job},
    error::{AppError, AppResult},
    kv,
};

/// Database-backed [`Kv`].
pub struct DatabaseKv {
    connection: Connection,
    clock: Arc<dyn Clock>,
}

/// Where the statements run.
enum Connection {
    /// A pool shared with the rest of the application (PostgreSQL).
    Pooled(DatabaseConnection),
    /// One SQLite connection for the store's whole life, whose statements run on the calling
    /// thread (`db::InlineSqlite`): a login makes two KV calls, and through sqlx each would be a
    /// hand-off to a worker thread and back, which the hashing threads pay for.
    Inline(InlineSqlite),
}

impl DatabaseKv {
    /// A store on `db`'s pool (for PostgreSQL; SQLite has [`DatabaseKv::sqlite`]).
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { connection: Connection::Pooled(db), clock }
    }

    /// A store on a SQLite connection of its own, opened on `url` (already migrated).
    pub fn sqlite(url: &str, clock: Arc<dyn Clock>) -> AppResult<Self> {
        Ok(Self { connection: Connection::Inline(InlineSqlite::open(url)?), clock })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn deadline_ms(&self, ttl: Duration) -> i64 {
        self.now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1))
    }

    /// Runs a statement and returns the `value` column of the row it returns, if any (a NULL
    /// reads as no row). `sql` numbers its parameters `$1`, `$2`, … as PostgreSQL does;
    /// SQLite reads the same numbers written `?1`, `?2`.
    async fn value(&self, sql: &str, values: Vec<Value>) -> AppResult<Option<String>> {
        match &self.connection {
            Connection::Pooled(db) => {
                let row = db.query_one_raw(pooled(db, sql, values)).await.map_err(AppError::internal)?;
                let value = row.map(|row| row.try_get::<Option<String>>("", "value")).transpose();
                value.map(Option::flatten).map_err(AppError::internal)
            }
            Connection::Inline(sqlite) => {
                let (sql, values) = (sqlite_sql(sql), sqlite_values(values)?);
                // `get` only reads; every other statement here is an upsert or a delete.
                let kind = if sql.starts_with("SELECT") { Job::Read } else { Job::Write };
                let value = sqlite.run(kind, move |connection| {
                    let mut statement = connection.prepare_cached(&sql)?;
                    let row =
                        statement.query_row(params_from_iter(&values), |row| row.get::<_, Option<String>>("value"));
                    row.optional()
                });
                Ok(value.await?.flatten())
            }
        }
    }

    /// Runs a statement; returns how many rows it changed.
    async fn execute(&self, sql: &str, values: Vec<Value>) -> AppResult<u64> {
        match &self.connection {
            Connection::Pooled(db) => {
                let result = db.execute_raw(pooled(db, sql, values)).await.map_err(AppError::internal)?;
                Ok(result.rows_affected())
            }
            Connection::Inline(sqlite) => {
                let (sql, values) = (sqlite_sql(sql), sqlite_values(values)?);
                let changed = sqlite.run(Job::Write, move |connection| {
                    connection.prepare_cached(&sql)?.execute(params_from_iter(&values))
                });
                Ok(u64::try_from(changed.await?).unwrap_or(u64::MAX))
            }
        }
    }

    /// A refused hit's answer: how long until one would fit, from the TAT its row holds.
    async fn refusal(&self, hit: &Hit<'_>, now_ms: i64) -> AppResult<Admission> {
        let tat = self.get(hit.key).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(now_ms);
        let wait = tat.max(now_ms) + hit.interval_ms - now_ms - hit.window_ms;
        Ok(Admission::Refused { wait: millis(wait.max(1)) })
    }

    /// Deletes every expired entry; returns how many.
    pub async fn sweep(&self) -> AppResult<u64> {
        const SWEEP: &str = "DELETE FROM kv_entries WHERE expires_at_ms <= $1";
        let now_ms = self.now_ms();
        match &self.connection {
            Connection::Pooled(_) => self.execute(SWEEP, vec![now_ms.into()]).await,
            // It may delete thousands of rows: never on a request's thread.
            Connection::Inline(sqlite) => {
                let sql = sqlite_sql(SWEEP);
                let deleted = sqlite.run_blocking(Job::Write, move |connection| connection.execute(&sql, [now_ms]));
                Ok(u64::try_from(deleted.await?).unwrap_or(u64::MAX))
            }
        }
    }

    /// Sweeps every `interval` for as long as the process runs.
    pub fn spawn_sweeping(self: &Arc<Self>, interval: Duration) {
        let kv = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                if let Err(e) = kv.sweep().await {
                    tracing::warn!(error = %e, "could not sweep expired KV entries");
                }
            }
        });
    }
}

#[async_trait]
impl Kv for DatabaseKv {
    async fn get(&self, key: &str) -> AppResult<Option<String>> {
        self.value(
            "SELECT value FROM kv_entries WHERE key = $1 AND expires_at_ms > $2",
            vec![key.into(), self.now_ms().into()],
        )
        .await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> AppResult<()> {
        self.execute(SET_SQL, vec![key.into(), value.into(), self.deadline_ms(ttl).into()]).await.map(drop)
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> AppResult<bool> {
        // An expired row counts as absent: the update takes its place only then.
        let stored = self
            .execute(
                "INSERT INTO kv_entries (key, value, expires_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms \
                 WHERE kv_entries.expires_at_ms <= $4",
                vec![key.into(), value.into(), self.deadline_ms(ttl).into(), self.now_ms().into()],
            )
            .await?;
        Ok(stored == 1)
    }

    async fn take(&self, key: &str) -> AppResult<Option<String>> {
        // The row goes whether or not it expired; only a live one is handed out.
        self.value(
            "DELETE FROM kv_entries WHERE key = $1 \
             RETURNING CASE WHEN expires_at_ms > $2 THEN value END AS value",
            vec![key.into(), self.now_ms().into()],
        )
        .await
    }

    async fn delete(&self, keys: &[&str]) -> AppResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=keys.len()).map(|n| format!("${n}")).collect();
        let sql = format!("DELETE FROM kv_entries WHERE key IN ({})", placeholders.join(", "));
        self.execute(&sql, keys.iter().map(|&key| key.into()).collect()).await.map(drop)
    }

    async fn write(&self, writes: &[Write]) -> AppResult<()> {
        // One upsert carries the whole batch, so it is atomic on both backends. A delete writes
        // its key as already expired: invisible at once, as every expired row is, and gone at the
        // next sweep. Of two writes to one key only the last is sent (PostgreSQL refuses to
        // upsert one row twice in a statement).
        let mut rows: Vec<(&str, &str, i64)> = Vec::with_capacity(writes.len());
        for write in writes {
            let row = match write {
                Write::Set { key, value, ttl } => (key.as_str(), value.as_str(), self.deadline_ms(*ttl)),
                Write::Delete { key } => (key.as_str(), "0", 0),
            };
            rows.retain(|&(key, _, _)| key != row.0);
            rows.push(row);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> =
            (0..rows.len()).map(|n| format!("(${}, ${}, ${})", 3 * n + 1, 3 * n + 2, 3 * n + 3)).collect();
        let sql = format!(
            "INSERT INTO kv_entries (key, value, expires_at_ms) VALUES {} \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms",
            placeholders.join(", ")
        );
        let values = rows.into_iter().flat_map(|(key, value, deadline)| [key.into(), value.into(), deadline.into()]);
        self.execute(&sql, values.collect()).await.map(drop)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> AppResult<u64> {
        // A live counter counts on under its old deadline; an expired one starts again at 1.
        let count = self
            .value(
                "INSERT INTO kv_entries (key, value, expires_at_ms) VALUES ($1, '1', $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                 value = CASE WHEN kv_entries.expires_at_ms > $3 \
                   THEN CAST(CAST(kv_entries.value AS BIGINT) + 1 AS TEXT) ELSE '1' END, \
                 expires_at_ms = CASE WHEN kv_entries.expires_at_ms > $3 \
                   THEN kv_entries.expires_at_ms ELSE excluded.expires_at_ms END \
                 RETURNING value",
                vec![key.into(), self.deadline_ms(ttl).into(), self.now_ms().into()],
            )
            .await?
            .ok_or_else(|| AppError::internal("an upsert returned no row"))?;
        count.parse().map_err(AppError::internal)
    }

    async fn admit(&self, key: &str, now_ms: i64, interval_ms: i64, window_ms: i64) -> AppResult<Admission> {
        let hit = Hit { key, interval_ms, window_ms };
        if let Connection::Inline(_) = &self.connection {
            let answers = self.admit_each(&[hit], now_ms).await?;
            return answers.into_iter().next().ok_or_else(|| AppError::internal_msg("an admission gave no answer"));
        }
        let admitted = self.value(&ADMIT_SQL, admit_values(&hit, now_ms).into()).await?;
        match admitted {
            Some(new_tat) => admitted_at(&new_tat, now_ms),
            None => self.refusal(&hit, now_ms).await,
        }
    }

    async fn admit_each(&self, hits: &[Hit<'_>], now_ms: i64) -> AppResult<Vec<Admission>> {
        let Connection::Inline(sqlite) = &self.connection else {
            return kv::admit_in_turn(self, hits, now_ms).await;
        };
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        // All the hits in one transaction and one commit, as Redis's script is one round trip;
        // the first refusal stops the rest, as it does one hit at a time. The transaction holds
        // the write lock from its start, so each TAT read is still the row's when it is written
        // back, on every connection and instance. Read, decided here, then written: an upsert
        // with `RETURNING` buffers its row in a temporary B-tree, which cost a login three
        // times what the read and the plain upsert do. The job runs to its end even if the
        // request is dropped, and an unfinished transaction rolls back when it drops.
        let set_sql = sqlite_sql(SET_SQL);
        let hits: Vec<(String, i64, i64)> =
            hits.iter().map(|hit| (hit.key.to_owned(), hit.interval_ms, hit.window_ms)).collect();
        let answers = sqlite.run(Job::Write, move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut answers = Vec::with_capacity(hits.len());
            {
                let mut read = transaction.prepare_cached(TAT_SQL)?;
                let mut write = transaction.prepare_cached(&set_sql)?;
                for (key, interval_ms, window_ms) in &hits {
                    let stored = read.query_row([key], |row| row.get::<_, i64>(0)).optional()?;
                    let answer = gcra(stored, &Hit { key, interval_ms: *interval_ms, window_ms: *window_ms }, now_ms);
                    if let Ok(new_tat) = answer {
                        write.execute(rusqlite::params![key, new_tat.to_string(), new_tat])?;
                    }
                    answers.push(answer);
                    if answer.is_err() {
                        break;
                    }
                }
            }
            transaction.commit()?;
            Ok(answers)
        });
        let answers = answers.await?.into_iter().map(|answer| match answer {
            Ok(new_tat) => Admission::Admitted { backlog: millis(new_tat - now_ms) },
            Err(wait) => Admission::Refused { wait },
        });
        Ok(answers.collect())
    }

    async fn ping(&self) -> AppResult<()> {
        match &self.connection {
            Connection::Pooled(db) => db.ping().await.map_err(AppError::internal),
            Connection::Inline(sqlite) => {
                sqlite.run(Job::Read, |connection| connection.query_row("SELECT 1", [], |_| Ok(()))).await
            }
        }
    }
}

/// Parameters of one hit in [`ADMIT_SQL`], bound by [`admit_values`].
const ADMIT_PARAMETERS: usize = 6;

/// One GCRA hit ([`Kv::admit`] on a pool; a held SQLite connection decides in [`gcra`]) as an
/// upsert of `key` ($1) at `now` ($4) with `interval` ($5) and `window` ($6); $2 and $3 are a
/// new row's TAT, as text and as a number. The row's value and expiry are its TAT ($T below);
/// the update happens only when the hit fits, so a returned row means admitted, and its value
/// is the new TAT. An expired row's TAT is in the past: `now` wins. (`INSERT … SELECT … WHERE true`: the WHERE keeps SQLite from reading `ON` as a join.)
/// Written out once, not per hit.
static ADMIT_SQL: LazyLock<String> = LazyLock::new(|| {
    let sql = "INSERT INTO kv_entries (key, value, expires_at_ms) SELECT $1, $2, $3 WHERE true \
        ON CONFLICT (key) DO UPDATE SET value = CAST($T + $5 AS TEXT), expires_at_ms = $T + $5 \
        WHERE $T + $5 - $4 <= $6 RETURNING value";
    sql.replace(
        "$T",
        "(CASE WHEN CAST(kv_entries.value AS BIGINT) > $4 THEN CAST(kv_entries.value AS BIGINT) ELSE $4 END)",
    )
});

/// A key's stored TAT for [`gcra`], expired or not (an expired row's TAT is in the past), cast
/// as [`ADMIT_SQL`] casts it: a value that is not a number reads as 0.
const TAT_SQL: &str = "SELECT COALESCE(CAST(value AS BIGINT), 0) FROM kv_entries WHERE key = ?1";

/// Stores `key` ($1) with `value` ($2) until `expires_at_ms` ($3), replacing any row: [`Kv::set`],
/// and a TAT decided by [`gcra`] (as its value and its expiry).
const SET_SQL: &str = "INSERT INTO kv_entries (key, value, expires_at_ms) VALUES ($1, $2, $3) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms";

/// [`ADMIT_SQL`]'s decision for `hit` at `now_ms`, given the TAT its row holds (`None`: no
/// row). `Ok`: admitted, with the new TAT to store; `Err`: refused, with how long until a hit
/// would fit.
fn gcra(stored: Option<i64>, hit: &Hit<'_>, now_ms: i64) -> Result<i64, Duration> {
    let Some(stored) = stored else {
        return Ok(now_ms.saturating_add(hit.interval_ms));
    };
    let tat = stored.max(now_ms);
    let new_tat = tat.saturating_add(hit.interval_ms);
    if new_tat - now_ms <= hit.window_ms { Ok(new_tat) } else { Err(millis((new_tat - now_ms - hit.window_ms).max(1))) }
}

/// The values of [`ADMIT_SQL`]'s parameters for `hit` at `now_ms`.
fn admit_values(hit: &Hit<'_>, now_ms: i64) -> [Value; ADMIT_PARAMETERS] {
    let first = now_ms.saturating_add(hit.interval_ms);
    [
        hit.key.into(),
        first.to_string().into(),
        first.into(),
        now_ms.into(),
        hit.interval_ms.into(),
        hit.window_ms.into(),
    ]
}

/// An admitted hit's answer from the new TAT its upsert returned.
fn admitted_at(new_tat: &str, now_ms: i64) -> AppResult<Admission> {
    let new_tat: i64 = new_tat.parse().map_err(AppError::internal)?;
    Ok(Admission::Admitted { backlog: millis(new_tat - now_ms) })
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0).unsigned_abs())
}

/// `sql` as a statement for the pool's backend.
fn pooled(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `sql`, whose parameters are numbered `$1`, `$2`, … as PostgreSQL's, in SQLite's `?1`, `?2`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

/// `values` for SQLite. The store binds only text and integers.
fn sqlite_values(values: Vec<Value>) -> AppResult<Vec<SqliteValue>> {
    values
        .into_iter()
        .map(|value| match value {
            Value::String(Some(text)) => Ok(SqliteValue::Text(text)),
            Value::BigInt(Some(number)) => Ok(SqliteValue::Integer(number)),
            _ => Err(AppError::internal_msg("the KV binds only text and integers")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{clock::ManualClock, db};

    const MINUTE: Duration = Duration::from_secs(60);

    /// A fresh store of each kind: on a held SQLite connection (the embedded default) and on a
    /// pool (as on PostgreSQL).
    async fn stores() -> Vec<(DatabaseKv, ManualClock, tempfile::TempDir)> {
        let mut stores = Vec::new();
        for pooled in [false, true] {
            let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("kv.db").display());
            db::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
            let clock = ManualClock::new(Utc::now());
            let shared = Arc::new(clock.clone());
            let kv = if pooled {
                DatabaseKv::new(db::connect(&url, 2).await.unwrap_or_else(|e| panic!("{e:?}")), shared)
            } else {
                DatabaseKv::sqlite(&url, shared).unwrap_or_else(|e| panic!("{e:?}"))
            };
            stores.push((kv, clock, dir));
        }
        stores
    }

    #[tokio::test]
    async fn a_value_lives_until_its_ttl_by_the_injected_clock() {
        for (kv, clock, _dir) in stores().await {
            kv.set("k", "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(kv.get("k").await.ok().flatten().as_deref(), Some("v"));
            clock.advance(chrono::Duration::seconds(61));
            assert_eq!(kv.get("k").await.ok().flatten(), None);
            assert_eq!(kv.take("k").await.ok().flatten(), None, "an expired value is not handed out");
        }
    }

    #[tokio::test]
    async fn set_if_absent_stores_once_and_again_after_expiry() {
        for (kv, clock, _dir) in stores().await {
            assert_eq!(kv.set_if_absent("k", "first", MINUTE).await.ok(), Some(true));
            assert_eq!(kv.set_if_absent("k", "second", MINUTE).await.ok(), Some(false));
            assert_eq!(kv.get("k").await.ok().flatten().as_deref(), Some("first"));
            clock.advance(chrono::Duration::seconds(61));
            assert_eq!(kv.set_if_absent("k", "third", MINUTE).await.ok(), Some(true));
            assert_eq!(kv.get("k").await.ok().flatten().as_deref(), Some("third"));
        }
    }

    #[tokio::test]
    async fn take_hands_a_value_out_once() {
        for (kv, _clock, _dir) in stores().await {
            kv.set("k", "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(kv.take("k").await.ok().flatten().as_deref(), Some("v"));
            assert_eq!(kv.take("k").await.ok().flatten(), None);
        }
    }

    #[tokio::test]
    async fn one_delete_removes_every_key_it_names_and_no_other() {
        for (kv, _clock, _dir) in stores().await {
            for key in ["a", "b", "c"] {
                kv.set(key, "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            }
            kv.delete(&["a", "b", "absent"]).await.unwrap_or_else(|e| panic!("{e:?}"));
            kv.delete(&[]).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(kv.get("a").await.ok().flatten(), None);
            assert_eq!(kv.get("b").await.ok().flatten(), None);
            assert_eq!(kv.get("c").await.ok().flatten().as_deref(), Some("v"));
        }
    }

    #[tokio::test]
    async fn a_batch_sets_and_deletes_in_order_and_the_last_write_to_a_key_wins() {
        for (kv, _clock, _dir) in stores().await {
            for key in ["gone", "kept"] {
                kv.set(key, "old", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            }
            let set = |key: &str, value: &str| Write::Set { key: key.into(), value: value.into(), ttl: MINUTE };
            let delete = |key: &str| Write::Delete { key: key.into() };
            let batch =
                [delete("gone"), set("new", "1"), set("twice", "first"), set("twice", "second"), delete("absent")];
            kv.write(&batch).await.unwrap_or_else(|e| panic!("{e:?}"));
            kv.write(&[]).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(kv.get("gone").await.ok().flatten(), None);
            assert_eq!(kv.take("gone").await.ok().flatten(), None, "a deleted key is not handed out");
            assert_eq!(kv.get("absent").await.ok().flatten(), None);
            assert_eq!(kv.get("kept").await.ok().flatten().as_deref(), Some("old"));
            assert_eq!(kv.get("new").await.ok().flatten().as_deref(), Some("1"));
            assert_eq!(kv.get("twice").await.ok().flatten().as_deref(), Some("second"));
            // A deleted counter or limit starts again from nothing.
            kv.write(&[delete("new")]).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(kv.increment("new", MINUTE).await.ok(), Some(1));
            assert_eq!(kv.set_if_absent("gone", "again", MINUTE).await.ok(), Some(true));
        }
    }

    #[tokio::test]
    async fn a_counter_counts_within_its_window_and_restarts_after_it() {
        for (kv, clock, _dir) in stores().await {
            for expected in 1..=3 {
                assert_eq!(kv.increment("c", MINUTE).await.ok(), Some(expected));
            }
            clock.advance(chrono::Duration::seconds(30));
            assert_eq!(kv.increment("c", MINUTE).await.ok(), Some(4), "a hit does not extend the window");
            clock.advance(chrono::Duration::seconds(31));
            assert_eq!(kv.increment("c", MINUTE).await.ok(), Some(1));
        }
    }

    #[tokio::test]
    async fn concurrent_increments_are_each_counted() {
        for (kv, _clock, _dir) in stores().await {
            let kv = Arc::new(kv);
            let hits = (0..20).map(|_| {
                let kv = Arc::clone(&kv);
                tokio::spawn(async move { kv.increment("c", MINUTE).await })
            });
            let mut counts: Vec<u64> =
                futures::future::join_all(hits).await.into_iter().filter_map(|r| r.ok()?.ok()).collect();
            counts.sort_unstable();
            assert_eq!(counts, (1..=20).collect::<Vec<u64>>());
        }
    }

    #[tokio::test]
    async fn a_sliding_limit_admits_a_burst_then_one_per_interval() {
        for (kv, clock, _dir) in stores().await {
            let now = || clock.now().timestamp_millis();
            let admitted = |seconds: u64| Some(Admission::Admitted { backlog: Duration::from_secs(seconds) });
            let refused = |seconds: u64| Some(Admission::Refused { wait: Duration::from_secs(seconds) });
            // Three per minute: one every 20 s after a burst of three; the backlog counts them.
            for backlog in [20, 40, 60] {
                assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), admitted(backlog));
            }
            assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), refused(20));
            clock.advance(chrono::Duration::seconds(19));
            assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), refused(1), "not yet");
            clock.advance(chrono::Duration::seconds(1));
            assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), admitted(60), "one slot back");
            assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), refused(20), "and only one");
            // Once the whole window has passed, the expired state counts for nothing: a full burst.
            clock.advance(chrono::Duration::seconds(61));
            for backlog in [20, 40, 60] {
                assert_eq!(kv.admit("l", now(), 20_000, 60_000).await.ok(), admitted(backlog), "a new burst");
            }
        }
    }

    #[tokio::test]
    async fn hits_in_order_stop_at_the_first_refusal() {
        for (kv, clock, _dir) in stores().await {
            let now = clock.now().timestamp_millis();
            // "a" fits two a minute, "b" one.
            let (a, b) = (
                Hit { key: "a", interval_ms: 30_000, window_ms: 60_000 },
                Hit { key: "b", interval_ms: 60_000, window_ms: 60_000 },
            );
            let admitted = |seconds: u64| Admission::Admitted { backlog: Duration::from_secs(seconds) };
            let refused = |seconds: u64| Admission::Refused { wait: Duration::from_secs(seconds) };
            assert_eq!(kv.admit_each(&[a, b], now).await.ok(), Some(vec![admitted(30), admitted(60)]));
            assert_eq!(kv.admit_each(&[a, b], now).await.ok(), Some(vec![admitted(60), refused(60)]), "b is full");
            assert_eq!(kv.admit_each(&[a, b], now).await.ok(), Some(vec![refused(30)]), "a refuses, b is not asked");
            // c has room, but behind a refusal it is not counted: its one hit a minute is still there.
            let c = Hit { key: "c", interval_ms: 60_000, window_ms: 60_000 };
            assert_eq!(kv.admit_each(&[a, c], now).await.ok(), Some(vec![refused(30)]));
            assert_eq!(kv.admit_each(&[c], now).await.ok(), Some(vec![admitted(60)]), "c was not counted");
            // b was refused, not counted: after a minute both have room again, b exactly once.
            clock.advance(chrono::Duration::seconds(60));
            let now = clock.now().timestamp_millis();
            assert_eq!(kv.admit_each(&[b, a], now).await.ok(), Some(vec![admitted(60), admitted(30)]));
            assert_eq!(kv.admit_each(&[], now).await.ok(), Some(vec![]));
        }
    }

    /// The embedded store's SQLite file, with another connection holding its write lock (as a
    /// registration's transaction on the pool does) until the returned sender is dropped.
    fn lock_writes(dir: &tempfile::TempDir) -> std::sync::mpsc::Sender<()> {
        let (locked, unlock) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let path = dir.path().join("kv.db");
        std::thread::spawn(move || {
            let other = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
            other.execute_batch("BEGIN IMMEDIATE").unwrap_or_else(|e| panic!("{e}"));
            locked.0.send(()).unwrap_or_else(|e| panic!("{e}"));
            let _ = unlock.1.recv();
            other.execute_batch("COMMIT").unwrap_or_else(|e| panic!("{e}"));
        });
        locked.1.recv().unwrap_or_else(|e| panic!("{e}"));
        unlock.0
    }

    #[tokio::test]
    async fn a_write_waits_for_another_connections_write_lock_and_reads_do_not() {
        let (kv, _clock, dir) = stores().await.swap_remove(0);
        kv.set("before", "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
        let unlock = lock_writes(&dir);
        // A read is not held up by a writer (WAL).
        assert_eq!(kv.get("before").await.ok().flatten().as_deref(), Some("v"));
        let kv = Arc::new(kv);
        let write = tokio::spawn({
            let kv = Arc::clone(&kv);
            async move { kv.set("during", "v", MINUTE).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!write.is_finished(), "the write should wait for the lock");
        drop(unlock);
        let written = write.await;
        assert!(matches!(written, Ok(Ok(()))), "the write should go through once the lock is free: {written:?}");
        assert_eq!(kv.get("during").await.ok().flatten().as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn hits_whose_caller_gives_up_are_counted_whole_and_leave_no_transaction_open() {
        let (kv, clock, dir) = stores().await.swap_remove(0);
        let now = clock.now().timestamp_millis();
        let a = Hit { key: "a", interval_ms: 30_000, window_ms: 60_000 };
        // The hits wait for another connection's lock, and their caller goes away meanwhile, as
        // a request's does when its client disconnects.
        let unlock = lock_writes(&dir);
        let gave_up = tokio::time::timeout(Duration::from_millis(100), kv.admit_each(&[a, a], now)).await;
        assert!(gave_up.is_err(), "the hits should still have been waiting when dropped");
        drop(unlock);
        kv.set("after", "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
        // A write that joined a transaction left open would not be visible to another connection.
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("kv.db").display());
        let other = DatabaseKv::sqlite(&url, Arc::new(clock.clone())).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(other.get("after").await.ok(), Some(Some("v".to_owned())));
        // And the hits given up on were counted whole (their job asked for the connection before
        // the write above did): the third of two a minute is refused.
        let refused = Admission::Refused { wait: Duration::from_secs(30) };
        assert_eq!(kv.admit_each(&[a], now).await.ok(), Some(vec![refused]));
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_while_the_store_writes() {
        let (kv, _clock, dir) = stores().await.swap_remove(0);
        // Without checkpoints (the store's connection makes none itself) these writes would grow
        // the WAL to about 40 MiB; a checkpoint every hundred or so lets SQLite start it over.
        for n in 0..3000 {
            kv.set(&format!("key {n}"), "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            if n % 200 == 0 {
                // Let the checkpoint on the blocking pool run, as the time between requests does.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let wal = std::fs::metadata(dir.path().join("kv.db-wal")).map(|m| m.len()).unwrap_or_else(|e| panic!("{e}"));
        assert!(wal < 8 << 20, "the WAL holds {wal} bytes");
        assert_eq!(kv.get("key 2999").await.ok().flatten().as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn concurrent_hits_on_a_sliding_limit_admit_exactly_its_burst() {
        for (kv, clock, _dir) in stores().await {
            let kv = Arc::new(kv);
            let now = clock.now().timestamp_millis();
            let hits = (0..20).map(|_| {
                let kv = Arc::clone(&kv);
                tokio::spawn(async move { kv.admit("l", now, 6_000, 60_000).await })
            });
            let mut backlogs: Vec<u64> = futures::future::join_all(hits)
                .await
                .into_iter()
                .filter_map(|r| match r {
                    Ok(Ok(Admission::Admitted { backlog })) => Some(backlog.as_secs()),
                    _ => None,
                })
                .collect();
            backlogs.sort_unstable();
            assert_eq!(backlogs, (1..=10).map(|n| n * 6).collect::<Vec<u64>>(), "each admitted hit sees its own count");
        }
    }

    #[tokio::test]
    async fn a_sweep_deletes_only_expired_rows() {
        for (kv, clock, _dir) in stores().await {
            kv.set("short", "v", MINUTE).await.unwrap_or_else(|e| panic!("{e:?}"));
            kv.set("long", "v", MINUTE * 10).await.unwrap_or_else(|e| panic!("{e:?}"));
            clock.advance(chrono::Duration::seconds(61));
            assert_eq!(kv.sweep().await.ok(), Some(1));
            assert_eq!(kv.get("long").await.ok().flatten().as_deref(), Some("v"));
        }
    }
}
