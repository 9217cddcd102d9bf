//! The shared store: Redis through a deadpool connection pool. Every key is prefixed, so
//! deployments (and test runs) can share one Redis without seeing each other's state.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Config, Connection, Pool, Runtime, redis};

use super::Kv;
use crate::error::{AppError, AppResult};

/// Redis-backed [`Kv`].
pub struct RedisKv {
    pool: Pool,
    prefix: String,
}

impl RedisKv {
    /// Builds the pool and checks that Redis answers.
    pub async fn connect(url: &str, prefix: &str) -> AppResult<Self> {
        let pool = Config::from_url(url).create_pool(Some(Runtime::Tokio1)).map_err(AppError::internal)?;
        let kv = Self { pool, prefix: prefix.to_owned() };
        kv.ping().await?;
        Ok(kv)
    }

    async fn conn(&self) -> AppResult<Connection> {
        self.pool.get().await.map_err(AppError::internal)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// [`Kv::admit`] in Lua: returns 0 when admitted, else the milliseconds to wait. The key
/// lives until its TAT passes (at least one millisecond).
const ADMIT_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > window then return next_tat - now - window end
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(next_tat - now, 1))
return 0
";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Kv for RedisKv {
    async fn get(&self, key: &str) -> AppResult<Option<String>> {
        let mut conn = self.conn().await?;
        redis::cmd("GET").arg(self.key(key)).query_async(&mut conn).await.map_err(AppError::internal)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> AppResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(AppError::internal)
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> AppResult<bool> {
        let mut conn = self.conn().await?;
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(AppError::internal)?;
        Ok(reply.is_some())
    }

    async fn take(&self, key: &str) -> AppResult<Option<String>> {
        let mut conn = self.conn().await?;
        redis::cmd("GETDEL").arg(self.key(key)).query_async(&mut conn).await.map_err(AppError::internal)
    }

    async fn delete(&self, key: &str) -> AppResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("DEL").arg(self.key(key)).query_async::<()>(&mut conn).await.map_err(AppError::internal)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> AppResult<u64> {
        let mut conn = self.conn().await?;
        let key = self.key(key);
        // MULTI: create the counter with its TTL if absent, then count; atomic as one unit.
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("PX")
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(AppError::internal)?;
        Ok(count)
    }

    async fn admit(&self, key: &str, now_ms: i64, interval_ms: i64, window_ms: i64) -> AppResult<Option<Duration>> {
        let mut conn = self.conn().await?;
        // One script: read, decide and write happen as one step on the server.
        let wait_ms: i64 = redis::cmd("EVAL")
            .arg(ADMIT_SCRIPT)
            .arg(1)
            .arg(self.key(key))
            .arg(now_ms)
            .arg(interval_ms)
            .arg(window_ms)
            .query_async(&mut conn)
            .await
            .map_err(AppError::internal)?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms.unsigned_abs())))
    }

    async fn ping(&self) -> AppResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop).map_err(AppError::internal)
    }
}
