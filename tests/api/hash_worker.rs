//! Password hashing in `idgate hash-worker`, the child process the idgate binary starts by
//! default (IDGATE_HASH_WORKER=process), seen as an operator would: with `ps` and `kill`.

use std::{
    process::{Child, Command},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{PASSWORD, fresh_database};

/// The idgate binary serving on a free port, killed when dropped.
struct Server {
    process: Child,
    url: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Server {
    async fn start(dir: &TempDir, database_url: &str) -> Self {
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let process = Command::new(env!("CARGO_BIN_EXE_idgate"))
            .env("RUST_LOG", "warn")
            .env("IDGATE_DATABASE_URL", database_url)
            .env("IDGATE_OUTBOX_DIR", dir.path().join("outbox"))
            .env("IDGATE_LISTEN", &listen)
            .env("IDGATE_REQUIRE_EMAIL_VERIFICATION", "false")
            .env("IDGATE_METRICS_TOKEN", "scrape-me")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
        let server = Self { process, url: format!("http://{listen}"), client: reqwest::Client::new() };
        for _ in 0..200 {
            if server.client.get(format!("{}/healthz", server.url)).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("idgate did not start");
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let answer =
            self.client.post(format!("{}/graphql", self.url)).json(&json!({ "query": query, "variables": variables }));
        let answer = answer.send().await.unwrap_or_else(|e| panic!("{e}"));
        answer.json().await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn login(&self, password: &str) -> Value {
        self.gql(
            "mutation($i: LoginInput!) { login(input: $i) { ... on OtpChallenge { destination } } }",
            json!({ "i": { "email": "hashed@example.com", "password": password } }),
        )
        .await
    }

    async fn metrics(&self) -> String {
        let scraped = self.client.get(format!("{}/metrics", self.url)).bearer_auth("scrape-me").send().await;
        scraped.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The pids of the server's child processes.
    fn children(&self) -> Vec<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.process.id())).unwrap_or_else(|e| panic!("{e}"));
        let mut children = Vec::new();
        for task in tasks.flatten() {
            let listed = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            children.extend(listed.split_whitespace().filter_map(|pid| pid.parse::<u32>().ok()));
        }
        children
    }
}

/// The command line of process `pid`, its arguments joined by spaces.
fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The session process `pid` belongs to (`/proc/<pid>/stat`'s sixth field).
fn session(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().nth(3).unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

async fn wait_until_gone(pid: u32) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} is still running");
}

/// The one hashing process: `idgate hash-worker`, in a session of its own.
fn hash_worker(server: &Server) -> u32 {
    let workers: Vec<u32> =
        server.children().into_iter().filter(|pid| command_line(*pid).contains("hash-worker")).collect();
    assert_eq!(workers.len(), 1, "children: {:?}", server.children());
    workers[0]
}

#[tokio::test]
async fn passwords_hash_in_a_child_process_of_its_own_session_that_a_crash_does_not_take_down() {
    let dir = Arc::new(TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    let server = Server::start(&dir, &url).await;

    let worker = hash_worker(&server);
    assert_eq!(session(worker), worker.to_string(), "the worker leads a session of its own");
    assert_ne!(session(worker), session(server.process.id()));

    let registered = server
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { user { email } } }",
            json!({ "i": { "email": "hashed@example.com", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(registered["data"]["register"]["user"]["email"], "hashed@example.com", "{registered}");
    let wrong = server.login("not the password at all").await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "INVALID_CREDENTIALS", "{wrong}");
    let right = server.login(PASSWORD).await;
    assert_eq!(right["data"]["login"]["destination"], "h•••d@example.com", "{right}");
    // Hashes are counted in idgate's own metrics, wherever they ran.
    let metrics = server.metrics().await;
    assert!(metrics.contains("idgate_hash_pool_wait_seconds_count 3\n"), "{metrics}");
    assert!(metrics.contains("idgate_hash_pool_queue_depth 0\n"), "{metrics}");

    // A worker that crashes mid-hash costs no one a login: the hashes it held go to another.
    let server = Arc::new(server);
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { server.login(PASSWORD).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let killed = Command::new("kill").args(["-KILL", &worker.to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    for login in logins {
        let answer = login.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer["data"]["login"]["destination"], "h•••d@example.com", "{answer}");
    }
    wait_until_gone(worker).await;
    let second = hash_worker(&server);
    assert_ne!(second, worker);
    let after_crash = server.login(PASSWORD).await;
    assert_eq!(after_crash["data"]["login"]["destination"], "h•••d@example.com", "{after_crash}");
    assert_eq!(hash_worker(&server), second, "one worker at a time");

    // The worker never outlives idgate, even one killed without a chance to clean up.
    let server_pid = server.process.id();
    drop(Arc::try_unwrap(server).unwrap_or_else(|_| panic!("the server is still shared")));
    wait_until_gone(server_pid).await;
    wait_until_gone(second).await;
}
