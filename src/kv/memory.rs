//! The embedded store: a map in process memory. Expiry follows the injected clock, so tests
//! that move time see entries expire. Not shared between processes: with more than one
//! instance, configure Redis.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Kv;
use crate::{clock::Clock, error::AppResult};

/// Entries beyond this count trigger a sweep of expired ones on the next write.
const SWEEP_THRESHOLD: usize = 10_000;

struct Entry {
    value: String,
    expires_at: DateTime<Utc>,
}

/// In-process [`Kv`].
pub struct MemoryKv {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryKv {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deadline(&self, ttl: Duration) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
    }

    /// Drops `key` if expired, then returns whether it is live.
    fn live(&self, entries: &mut HashMap<String, Entry>, key: &str) -> bool {
        let now = self.clock.now();
        match entries.get(key) {
            Some(entry) if entry.expires_at > now => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    fn insert(&self, entries: &mut HashMap<String, Entry>, key: &str, value: String, ttl: Duration) {
        if entries.len() >= SWEEP_THRESHOLD {
            let now = self.clock.now();
            entries.retain(|_, entry| entry.expires_at > now);
        }
        entries.insert(key.to_owned(), Entry { value, expires_at: self.deadline(ttl) });
    }
}

#[async_trait]
impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> AppResult<Option<String>> {
        let mut entries = self.lock();
        Ok(self.live(&mut entries, key).then(|| entries.get(key).map(|e| e.value.clone())).flatten())
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> AppResult<()> {
        let mut entries = self.lock();
        self.insert(&mut entries, key, value.to_owned(), ttl);
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> AppResult<bool> {
        let mut entries = self.lock();
        if self.live(&mut entries, key) {
            return Ok(false);
        }
        self.insert(&mut entries, key, value.to_owned(), ttl);
        Ok(true)
    }

    async fn take(&self, key: &str) -> AppResult<Option<String>> {
        let mut entries = self.lock();
        let live = self.live(&mut entries, key);
        Ok(entries.remove(key).filter(|_| live).map(|e| e.value))
    }

    async fn delete(&self, key: &str) -> AppResult<()> {
        self.lock().remove(key);
        Ok(())
    }

    async fn increment(&self, key: &str, ttl: Duration) -> AppResult<u64> {
        let mut entries = self.lock();
        let count = if self.live(&mut entries, key) {
            entries.get_mut(key).map_or(1, |entry| {
                let next = entry.value.parse::<u64>().unwrap_or(0) + 1;
                entry.value = next.to_string();
                next
            })
        } else {
            self.insert(&mut entries, key, "1".into(), ttl);
            1
        };
        Ok(count)
    }

    async fn ping(&self) -> AppResult<()> {
        Ok(())
    }
}
