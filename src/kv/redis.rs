//! The shared store: Redis over one multiplexed connection. Every key is prefixed, so
//! deployments (and test runs) can share one Redis without seeing each other's state.
//!
//! Redis down, or too slow to answer within [`TIMEOUT`], is SERVICE_UNAVAILABLE: the operation
//! that needed the store does not run (a limit or a code is never waved through), and the next
//! operation connects again, so idgate recovers on its own when Redis is back.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncConnectionConfig, Client, FromRedisValue, RedisError, aio::MultiplexedConnection};
use tokio::sync::Mutex;

use super::{Admission, Hit, Kv, Write};
use crate::error::{AppError, AppResult};

/// How long one store operation (connecting, if it must, and its command) may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Redis-backed [`Kv`].
pub struct RedisKv {
    client: Client,
    /// The connection every operation shares: it pipelines concurrent commands over one
    /// socket. None until the first operation, and again after an error that broke it, so the
    /// next operation connects anew. (A pool that tests each connection it hands out, as
    /// deadpool does with a PING, doubles the round trips of every operation.)
    connection: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
}

impl RedisKv {
    /// Connects and checks that Redis answers.
    pub async fn connect(url: &str, prefix: &str) -> AppResult<Self> {
        let client = Client::open(url).map_err(AppError::internal)?;
        let kv = Self { client, connection: Mutex::new(None), prefix: prefix.to_owned() };
        kv.ping().await?;
        Ok(kv)
    }

    /// Runs one command.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> AppResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let answer = cmd.query_async(&mut conn).await;
            self.check(answer)
        })
        .await
    }

    /// Runs a pipeline.
    async fn query_pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> AppResult<T> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let answer = pipe.query_async(&mut conn).await;
            self.check(answer)
        })
        .await
    }

    async fn bounded<T>(&self, op: impl Future<Output = AppResult<T>>) -> AppResult<T> {
        match tokio::time::timeout(TIMEOUT, op).await {
            Ok(result) => result,
            Err(_) => {
                // A connection that stopped answering is not trusted with the next command.
                self.forget_connection();
                Err(AppError::unavailable(format!("Redis did not answer within {TIMEOUT:?}")))
            }
        }
    }

    /// The shared connection, opened first if there is none.
    async fn conn(&self) -> AppResult<MultiplexedConnection> {
        let mut shared = self.connection.lock().await;
        if let Some(conn) = shared.as_ref() {
            return Ok(conn.clone());
        }
        // The operation's deadline is `bounded`'s alone. The client's own per-command timeout
        // was a second timer each command, and a timer that becomes the runtime's earliest
        // wakes its I/O driver (an eventfd write, then an extra return from epoll).
        let config = AsyncConnectionConfig::new().set_connection_timeout(Some(TIMEOUT)).set_response_timeout(None);
        let conn =
            self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(AppError::unavailable)?;
        Ok(shared.insert(conn).clone())
    }

    /// Passes `answer` on; an error that broke the connection also drops it.
    fn check<T>(&self, answer: Result<T, RedisError>) -> AppResult<T> {
        answer.map_err(|e| {
            if e.is_unrecoverable_error() {
                self.forget_connection();
            }
            AppError::unavailable(e)
        })
    }

    /// Drops the shared connection, unless another operation holds it this instant (taking a
    /// copy, or opening a new one, which must be kept); a broken one is then dropped by the
    /// next error it gives.
    fn forget_connection(&self) {
        if let Ok(mut shared) = self.connection.try_lock() {
            shared.take();
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// [`Kv::admit_each`] in Lua, so every hit is one step on the server: KEYS are the limits'
/// keys, ARGV is now, then each key's interval and window. For each key in order it returns
/// `1, backlog` when admitted (the new TAT's distance ahead of now), or `0, wait` and stops,
/// in milliseconds. A key lives until its TAT passes (at least one millisecond).
const ADMIT_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local answers = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local next_tat = tat + interval
  if next_tat - now > window then
    table.insert(answers, 0)
    table.insert(answers, next_tat - now - window)
    return answers
  end
  redis.call('SET', key, next_tat, 'PX', math.max(next_tat - now, 1))
  table.insert(answers, 1)
  table.insert(answers, next_tat - now)
end
return answers
";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Kv for RedisKv {
    async fn get(&self, key: &str) -> AppResult<Option<String>> {
        self.query(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> AppResult<()> {
        self.query(redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl))).await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> AppResult<bool> {
        let reply: Option<String> =
            self.query(redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl)).arg("NX")).await?;
        Ok(reply.is_some())
    }

    async fn take(&self, key: &str) -> AppResult<Option<String>> {
        self.query(redis::cmd("GETDEL").arg(self.key(key))).await
    }

    async fn delete(&self, keys: &[&str]) -> AppResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        self.query(redis::cmd("DEL").arg(keys)).await
    }

    async fn write(&self, writes: &[Write]) -> AppResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // MULTI … EXEC: no other client sees the batch half applied.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for write in writes {
            match write {
                Write::Set { key, value, ttl } => {
                    pipe.cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(*ttl))
                }
                Write::Delete { key } => pipe.cmd("DEL").arg(self.key(key)),
            }
            .ignore();
        }
        self.query_pipe(&pipe).await
    }

    async fn increment(&self, key: &str, ttl: Duration) -> AppResult<u64> {
        let key = self.key(key);
        // MULTI: create the counter with its TTL if absent, then count; atomic as one unit.
        let (count,): (u64,) = self
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(millis(ttl))
                    .arg("NX")
                    .ignore()
                    .cmd("INCR")
                    .arg(&key),
            )
            .await?;
        Ok(count)
    }

    async fn admit(&self, key: &str, now_ms: i64, interval_ms: i64, window_ms: i64) -> AppResult<Admission> {
        let answers = self.admit_each(&[Hit { key, interval_ms, window_ms }], now_ms).await?;
        answers.into_iter().next().ok_or_else(|| AppError::internal("the admit script answered nothing"))
    }

    async fn admit_each(&self, hits: &[Hit<'_>], now_ms: i64) -> AppResult<Vec<Admission>> {
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let mut script = redis::cmd("EVAL");
        script.arg(ADMIT_SCRIPT).arg(hits.len());
        for hit in hits {
            script.arg(self.key(hit.key));
        }
        script.arg(now_ms);
        for hit in hits {
            script.arg(hit.interval_ms).arg(hit.window_ms);
        }
        let flat: Vec<i64> = self.query(&script).await?;
        let answers: Vec<Admission> = flat
            .chunks_exact(2)
            .filter_map(|pair| {
                let [admitted, ms] = *pair else { return None };
                let ms = Duration::from_millis(ms.max(0).unsigned_abs());
                Some(if admitted == 1 { Admission::Admitted { backlog: ms } } else { Admission::Refused { wait: ms } })
            })
            .collect();
        if answers.is_empty() || answers.len() > hits.len() {
            return Err(AppError::internal("the admit script's answer does not match its hits"));
        }
        Ok(answers)
    }

    async fn ping(&self) -> AppResult<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Redis that takes the connection and reads, but never answers: every operation is
    /// bounded by `TIMEOUT` alone (the client's own response timeout is off).
    #[tokio::test]
    async fn a_redis_that_never_answers_is_unavailable_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let url = format!("redis://{address}");
        let connecting = RedisKv::connect(&url, "test:");
        let refused = tokio::time::timeout(TIMEOUT * 2, connecting).await.map(Result::err);
        assert!(matches!(refused, Ok(Some(AppError::Unavailable(_)))), "{refused:?}");
        assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    }

    /// On the Redis the suite runs against: hits in order stop at the first refusal, a refused
    /// or unasked key is not counted, and a key named twice sees what its first hit wrote.
    #[tokio::test]
    async fn the_admit_script_counts_hits_in_order_up_to_the_first_refusal() {
        let Ok(url) = std::env::var("IDGATE_TEST_REDIS_URL") else { return };
        let prefix = format!("test-admit-{}:", uuid::Uuid::new_v4().simple());
        let kv = RedisKv::connect(&url, &prefix).await.unwrap_or_else(|e| panic!("{e:?}"));
        let now = chrono::Utc::now().timestamp_millis();
        // "a" fits two a minute, "b" and "c" one.
        let a = Hit { key: "a", interval_ms: 30_000, window_ms: 60_000 };
        let b = Hit { key: "b", interval_ms: 60_000, window_ms: 60_000 };
        let c = Hit { key: "c", interval_ms: 60_000, window_ms: 60_000 };
        let admitted = |seconds: u64| Admission::Admitted { backlog: Duration::from_secs(seconds) };
        let refused = |seconds: u64| Admission::Refused { wait: Duration::from_secs(seconds) };
        let admit = |hits: Vec<Hit<'static>>| {
            let kv = &kv;
            async move { kv.admit_each(&hits, now).await.unwrap_or_else(|e| panic!("{e:?}")) }
        };
        assert_eq!(admit(vec![a, b]).await, [admitted(30), admitted(60)]);
        assert_eq!(admit(vec![a, b]).await, [admitted(60), refused(60)], "b is full");
        assert_eq!(admit(vec![a, c]).await, [refused(30)], "a refuses, c is not asked");
        assert_eq!(admit(vec![c, c]).await, [admitted(60), refused(60)], "c's second hit sees its first");
        assert_eq!(admit(vec![]).await, []);
        kv.delete(&["a", "b", "c"]).await.unwrap_or_else(|e| panic!("{e:?}"));
    }
}
