//! Throughput, latency and memory figures for idgate, printed (never asserted):
//! `cargo bench --bench throughput`.
//!
//! 1. argon2id hashes per second on all cores (the ceiling for logins);
//! 2. access-token signatures and verifications per second, with and without the cache;
//! 3. the server's resident memory (RSS) idle, after a login flood, and per idle keep-alive
//!    connection (1,000 of them);
//! 4. logins per second through the API (the default login: password, then a mailed code),
//!    and their ratio to the hash ceiling, measured in phases alternating with it; the server's
//!    CPU per login, in its hashing threads and in all the others; and where all the cores' time
//!    went per login (the server, this load generator, the rest, idle) beside a hash alone;
//!    and the same ratio at an even machine speed: the cores' share spent hashing with logins
//!    against hashing alone, which the machine's drift between phases does not move; and how
//!    much of the cores' time 0.95 of the hash rate leaves a login besides its hash, beside what
//!    PostgreSQL and Redis (when they run here) took of it;
//! 5. requests per second with p50/p99 for a token-checked `me` and for `{ __typename }`
//!    (32 clients, flat out);
//! 6. `me` p50/p99 at a steady 200 requests/s on an idle server, then its p99 at that rate while
//!    logins saturate the hashing pool, and the login rate meanwhile (three rounds of the two,
//!    the median shown).
//!
//! The server is the release `idgate` binary in a process of its own (so its RSS is its own),
//! on 127.0.0.1 with the embedded defaults (a SQLite file, which also holds the KV) and the
//! default argon2 cost, its mail written to tmpfs where the machine has one (as production hands
//! it to an SMTP relay; see `mail_scratch`); load comes from this process on the same machine,
//! so absolute numbers include the load generator's share of the CPU. The login clients and
//! the steady-rate `me` clients each run on a thread of their own, as two `wrk -t1` processes
//! would. Ratios against a bare reference server: `python3 benches/compare_reference.py`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use idgate::{
    auth::{keys, tokens::TokenService},
    clock::SystemClock,
    config::{JwtAlgorithm, Settings},
    security::{
        hash_pool::HashPool,
        passwords::{HashCost, Passwords},
    },
};
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple 93";
const PHASE: Duration = Duration::from_secs(5);
/// Latency phases run longer: a p99 needs thousands of samples to be more than noise.
const LATENCY_PHASE: Duration = Duration::from_secs(12);
/// Login phases, each after a hash-rate phase.
const LOGIN_ROUNDS: u32 = 3;
/// Pairs of latency phases, idle then during a login flood.
const LATENCY_ROUNDS: usize = 3;

/// The login rate idgate aims for at an even speed, as a share of the hash rate (README,
/// Benchmarks).
const LOGIN_GOAL: f64 = 0.95;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Hashes per second of plain argon2id on one normal-priority thread per core.
fn raw_hash_rate() -> f64 {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version, password_hash::SaltString};
    let d = Settings::default();
    let start = Instant::now();
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            std::thread::spawn(move || {
                let params = Params::new(d.argon2_memory_kib, d.argon2_iterations, d.argon2_parallelism, None).unwrap();
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut n = 0u64;
                while start.elapsed() < PHASE {
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    argon.hash_password(PASSWORD.as_bytes(), &salt).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// A phase of hashing alone on idgate's pool.
struct HashPhase {
    /// Hashes per second.
    rate: f64,
    /// The share of all cores' time the pool's threads spent hashing.
    share: f64,
}

/// Hashes per second with jobs always in flight on the hashing pool, and the share of the
/// cores they took (the rest went to this process's other threads, the kernel and whatever else
/// runs on the machine).
async fn hash_rate() -> HashPhase {
    let defaults = Settings::default();
    let cost = HashCost {
        memory_kib: defaults.argon2_memory_kib,
        iterations: defaults.argon2_iterations,
        parallelism: defaults.argon2_parallelism,
    };
    let pool = Arc::new(HashPool::new(0, 256).unwrap());
    let passwords = Passwords::new(cost, pool).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // Twice as many jobs as threads, so no thread waits for the next job.
    let workers: Vec<_> = (0..cores() * 2)
        .map(|_| {
            let (passwords, done) = (passwords.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while start.elapsed() < PHASE {
                    passwords.hash(SecretString::from(PASSWORD)).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The pool's threads began with it, so their CPU time is this phase's (read while they live).
    let hashing: f64 = thread_cpu_secs(std::process::id())
        .into_iter()
        .filter(|(name, _)| name.starts_with("idgate-hash"))
        .map(|(_, secs)| secs)
        .sum();
    HashPhase { rate: done.load(Ordering::Relaxed) as f64 / elapsed, share: hashing / (elapsed * cores() as f64) }
}

/// Signatures per second, verifications per second of distinct tokens (no cache hits), and of
/// one reused token.
fn jwt_rates() -> (f64, f64, f64) {
    let pem = keys::generate_rsa_pem().unwrap();
    let key = keys::SigningKey::from_pem(JwtAlgorithm::RS256, pem.expose_secret(), None).unwrap();
    let tokens =
        TokenService::new(keys::KeyRing::single(key), "http://bench", "idgate", 900, Arc::new(SystemClock), 16);
    let user = idgate::domain::UserId(uuid::Uuid::new_v4());
    let role = idgate::domain::Role::User;
    let start = Instant::now();
    let distinct: Vec<String> = (0..2000).map(|_| tokens.issue(user, uuid::Uuid::new_v4(), role).unwrap()).collect();
    let signed = distinct.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for token in &distinct {
        tokens.verify(token).unwrap();
    }
    let uncached = distinct.len() as f64 / start.elapsed().as_secs_f64();
    let one = &distinct[0];
    let rounds = 200_000;
    let start = Instant::now();
    for _ in 0..rounds {
        tokens.verify(one).unwrap();
    }
    (signed, uncached, rounds as f64 / start.elapsed().as_secs_f64())
}

struct Server {
    /// The GraphQL endpoint's URL.
    url: String,
    /// Its `host:port`, for the clients that open connections themselves.
    address: String,
    client: reqwest::Client,
    /// Where it writes its mail (see [`mail_scratch`]).
    outbox: std::path::PathBuf,
    process: std::process::Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Server {
    /// Starts the release binary in `dir` (created) on a free port, its mail written to
    /// `outbox`, and waits until it answers /healthz. Without a `database`, on a fresh SQLite
    /// file in `dir`, which also holds the KV.
    async fn start(
        dir: std::path::PathBuf,
        outbox: std::path::PathBuf,
        database: Option<&str>,
        redis: Option<&str>,
    ) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("IDGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("IDGATE_DATABASE_URL", database.unwrap_or(&sqlite))
            .env("IDGATE_OUTBOX_DIR", &outbox)
            // Login throughput is measured here, not email verification or rate limits.
            .env("IDGATE_REQUIRE_EMAIL_VERIFICATION", "false")
            .env("IDGATE_LOGIN_RATE_PER_IP", "1000000")
            .env("IDGATE_LOGIN_RATE_PER_EMAIL", "1000000")
            .env("IDGATE_REGISTER_RATE_PER_IP", "1000000")
            .env("IDGATE_OTP_RATE_PER_IP", "1000000")
            .current_dir(&dir)
            .stdout(std::process::Stdio::null());
        if let Some(redis) = redis {
            command.env("IDGATE_REDIS_URL", redis);
        }
        let process = command.spawn().unwrap();
        let address = format!("127.0.0.1:{port}");
        let url = format!("http://{address}");
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
        let started = Instant::now();
        while client.get(format!("{url}/healthz")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url: format!("{url}/graphql"), address, client, outbox, process }
    }

    /// CPU time the server has used so far, in seconds: its hashing threads (which live as long
    /// as it does), then everything else (tokio's blocking threads, for one, end when idle).
    fn cpu_secs(&self) -> (f64, f64) {
        let hashing: f64 = thread_cpu_secs(self.process.id())
            .into_iter()
            .filter(|(name, _)| name.starts_with("idgate-hash"))
            .map(|(_, secs)| secs)
            .sum();
        (hashing, process_cpu_secs(&self.process.id().to_string()) - hashing)
    }

    /// The server process's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(&self.url).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn login(&self, email: &str) -> Value {
        self.client.post(&self.url).json(&login_body(email)).send().await.unwrap().json().await.unwrap()
    }

    /// Logs in through the code step (reading the code from the outbox) and returns the token.
    async fn access_token(&self, email: &str) -> String {
        let challenge = self.login(email).await["data"]["login"]["challengeId"].as_str().unwrap().to_owned();
        let mut mails: Vec<_> = std::fs::read_dir(&self.outbox).unwrap().map(|e| e.unwrap().path()).collect();
        mails.sort();
        let mail = std::fs::read_to_string(mails.last().unwrap()).unwrap();
        let at = mail.find("code is ").unwrap() + "code is ".len();
        let code = &mail[at..at + 6];
        let verified = self
            .gql(
                None,
                "mutation($i: VerifyOtpInput!) { verifyOtp(input: $i) { accessToken } }",
                json!({ "i": { "challengeId": challenge, "code": code } }),
            )
            .await;
        verified["data"]["verifyOtp"]["accessToken"].as_str().unwrap().to_owned()
    }
}

/// The password step of a login (a code is mailed), as a GraphQL request.
fn login_body(email: &str) -> Value {
    let query = "mutation($i: LoginInput!) { login(input: $i) { ... on OtpChallenge { challengeId } } }";
    json!({ "query": query, "variables": { "i": { "email": email, "password": PASSWORD } } })
}

/// Runs `clients` closed-loop login clients until `stop`; its thread returns completed logins.
///
/// They run on a thread of their own (a single-threaded runtime), as `wrk -t1` would: each
/// thread of the load generator that wakes on these two cores preempts the server's hashing or
/// delays its requests, so it has as few as the load needs. And each client is what `wrk` sends
/// through: one bare HTTP/1.1 keep-alive connection and a request body built once, since the
/// load generator's own CPU per login is taken from the hashing it is measured against (through
/// reqwest it took 0.21 ms a login, against `wrk`'s 0.08 ms, on a machine that hashed in 26 ms).
fn login_load(server: &Server, clients: usize, stop: &Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (address, stop) = (server.address.clone(), Arc::clone(stop));
    on_a_thread_of_its_own(move || async move {
        let clients = (0..clients).map(|i| {
            let (address, stop) = (address.clone(), Arc::clone(&stop));
            async move {
                let body = hyper::body::Bytes::from(login_body(&format!("bench{}@example.com", i % 4)).to_string());
                let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
                tokio::spawn(connection);
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    let request = hyper::Request::post("/graphql")
                        .header(hyper::header::HOST, &address)
                        .header(hyper::header::CONTENT_TYPE, "application/json")
                        .body(http_body_util::Full::new(body.clone()))
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    let answer = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
                    let answer: Value = serde_json::from_slice(&answer).unwrap();
                    assert!(answer["errors"].is_null(), "{answer}");
                    done += 1;
                }
                done
            }
        });
        futures::future::join_all(clients).await.into_iter().sum()
    })
}

/// Runs the future that `make` returns on a new thread, on a single-threaded runtime of its own.
fn on_a_thread_of_its_own<F>(make: impl FnOnce() -> F + Send + 'static) -> std::thread::JoinHandle<F::Output>
where
    F: std::future::Future,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(make())
    })
}

/// Waits for `thread` without holding up this runtime's workers.
async fn finished<R: Send + 'static>(thread: std::thread::JoinHandle<R>) -> R {
    tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap()
}

/// Runs `clients` clients sending `query` (with `token` as bearer, if any) for the phase, each
/// sending its next request as soon as the previous answer arrives. Returns every latency, sorted.
async fn query_load(server: &Arc<Server>, token: Option<&str>, query: &'static str, clients: usize) -> Vec<Duration> {
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (server, token) = (Arc::clone(server), token.map(str::to_owned));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while start.elapsed() < PHASE {
                    let sent = Instant::now();
                    let answer = server.gql(token.as_deref(), query, json!({})).await;
                    latencies.push(sent.elapsed());
                    assert!(answer["errors"].is_null(), "{answer}");
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort_unstable();
    all
}

/// Two clients sending `me` with `token` on a fixed schedule of `per_second` requests a second
/// in all, for the latency phase; returns every latency, sorted. They run on a thread of their
/// own, as `wrk` would in a process of its own, so that their timing does not wait on the login
/// clients' tasks.
async fn steady_me_latencies(server: &Server, token: &str, per_second: u32) -> Vec<Duration> {
    const CLIENTS: u32 = 2;
    let (url, token) = (server.url.clone(), token.to_owned());
    let probe = on_a_thread_of_its_own(move || async move {
        let client = reqwest::Client::new();
        let body = json!({ "query": ME }).to_string();
        let start = Instant::now();
        let clients = (0..CLIENTS).map(|_| {
            let mut ticks = tokio::time::interval(Duration::from_secs(CLIENTS.into()) / per_second);
            let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
            async move {
                let mut latencies = Vec::new();
                while start.elapsed() < LATENCY_PHASE {
                    ticks.tick().await;
                    let sent = Instant::now();
                    let request = client.post(&url).bearer_auth(&token).header("content-type", "application/json");
                    let answer: Value = request.body(body.clone()).send().await.unwrap().json().await.unwrap();
                    latencies.push(sent.elapsed());
                    assert!(answer["errors"].is_null(), "{answer}");
                }
                latencies
            }
        });
        let mut all: Vec<Duration> = futures::future::join_all(clients).await.into_iter().flatten().collect();
        all.sort_unstable();
        all
    });
    finished(probe).await
}

/// Opens `count` connections, sends one request on each and keeps them open (idle, kept alive);
/// returns them so the caller decides when they close.
async fn idle_connections(server: &Server, count: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = &server.address;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = [0u8; 1024];
        let read = stream.read(&mut answer).await.unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
        connections.push(stream);
    }
    connections
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn stop_logins(logins: std::thread::JoinHandle<u64>, stop: &AtomicBool) -> u64 {
    stop.store(true, Ordering::Relaxed);
    finished(logins).await
}

const ME: &str = "{ me { id email } }";

#[tokio::main]
async fn main() {
    println!("idgate throughput on {} cores (argon2id m=19456 KiB, t=2, p=1; RS256)", cores());

    let raw = raw_hash_rate();
    println!("argon2id hashes/s, plain threads:       {raw:>10.1}");
    let hashes = hash_rate().await;
    println!(
        "argon2id hashes/s, idgate's pool:       {:>10.1}  (the ceiling for logins; hashing took {:.1} % of all cores)",
        hashes.rate,
        hashes.share * 100.0
    );

    let (signed, uncached, cached) = jwt_rates();
    println!("JWT signatures/s (RS256):               {signed:>10.0}  (one core)");
    println!("JWT verifications/s, signature checked: {uncached:>10.0}  (one core)");
    println!("JWT verifications/s, cached token:      {cached:>10.0}  (one core)");

    // Every server's files stay until the end: this machine's ext4 (no journal) skips inodes freed
    // in the last minutes when it creates a file, so deleting one server's files would make the
    // next server's slower to create.
    let scratch = tempfile::TempDir::new().unwrap();
    let mail = mail_scratch();
    println!("mail (a code per login) written to:     {}", mail.path().display());
    let (sqlite, sqlite_mail) = (scratch.path().join("sqlite"), mail.path().join("sqlite"));
    server_figures("SQLite (and its KV table)", sqlite, sqlite_mail, None, None).await;
    if let Ok(base) = std::env::var("IDGATE_BENCH_DATABASE_URL") {
        let name = format!("idgate_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&base).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let (host, _) = base.rsplit_once('/').unwrap();
        let redis = std::env::var("IDGATE_BENCH_REDIS_URL").ok();
        let label = if redis.is_some() { "PostgreSQL + Redis" } else { "PostgreSQL (and its KV table)" };
        let (dir, outbox) = (scratch.path().join("postgres"), mail.path().join("postgres"));
        server_figures(label, dir, outbox, Some(&format!("{host}/{name}")), redis.as_deref()).await;
        admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
    }
}

/// CPU time each thread of process `pid` has used so far, in seconds, with the thread's name
/// (from each thread's `schedstat`, in nanoseconds; threads that ended are not counted).
fn thread_cpu_secs(pid: u32) -> Vec<(String, f64)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let (Ok(name), Ok(stat)) =
            (std::fs::read_to_string(task.join("comm")), std::fs::read_to_string(task.join("schedstat")))
        else {
            continue;
        };
        threads.push((name, stat.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9));
    }
    threads
}

/// CPU time process `pid` (or `self`) has used so far, in seconds, its ended threads included:
/// `/proc/<pid>/stat`'s user and system time, in the kernel's 100 ticks a second.
fn process_cpu_secs(pid: &str) -> f64 {
    read_process_cpu_secs(pid).unwrap()
}

/// As `process_cpu_secs`, or None once the process is gone.
fn read_process_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses): state is the 3rd, utime the 14th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// CPU time all of this machine's processes named `name` (their `comm`) have used so far, in
/// seconds: PostgreSQL's backends and Redis, when they run here. A process that ends between
/// two readings takes its time with it, so only long-lived ones are measured right (PostgreSQL's
/// backends for the server's pooled connections are).
fn processes_cpu_secs(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == name))
        .filter_map(|pid| read_process_cpu_secs(&pid))
        .sum()
}

/// PostgreSQL's and Redis's CPU time so far, in seconds (zero for one not running here).
fn services_cpu_secs() -> (f64, f64) {
    (processes_cpu_secs("postgres"), processes_cpu_secs("redis-server"))
}

/// Seconds all cores together have spent so far idle (`/proc/stat`'s idle and iowait) and
/// stolen (the time a hypervisor ran something else while this machine's cores were ready to
/// run), in the kernel's 100 ticks a second.
fn machine_idle_and_stolen_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<f64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|t| t.parse().unwrap()).collect();
    ((ticks[3] + ticks[4]) / 100.0, ticks[7] / 100.0)
}

/// Where the servers write their mail: `IDGATE_BENCH_OUTBOX_DIR` if set, else tmpfs
/// (`/dev/shm`) where the machine has it, else the temporary directory. The outbox stands in for
/// production's hand-off to an SMTP relay; on a disk, a file created per login measures the file
/// system as much as idgate (on ext4 without a journal, creating files in the minutes after many
/// were deleted cost up to 1.2 ms of kernel time a login, more than the rest of the server's
/// work). The databases stay on the disk.
fn mail_scratch() -> tempfile::TempDir {
    let parent = std::env::var_os("IDGATE_BENCH_OUTBOX_DIR").map(std::path::PathBuf::from);
    let parent = parent.or_else(|| Some(std::path::PathBuf::from("/dev/shm")).filter(|shm| shm.is_dir()));
    match parent {
        Some(parent) => tempfile::TempDir::new_in(parent).unwrap(),
        None => tempfile::TempDir::new().unwrap(),
    }
}

/// Everything measured through a running server.
async fn server_figures(
    label: &str,
    dir: std::path::PathBuf,
    outbox: std::path::PathBuf,
    database: Option<&str>,
    redis: Option<&str>,
) {
    println!("\n{label}:");
    let server = Arc::new(Server::start(dir, outbox, database, redis).await);
    let idle_rss = server.rss_kib();
    println!("server RSS, idle:                       {:>13}", mib(idle_rss));
    for i in 0..4 {
        let input = json!({ "input": { "email": format!("bench{i}@example.com"), "password": PASSWORD } });
        server.gql(None, "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }", input).await;
    }
    let token = server.access_token("bench0@example.com").await;

    // This machine's speed drifts by a tenth within minutes, more than the figure's margin, so
    // logins and the hash rate are measured in alternating phases and compared in sum.
    let (mut total, mut login_secs, mut hashed, mut hashing_share) = (0, 0.0, 0.0, 0.0);
    let (mut hashing_cpu, mut other_cpu, mut load_cpu, mut idle, mut stolen) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut postgres_cpu, mut redis_cpu) = (0.0, 0.0);
    for _ in 0..LOGIN_ROUNDS {
        let phase = hash_rate().await;
        (hashed, hashing_share) = (hashed + phase.rate, hashing_share + phase.share);
        let stop = Arc::new(AtomicBool::new(false));
        let (hashing_before, other_before) = server.cpu_secs();
        let (load_before, (idle_before, stolen_before)) = (process_cpu_secs("self"), machine_idle_and_stolen_secs());
        let (postgres_before, redis_before) = services_cpu_secs();
        let start = Instant::now();
        let logins = login_load(&server, cores() * 4, &stop);
        tokio::time::sleep(PHASE).await;
        total += stop_logins(logins, &stop).await;
        login_secs += start.elapsed().as_secs_f64();
        let (hashing_after, other_after) = server.cpu_secs();
        hashing_cpu += hashing_after - hashing_before;
        other_cpu += other_after - other_before;
        load_cpu += process_cpu_secs("self") - load_before;
        let (idle_after, stolen_after) = machine_idle_and_stolen_secs();
        (idle, stolen) = (idle + idle_after - idle_before, stolen + stolen_after - stolen_before);
        let (postgres_after, redis_after) = services_cpu_secs();
        (postgres_cpu, redis_cpu) =
            (postgres_cpu + postgres_after - postgres_before, redis_cpu + redis_after - redis_before);
    }
    let hashes = hashed / f64::from(LOGIN_ROUNDS);
    let hashing_share = hashing_share / f64::from(LOGIN_ROUNDS);
    let login_rate = total as f64 / login_secs;
    println!(
        "logins/s through the API:               {login_rate:>10.1}  ({:.0} % of the hash rate between them, {hashes:.1}/s)",
        login_rate / hashes * 100.0
    );
    // CPU time, unlike the rates, does not drift with the machine's speed: what a login costs
    // the server besides its hash is what keeps logins below the hash rate (with the load
    // generator's share, and PostgreSQL's and Redis's when they run here).
    let per_login = |secs: f64| ms(Duration::from_secs_f64(secs / total.max(1) as f64));
    println!(
        "server CPU per login:                   {:>13} hashing, {} besides",
        per_login(hashing_cpu),
        per_login(other_cpu)
    );
    // Where all the cores' time went, per login: a hash alone takes `cores / hash rate` of it,
    // so whatever else a login costs anyone on this machine is the gap to the hash rate. The rest
    // is other processes, the kernel's own threads and, in a virtual machine, time the
    // hypervisor gave to others while a core here had work (no thread is charged for it).
    let all = login_secs * cores() as f64;
    println!(
        "all cores' time per login:              {:>13}  (a hash alone {}; in the server's hashing {}, the server besides {}, \
         this load generator {}, the rest {} of which PostgreSQL {}, Redis {}, the hypervisor stole {}, idle {})",
        per_login(all),
        ms(Duration::from_secs_f64(cores() as f64 / hashes)),
        per_login(hashing_cpu),
        per_login(other_cpu),
        per_login(load_cpu),
        per_login((all - hashing_cpu - other_cpu - load_cpu - idle).max(0.0)),
        per_login(postgres_cpu),
        per_login(redis_cpu),
        per_login(stolen),
        per_login(idle)
    );
    // The rates' ratio above moves with the machine's speed between phases (by a tenth or more
    // here, run to run). The share of the cores spent hashing does not: at an even speed logins
    // reach the hash rate exactly when they leave the cores to hashing as much as hashing alone
    // does. That holds while a hash costs the same CPU in both phases, so both costs are shown.
    let login_share = hashing_cpu / all;
    println!(
        "logins / hash rate at an even speed:    {:>10.3}  (hashing took {:.1} % of all cores with logins, {:.1} % alone; \
         a hash's CPU {} with logins, {} alone)",
        login_share / hashing_share,
        login_share * 100.0,
        hashing_share * 100.0,
        per_login(hashing_cpu),
        ms(Duration::from_secs_f64(hashing_share * cores() as f64 / hashes))
    );
    // How much of all cores' time a login may take besides its hash and still reach the goal at
    // an even speed: the hash's CPU over the share hashing must keep, less the hash. Part of it
    // goes to whatever takes cores from hashing alone too (the kernel, other processes), and
    // PostgreSQL's and Redis's part of a login (above) is in it whatever the server does.
    let budget = hashing_cpu * (1.0 / (LOGIN_GOAL * hashing_share) - 1.0);
    println!(
        "what {LOGIN_GOAL} of the hash rate leaves:      {:>13} a login besides its hash  (a login took {})",
        per_login(budget),
        per_login(all - hashing_cpu)
    );
    println!("server RSS after {:>5} logins:          {:>13}", total + 5, mib(server.rss_kib()));

    let before = server.rss_kib();
    let connections = idle_connections(&server, 1000).await;
    let per_connection = server.rss_kib().saturating_sub(before) as f64 / connections.len() as f64;
    println!("RSS per idle keep-alive connection:     {per_connection:>10.1} KiB  (1,000 open)");
    drop(connections);

    let busy = query_load(&server, Some(&token), ME, 32).await;
    println!(
        "me, 32 concurrent clients:              {:>10.0} req/s  p50 {}  p99 {}",
        busy.len() as f64 / PHASE.as_secs_f64(),
        ms(percentile(&busy, 0.50)),
        ms(percentile(&busy, 0.99))
    );
    let typename = query_load(&server, None, "{ __typename }", 32).await;
    println!(
        "__typename, 32 concurrent clients:      {:>10.0} req/s  p50 {}  p99 {}",
        typename.len() as f64 / PHASE.as_secs_f64(),
        ms(percentile(&typename, 0.50)),
        ms(percentile(&typename, 0.99))
    );

    // A p99 is a run's slowest 1 %: 24 samples in 12 s at 200/s. Anything else on the machine
    // that takes both cores for a tenth of a second (seen here: another service's tooling
    // starting up) holds 20 of them. So idle and flood phases alternate, and the round with the
    // median ratio is the one shown, beside every round's ratio.
    let mut rounds = Vec::new();
    for _ in 0..LATENCY_ROUNDS {
        let idle = steady_me_latencies(&server, &token, 200).await;
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let logins = login_load(&server, cores() * 4, &stop);
        let loaded = steady_me_latencies(&server, &token, 200).await;
        let during = stop_logins(logins, &stop).await as f64 / start.elapsed().as_secs_f64();
        let (idle_p99, loaded_p99) = (percentile(&idle, 0.99), percentile(&loaded, 0.99));
        let ratio = loaded_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9);
        rounds.push((ratio, percentile(&idle, 0.50), idle_p99, loaded_p99, during));
    }
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ratios: Vec<String> = rounds.iter().map(|round| format!("{:.1}x", round.0)).collect();
    let (ratio, idle_p50, idle_p99, loaded_p99, during) = rounds[rounds.len() / 2];
    println!("me at 200 req/s, idle server:           p50 {}  p99 {}", ms(idle_p50), ms(idle_p99));
    println!(
        "me p99 at 200 req/s, logins saturating: {:>13}  ({ratio:.1}x idle, the median of {}; logins meanwhile {during:.1}/s = {:.0} % of the hash rate)",
        ms(loaded_p99),
        ratios.join(", "),
        during / hashes * 100.0
    );
    println!("server RSS at the end:                  {:>13}", mib(server.rss_kib()));
}
