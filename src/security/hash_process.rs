//! Password hashing in a child process with a session of its own (`idgate hash-worker`).
//!
//! Why a process: Linux's autogroup (on by default in most distributions' kernels) shares the
//! CPU between sessions first and between the threads of a session second. SCHED_IDLE on the
//! hashing threads then ranks them below idgate's other threads only: idgate's session, busy
//! hashing, meets PostgreSQL, Redis and every other service as an equal, and they (so requests
//! that wait on them) queue behind hashes for milliseconds. A thread cannot leave its process's
//! session, so the hashing threads live in a child that starts a session (`setsid`) and sets
//! that session's nice to 19: there, a flood of logins yields the CPU to everything else.
//! Without autogroup the child's threads are SCHED_IDLE like any others, as before.
//!
//! The protocol is one JSON object per line: `{"id":…,"job":…}` on the child's stdin,
//! `{"id":…,"answer":…}` on its stdout, answers in any order. Lines holding passwords are wiped
//! once written or read. The child exits when its stdin closes, so it never outlives idgate.
//! If it dies, the jobs it held go once more to a new one (a job is pure, so it can run twice).

use std::{
    collections::HashMap,
    io::{BufRead, Write},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout, Command},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
};
use zeroize::{Zeroize, Zeroizing};

use super::hash_pool::HashPool;
use crate::{
    error::{AppError, AppResult},
    telemetry,
};

/// The subcommand that runs [`serve`].
pub const SUBCOMMAND: &str = "hash-worker";

/// The nice value of the worker's session: the lowest priority there is.
const SESSION_NICE: &str = "19";

#[derive(Serialize, Deserialize)]
struct Request<J> {
    id: u64,
    job: J,
}

#[derive(Serialize, Deserialize)]
struct Reply<A> {
    id: u64,
    answer: A,
    /// How long the job waited in the worker for a thread.
    waited_secs: f64,
}

/// The parent's side: sends jobs to the worker process, starting it again if it has died.
pub struct HashProcess {
    program: PathBuf,
    threads: usize,
    queue_limit: usize,
    /// Jobs sent and not yet answered, at most `threads + queue_limit`: a permit is held until
    /// the answer arrives, even when the request that asked has gone.
    admission: Arc<Semaphore>,
    worker: Mutex<Option<Arc<Worker>>>,
    next_id: AtomicU64,
}

/// One running worker process.
struct Worker {
    jobs: mpsc::UnboundedSender<Zeroizing<String>>,
    waiting: Arc<Mutex<Waiting>>,
}

#[derive(Default)]
struct Waiting {
    /// The worker's stdout has closed: nothing more will be answered.
    ended: bool,
    by_id: HashMap<u64, (oneshot::Sender<Reply<Value>>, OwnedSemaphorePermit)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HashProcess {
    /// Starts the worker: this same executable, with `threads` hashing threads (0: one per
    /// core) and `queue_limit` jobs allowed to wait beyond them.
    pub fn start(threads: usize, queue_limit: usize) -> AppResult<Self> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        // /proc/self/exe still runs this binary after a package upgrade has replaced the file.
        let program = match std::fs::exists("/proc/self/exe") {
            Ok(true) => PathBuf::from("/proc/self/exe"),
            _ => std::env::current_exe().map_err(AppError::internal)?,
        };
        let process = Self {
            program,
            threads,
            queue_limit,
            admission: Arc::new(Semaphore::new(threads + queue_limit)),
            worker: Mutex::new(None),
            next_id: AtomicU64::new(0),
        };
        process.worker()?;
        Ok(process)
    }

    /// Hashing threads in the worker.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Has the worker do `job` and returns its answer. A job whose worker ended before
    /// answering is sent once more, to a new worker: jobs are pure, and a crash should cost a
    /// user nothing.
    ///
    /// Errors: RATE_LIMITED when the queue is full; INTERNAL when the worker cannot be started
    /// or ends twice before answering.
    pub async fn run<J: Serialize, A: DeserializeOwned>(&self, job: &J) -> AppResult<A> {
        for _ in 0..2 {
            if let Some(answer) = self.attempt(job).await? {
                return serde_json::from_value(answer).map_err(AppError::internal);
            }
        }
        Err(AppError::internal_msg("the hashing process ended twice before answering"))
    }

    /// Sends `job` to the worker: its answer, or `None` if the worker ended first.
    async fn attempt<J: Serialize>(&self, job: &J) -> AppResult<Option<Value>> {
        let permit =
            Arc::clone(&self.admission).try_acquire_owned().map_err(|_| AppError::RateLimited { retry_after: 1 })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = Zeroizing::new(serde_json::to_string(&Request { id, job }).map_err(AppError::internal)?);
        line.push('\n');
        let (answer, answered) = oneshot::channel();
        if !self.worker()?.send(id, line, (answer, permit)) {
            return Ok(None);
        }
        self.count_queue();
        let reply = answered.await.ok();
        self.count_queue();
        Ok(reply.map(|reply| {
            telemetry::metrics().hash_wait_seconds.observe(reply.waited_secs);
            reply.answer
        }))
    }

    /// Sets the queue-depth metric to the jobs in the worker beyond its threads (they run in
    /// the order sent), so the metric reads as it does with `IDGATE_HASH_WORKER=threads`.
    fn count_queue(&self) {
        let in_worker = self.threads + self.queue_limit - self.admission.available_permits();
        let waiting = in_worker.saturating_sub(self.threads);
        telemetry::metrics().hash_queue.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// The running worker, or a new one if there is none or it has ended.
    fn worker(&self) -> AppResult<Arc<Worker>> {
        let mut current = lock(&self.worker);
        if let Some(worker) = current.as_ref().filter(|w| !lock(&w.waiting).ended) {
            return Ok(Arc::clone(worker));
        }
        let worker = Arc::new(self.spawn()?);
        *current = Some(Arc::clone(&worker));
        Ok(worker)
    }

    fn spawn(&self) -> AppResult<Worker> {
        let mut child = Command::new(&self.program)
            // Named as idgate was, so `ps` shows `idgate hash-worker`, not `/proc/self/exe`.
            .arg0(std::env::args_os().next().unwrap_or_else(|| "idgate".into()))
            .args([SUBCOMMAND, "--threads", &self.threads.to_string(), "--queue-limit", &self.queue_limit.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| AppError::internal_msg(format!("cannot start the hashing process: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(AppError::internal_msg("the hashing process has no pipes"));
        };
        let (jobs, lines) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        tokio::spawn(write_jobs(stdin, lines));
        tokio::spawn(read_answers(child, stdout, Arc::clone(&waiting)));
        Ok(Worker { jobs, waiting })
    }
}

impl Worker {
    /// Sends a job's line; false if the worker has ended.
    fn send(
        &self,
        id: u64,
        line: Zeroizing<String>,
        waiter: (oneshot::Sender<Reply<Value>>, OwnedSemaphorePermit),
    ) -> bool {
        let mut waiting = lock(&self.waiting);
        // Checked under the lock the reader takes to fail everything: no job is left waiting
        // on a worker that has already ended.
        if waiting.ended || self.jobs.send(line).is_err() {
            return false;
        }
        waiting.by_id.insert(id, waiter);
        true
    }
}

/// Writes job lines to the worker until idgate drops the worker or the pipe breaks.
async fn write_jobs(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Zeroizing<String>>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// Hands each answer to its waiter; when the worker's stdout closes, fails every waiter and
/// reaps the process.
async fn read_answers(mut child: tokio::process::Child, stdout: ChildStdout, waiting: Arc<Mutex<Waiting>>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Reply<Value>>(&line) {
            Ok(reply) => {
                let waiter = lock(&waiting).by_id.remove(&reply.id);
                if let Some((waiter, permit)) = waiter {
                    // Free the job's place before its waiter counts the queue.
                    drop(permit);
                    // The receiver is gone only if the request was cancelled.
                    let _ = waiter.send(reply);
                }
            }
            Err(e) => tracing::error!(error = %e, "the hashing process wrote a line that is not an answer"),
        }
    }
    {
        let mut waiting = lock(&waiting);
        waiting.ended = true;
        waiting.by_id.clear();
    }
    match child.wait().await {
        Ok(status) => tracing::warn!(%status, "the hashing process ended; the next hash starts another"),
        Err(e) => tracing::warn!(error = %e, "the hashing process ended; the next hash starts another"),
    }
}

/// The worker's side: leaves idgate's session, then reads jobs from stdin until it closes.
/// `prepare` turns each job into work for `pool` (on this thread, in the order read); the
/// thread that does it writes the answer, so a job crosses no thread besides its hashing one.
pub fn serve<J, A, W>(pool: &HashPool, prepare: impl Fn(J) -> W) -> AppResult<()>
where
    J: DeserializeOwned,
    A: Serialize,
    W: FnOnce() -> A + Send + 'static,
{
    leave_session();
    let mut input = std::io::stdin().lock();
    let mut line = Zeroizing::new(String::new());
    loop {
        // Wiped, not only emptied: the last line held a password.
        line.zeroize();
        if input.read_line(&mut line).map_err(AppError::internal)? == 0 {
            return Ok(());
        }
        let Request { id, job } = serde_json::from_str::<Request<J>>(&line).map_err(AppError::internal)?;
        let work = prepare(job);
        pool.spawn(move |waited| {
            let reply = Reply { id, answer: work(), waited_secs: waited.as_secs_f64() };
            let Ok(mut line) = serde_json::to_string(&reply) else {
                tracing::error!("an answer could not be written as JSON");
                return;
            };
            line.push('\n');
            let mut stdout = std::io::stdout().lock();
            // A broken pipe means idgate has gone; stdin closes next and ends the loop.
            let _ = stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush());
        });
    }
}

/// Starts a session of our own and gives it the lowest priority (see the module comment).
/// Either can fail harmlessly: without autogroup the session's nice does not exist.
fn leave_session() {
    if let Err(e) = rustix::process::setsid() {
        tracing::warn!(error = %e, "the hashing process could not start a session of its own");
        return;
    }
    if let Err(e) = std::fs::write("/proc/self/autogroup", SESSION_NICE) {
        tracing::debug!(error = %e, "no autogroup priority to lower");
    }
}
