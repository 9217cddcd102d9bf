//! Throughput and latency figures for idgate, printed (never asserted): `cargo bench --bench throughput`.
//!
//! 1. argon2id hashes per second on all cores (the ceiling for logins);
//! 2. logins per second through the API (the default login: password, then a mailed code),
//!    and their ratio to that ceiling;
//! 3. access-token signatures and verifications per second, with and without the cache;
//! 4. requests per second and p50/p99 for a token-checked `me` query (32 clients, flat out);
//! 5. the `me` p99 at a steady 200 requests/s while logins saturate the hashing pool, next to
//!    its p99 at the same rate on an idle server, and the login rate meanwhile.
//!
//! The server runs in this process on 127.0.0.1 with the embedded defaults (SQLite file, memory
//! KV) and the default argon2 cost; load comes from the same machine, so absolute numbers
//! include the load generator's share of the CPU.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use figment::{Figment, providers::Serialized};
use idgate::{
    app::App,
    auth::{keys, tokens::TokenService},
    clock::SystemClock,
    config::{JwtAlgorithm, Settings},
    security::{
        hash_pool::HashPool,
        passwords::{HashCost, Passwords},
    },
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple 93";
const PHASE: Duration = Duration::from_secs(5);
/// Latency phases run longer: a p99 needs thousands of samples to be more than noise.
const LATENCY_PHASE: Duration = Duration::from_secs(12);

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

/// Hashes per second with jobs always in flight on the hashing pool.
async fn hash_rate() -> f64 {
    let defaults = Settings::default();
    let cost = HashCost {
        memory_kib: defaults.argon2_memory_kib,
        iterations: defaults.argon2_iterations,
        parallelism: defaults.argon2_parallelism,
    };
    let pool = Arc::new(HashPool::new(0, 256).unwrap());
    let passwords = Passwords::new(cost, pool).await.unwrap();
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
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
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
    url: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let figment = Figment::new()
            .merge(Serialized::default("listen", "127.0.0.1:0"))
            .merge(Serialized::default(
                "database_url",
                format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
            ))
            .merge(Serialized::default("outbox_dir", dir.path().join("outbox").display().to_string()))
            // Login throughput is measured here, not email verification.
            .merge(Serialized::default("require_email_verification", false))
            .merge(Serialized::default("login_rate_per_ip", 1_000_000))
            .merge(Serialized::default("login_rate_per_email", 1_000_000))
            .merge(Serialized::default("register_rate_per_ip", 1_000_000));
        let settings = Settings::from_figment(figment).unwrap();
        let app = App::build(settings).await.unwrap();
        let url = format!("http://127.0.0.1:{}/graphql", app.port());
        // The server gets its own runtime threads, as in production.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            runtime.block_on(app.run_until(std::future::pending())).unwrap();
        });
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
        Self { url, client, dir }
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(&self.url).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn login(&self, email: &str) -> Value {
        self.gql(
            None,
            "mutation($i: LoginInput!) { login(input: $i) { ... on OtpChallenge { challengeId } } }",
            json!({ "i": { "email": email, "password": PASSWORD } }),
        )
        .await
    }

    /// Logs in through the code step (reading the code from the outbox) and returns the token.
    async fn access_token(&self, email: &str) -> String {
        let challenge = self.login(email).await["data"]["login"]["challengeId"].as_str().unwrap().to_owned();
        let mut mails: Vec<_> =
            std::fs::read_dir(self.dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
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

/// Runs `clients` closed-loop login clients until `stop`; returns completed logins.
fn login_load(server: &Arc<Server>, clients: usize, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..clients)
        .map(|i| {
            let (server, stop) = (Arc::clone(server), Arc::clone(stop));
            tokio::spawn(async move {
                let email = format!("bench{}@example.com", i % 4);
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    let answer = server.login(&email).await;
                    assert!(answer["errors"].is_null(), "{answer}");
                    done += 1;
                }
                done
            })
        })
        .collect()
}

/// Runs `clients` `me` clients for the phase, each sending its next request as soon as the
/// previous answer arrives, or (with `per_second`) on a fixed schedule of that many requests
/// per second in all. Returns every latency, sorted.
async fn me_load(server: &Arc<Server>, token: &str, clients: usize, per_second: Option<u32>) -> Vec<Duration> {
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (server, token) = (Arc::clone(server), token.to_owned());
            let mut ticks = per_second.map(|rate| tokio::time::interval(Duration::from_secs(clients as u64) / rate));
            let phase = if per_second.is_some() { LATENCY_PHASE } else { PHASE };
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while start.elapsed() < phase {
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    let sent = Instant::now();
                    let answer = server.gql(Some(&token), "{ me { id email } }", json!({})).await;
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

#[tokio::main]
async fn main() {
    println!("idgate throughput on {} cores (argon2id m=19456 KiB, t=2, p=1; RS256)", cores());

    let raw = raw_hash_rate();
    println!("argon2id hashes/s, plain threads:       {raw:>10.1}  (also warms the allocator for what follows)");
    let hashes = hash_rate().await;
    println!("argon2id hashes/s, idgate's pool:       {hashes:>10.1}  (the ceiling for logins)");

    let (signed, uncached, cached) = jwt_rates();
    println!("JWT signatures/s (RS256):               {signed:>10.0}  (one core)");
    println!("JWT verifications/s, signature checked: {uncached:>10.0}  (one core)");
    println!("JWT verifications/s, cached token:      {cached:>10.0}  (one core)");

    let server = Arc::new(Server::start().await);
    for i in 0..4 {
        let input = json!({ "input": { "email": format!("bench{i}@example.com"), "password": PASSWORD } });
        server.gql(None, "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }", input).await;
    }
    let token = server.access_token("bench0@example.com").await;

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let logins = login_load(&server, cores() * 4, &stop);
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for handle in logins {
        total += handle.await.unwrap();
    }
    let login_rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "logins/s through the API:               {login_rate:>10.1}  ({:.0} % of the hash rate)",
        login_rate / hashes * 100.0
    );

    let busy = me_load(&server, &token, 32, None).await;
    let rps = busy.len() as f64 / PHASE.as_secs_f64();
    println!(
        "me, 32 concurrent clients:              {rps:>10.0} req/s  p50 {}  p99 {}",
        ms(percentile(&busy, 0.50)),
        ms(percentile(&busy, 0.99))
    );

    let idle = me_load(&server, &token, 2, Some(200)).await;
    let idle_p99 = percentile(&idle, 0.99);
    println!("me p99 at 200 req/s, idle server:       {:>13}", ms(idle_p99));

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let logins = login_load(&server, cores() * 4, &stop);
    let loaded = me_load(&server, &token, 2, Some(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for handle in logins {
        total += handle.await.unwrap();
    }
    let during = total as f64 / start.elapsed().as_secs_f64();
    let loaded_p99 = percentile(&loaded, 0.99);
    println!(
        "me p99 at 200 req/s, logins saturating: {:>13}  ({:.1}x idle; logins meanwhile {during:.1}/s = {:.0} % of the hash rate)",
        ms(loaded_p99),
        loaded_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9),
        during / hashes * 100.0
    );
}
