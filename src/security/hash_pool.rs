//! A dedicated thread pool for password hashing. Its threads run under SCHED_IDLE, so the
//! kernel gives request handling the CPU first: a burst of logins slows other logins, not
//! token checks. Admission is bounded: beyond the queue limit, callers get RATE_LIMITED
//! instead of an ever-growing backlog (each running argon2 job holds its memory cost).

use std::sync::Arc;

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
};
use tokio::sync::{Semaphore, oneshot};

use crate::{
    error::{AppError, AppResult},
    telemetry,
};

/// Runs CPU-heavy jobs off the async threads at idle priority.
pub struct HashPool {
    pool: rayon::ThreadPool,
    admission: Arc<Semaphore>,
    threads: usize,
}

impl HashPool {
    /// `threads` = 0 means one per core; `queue_limit` jobs may wait beyond the running ones.
    pub fn new(threads: usize, queue_limit: usize) -> AppResult<Self> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("idgate-hash-{i}"))
            .start_handler(|_| {
                let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
                if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
                    tracing::warn!(error = ?e, "could not lower the hashing thread's priority");
                }
            })
            .build()
            .map_err(AppError::internal)?;
        Ok(Self { pool, admission: Arc::new(Semaphore::new(threads + queue_limit)), threads })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on the pool and awaits its result.
    ///
    /// Errors: RATE_LIMITED when the queue is full.
    pub async fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> AppResult<R> {
        let permit =
            Arc::clone(&self.admission).try_acquire_owned().map_err(|_| AppError::RateLimited { retry_after: 1 })?;
        let (done, result) = oneshot::channel();
        let metrics = telemetry::metrics();
        metrics.hash_queue.inc();
        let queued = std::time::Instant::now();
        self.pool.spawn(move || {
            metrics.hash_queue.dec();
            metrics.hash_wait_seconds.observe(queued.elapsed().as_secs_f64());
            let _permit = permit;
            // The receiver is gone only if the request was cancelled; nothing to report then.
            let _ = done.send(job());
        });
        result.await.map_err(|_| AppError::internal_msg("a hashing job was dropped"))
    }
}
