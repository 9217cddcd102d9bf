//! A dedicated thread pool for password hashing. Its threads run under SCHED_IDLE, so the
//! kernel gives request handling the CPU first: a burst of logins slows other logins, not
//! token checks. Admission is bounded: beyond the queue limit, callers get RATE_LIMITED
//! instead of an ever-growing backlog (each running argon2 job holds its memory cost).
//!
//! With one thread per core (the default), each thread is kept on a core of its own. Left to
//! the scheduler, two of them sometimes waited on one core while the other core idled: under a
//! login flood on two cores, 0.1-0.2 ms of idle core per login, about 1 % of the login rate;
//! pinned, none. (Likely why: the balancer weighs a SCHED_IDLE thread at 3 against a request
//! thread's 1,024, and a core that idles only briefly between requests does not look for work.)

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
        // Fewer threads than cores (a CPU quota) or more (configured) are left to the scheduler:
        // pinned, they would leave a core unused or share one while another is free.
        let allowed = cores::allowed();
        let pinned = (threads == allowed.len()).then_some(allowed);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("idgate-hash-{i}"))
            .start_handler(move |i| {
                if let Some(core) = pinned.as_ref().and_then(|cores| cores.get(i))
                    && let Err(e) = cores::pin_current_thread(*core)
                {
                    tracing::warn!(error = %e, core, "could not keep a hashing thread on its core");
                }
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

/// The cores this process may run on, and keeping a thread on one of them.
#[cfg(target_os = "linux")]
mod cores {
    use nix::{
        sched::{CpuSet, sched_getaffinity, sched_setaffinity},
        unistd::Pid,
    };

    /// The cores the calling thread may run on (the process's, unless it was pinned), in order;
    /// empty if the kernel does not say.
    pub(super) fn allowed() -> Vec<usize> {
        let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else { return Vec::new() };
        (0..CpuSet::count()).filter(|&core| set.is_set(core).unwrap_or(false)).collect()
    }

    /// Keeps the calling thread on `core` from now on.
    pub(super) fn pin_current_thread(core: usize) -> std::io::Result<()> {
        let mut set = CpuSet::new();
        set.set(core)?;
        Ok(sched_setaffinity(Pid::from_raw(0), &set)?)
    }
}

/// Elsewhere the threads are left to the scheduler.
#[cfg(not(target_os = "linux"))]
mod cores {
    pub(super) fn allowed() -> Vec<usize> {
        Vec::new()
    }

    pub(super) fn pin_current_thread(_core: usize) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{HashPool, cores};

    /// Each of the pool's threads, in order, reports the cores it may run on.
    fn cores_of_each_thread(pool: &HashPool) -> Vec<Vec<usize>> {
        pool.pool.broadcast(|_| cores::allowed())
    }

    #[test]
    fn one_thread_per_core_keeps_each_thread_on_a_core_of_its_own() {
        let allowed = cores::allowed();
        assert!(!allowed.is_empty(), "the kernel names the cores this test may use");
        let pool = HashPool::new(allowed.len(), 1).unwrap_or_else(|e| panic!("pool: {e}"));
        let expected: Vec<Vec<usize>> = allowed.iter().map(|&core| vec![core]).collect();
        assert_eq!(cores_of_each_thread(&pool), expected);
    }

    #[test]
    fn more_threads_than_cores_are_left_to_the_scheduler() {
        let allowed = cores::allowed();
        let pool = HashPool::new(allowed.len() + 1, 1).unwrap_or_else(|e| panic!("pool: {e}"));
        assert_eq!(cores_of_each_thread(&pool), vec![allowed; pool.threads()]);
    }
}
