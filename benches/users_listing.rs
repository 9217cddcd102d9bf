//! Latency of the admin user directory on a 100,000-user table, printed (never asserted):
//! `cargo bench --bench users_listing`, and on PostgreSQL as well with
//! `IDGATE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres` (a base URL: a fresh
//! database is created beside it and dropped afterwards).
//!
//! For each database: bulk-inserts the users (multi-row INSERTs in transactions, one dummy
//! password hash), then times p50/p99 over 50 runs of `AdminService::list_users` for the first
//! page, a page 90,000 rows deep (by cursor), search and role filters, ordering by last login,
//! `count_users`, and one whole GraphQL `users` request over HTTP. After the bulk load,
//! PostgreSQL gets the `VACUUM ANALYZE` autovacuum would soon run, SQLite a WAL checkpoint; no
//! `ANALYZE` on SQLite, which idgate does not run either.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use figment::{Figment, providers::Serialized};
use idgate::{
    admin::model::{
        Cursor, OrderDirection, PageRequest, SearchText, SortKey, Take, UserFilter, UserOrder, UserOrderField,
    },
    app::App,
    clock::SystemClock,
    config::Settings,
    domain::Principal,
    domain::{Email, Password, Role, UserId},
    entity::users,
    services::Services,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, Database, EntityTrait, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

const USERS: usize = 100_000;
const BATCH: usize = 1_000;
const RUNS: usize = 50;
const WARMUP: usize = 3;
const PASSWORD: &str = "correct horse battery staple 93";
/// Stands in for an argon2id hash: the directory never reads it, and hashing 100,000
/// passwords would take minutes.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$0000000000000000000000000000000000000000000";

const FIRST: [&str; 12] =
    ["Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia", "Tim", "Hedy"];
const LAST: [&str; 12] = [
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen", "Thompson", "Smith", "Lee",
    "Lamarr",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `f` WARMUP + RUNS times; prints p50 and p99 of the timed runs and what one run found.
async fn time<F, Fut>(label: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = String>,
{
    let mut found = String::new();
    for _ in 0..WARMUP {
        found = f().await;
    }
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    println!(
        "  {label:<44} p50 {:>10}  p99 {:>10}  ({found})",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99))
    );
}

/// The start of the generated history: users join over about three years before now.
fn epoch() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(3 * 365)
}

/// One generated user; `i` orders them by creation.
fn user_row(i: usize, start: DateTime<Utc>, rng: &mut StdRng) -> users::Model {
    let created_at = start + chrono::Duration::seconds((i as i64) * 900 + rng.gen_range(0..900));
    let created_at = Utc.timestamp_opt(created_at.timestamp(), rng.gen_range(0..1_000_000) * 1000).unwrap();
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, created_at.timestamp() as u64, created_at.timestamp_subsec_nanos());
    let (first, last) = (FIRST[rng.gen_range(0..FIRST.len())], LAST[rng.gen_range(0..LAST.len())]);
    let phone_only = i % 100 == 7;
    let role = if i.is_multiple_of(10_000) {
        "SUPERUSER"
    } else if i.is_multiple_of(1_000) {
        "ADMIN"
    } else {
        "USER"
    };
    let logged_in = rng.gen_bool(0.7);
    let last_login_at = logged_in.then(|| created_at + chrono::Duration::seconds(rng.gen_range(0..86_400 * 30)));
    users::Model {
        id: Uuid::new_v7(ts),
        email: (!phone_only)
            .then(|| format!("{}.{}{i}@example{}.com", first.to_lowercase(), last.to_lowercase(), i % 7)),
        username: rng.gen_bool(0.6).then(|| format!("{}{i}", first.to_lowercase())),
        password_hash: (!phone_only).then(|| DUMMY_HASH.to_owned()),
        first_name: Some(first.to_owned()),
        last_name: Some(last.to_owned()),
        phone: phone_only.then(|| format!("+1415555{:04}", i % 10_000)),
        date_of_birth: None,
        gender: None,
        avatar: None,
        locale: None,
        role: role.to_owned(),
        is_active: rng.gen_bool(0.95),
        email_verified_at: (!phone_only && rng.gen_bool(0.85)).then_some(created_at),
        phone_verified_at: None,
        failed_login_count: 0,
        locked_until: None,
        last_login_at,
        created_at,
        updated_at: created_at,
    }
}

/// Inserts the users; returns the generated rows' (created_at, id) in creation order.
async fn seed(db: &sea_orm::DatabaseConnection) -> Vec<(DateTime<Utc>, Uuid)> {
    let mut rng = StdRng::seed_from_u64(7);
    let start = epoch();
    let mut keys = Vec::with_capacity(USERS);
    let began = Instant::now();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(BATCH * 10) {
        let txn = db.begin().await.unwrap();
        for batch in chunk.chunks(BATCH) {
            let rows: Vec<users::Model> = batch.iter().map(|&i| user_row(i, start, &mut rng)).collect();
            keys.extend(rows.iter().map(|r| (r.created_at, r.id)));
            let active: Vec<users::ActiveModel> = rows.into_iter().map(Into::into).collect();
            users::Entity::insert_many(active).exec(&txn).await.unwrap();
        }
        txn.commit().await.unwrap();
    }
    println!("  inserted {USERS} users in {:.1} s", began.elapsed().as_secs_f64());
    keys
}

fn settings(database_url: &str, dir: &std::path::Path) -> Settings {
    let figment = Figment::new()
        .merge(Serialized::default("listen", "127.0.0.1:0"))
        .merge(Serialized::default("database_url", database_url))
        .merge(Serialized::default("outbox_dir", dir.join("outbox").display().to_string()))
        .merge(Serialized::default("login_otp", "off"))
        .merge(Serialized::default("login_rate_per_ip", 1_000_000));
    Settings::from_figment(figment).unwrap()
}

async fn bench(label: &str, database_url: &str, dir: &std::path::Path) {
    println!("{label}: {USERS} users, p50/p99 over {RUNS} runs");
    let settings = settings(database_url, dir);
    let services = Services::build(&settings, Arc::new(SystemClock)).await.unwrap();
    let keys = seed(&services.db).await;
    // Settle the table as a running server would find it: PostgreSQL's autovacuum would have
    // vacuumed and analyzed it, SQLite's WAL would have been checkpointed.
    let settle = match services.db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "VACUUM ANALYZE users",
        _ => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    services.db.execute_unprepared(settle).await.unwrap();

    let admin = &services.admin;
    let caller = Principal { user_id: UserId(Uuid::nil()), session_id: Uuid::nil(), role: Role::Superuser };
    let caller = &caller;
    let newest_first = UserOrder::default();
    let first_page = PageRequest { after: None, before: None, take: Take::First(20) };
    let everyone = UserFilter::default();
    // The 10,000th oldest user: 90,000 rows deep, newest first.
    let (at, id) = keys[10_000];
    let deep = PageRequest {
        after: Some(Cursor { key: SortKey::CreatedAt(at), id: UserId(id) }),
        before: None,
        take: Take::First(20),
    };
    let search = |text: &str| UserFilter { search: SearchText::parse(text).unwrap(), ..UserFilter::default() };
    let role = |role| UserFilter { role: Some(role), ..UserFilter::default() };
    let page_of = |filter: UserFilter, order: UserOrder, request: PageRequest| async move {
        let page = admin.list_users(caller, &filter, order, &request).await.unwrap();
        format!("{} users, next page: {}", page.edges.len(), page.has_next_page)
    };
    let count_of =
        |filter: UserFilter| async move { format!("{} users", admin.count_users(caller, &filter).await.unwrap()) };

    time("first page, newest first", || page_of(everyone.clone(), newest_first, first_page.clone())).await;
    time("page 90,000 rows deep (cursor)", || page_of(everyone.clone(), newest_first, deep.clone())).await;
    let oldest_first = UserOrder { field: UserOrderField::CreatedAt, direction: OrderDirection::Asc };
    time("last page (last: 20), newest first", || {
        page_of(everyone.clone(), newest_first, PageRequest { after: None, before: None, take: Take::Last(20) })
    })
    .await;
    time("first page, oldest first", || page_of(everyone.clone(), oldest_first, first_page.clone())).await;
    time("search \"hopper\" (1 in 12 match)", || page_of(search("hopper"), newest_first, first_page.clone())).await;
    time("search \"ada.lovelace12\" (a few match)", || {
        page_of(search("ada.lovelace12"), newest_first, first_page.clone())
    })
    .await;
    time("search \"nobody\" (none match)", || page_of(search("nobody"), newest_first, first_page.clone())).await;
    time("role ADMIN (90 match)", || page_of(role(Role::Admin), newest_first, first_page.clone())).await;
    time("role USER (99,900 match)", || page_of(role(Role::User), newest_first, first_page.clone())).await;
    let inactive = UserFilter { is_active: Some(false), ..UserFilter::default() };
    time("isActive false (about 5 %)", || page_of(inactive.clone(), newest_first, first_page.clone())).await;
    for direction in [OrderDirection::Desc, OrderDirection::Asc] {
        let order = UserOrder { field: UserOrderField::LastLoginAt, direction };
        time(&format!("lastLoginAt {direction:?}, first page"), || {
            page_of(everyone.clone(), order, first_page.clone())
        })
        .await;
    }
    let by_login = UserOrder { field: UserOrderField::LastLoginAt, direction: OrderDirection::Desc };
    let into_never = PageRequest { after: None, before: None, take: Take::Last(20) };
    time("lastLoginAt Desc, last page (never logged in)", || page_of(everyone.clone(), by_login, into_never.clone()))
        .await;
    let by_email = UserOrder { field: UserOrderField::Email, direction: OrderDirection::Asc };
    time("email Asc, first page", || page_of(everyone.clone(), by_email, first_page.clone())).await;
    time("totalCount, everyone", || count_of(everyone.clone())).await;
    time("totalCount, role ADMIN", || count_of(role(Role::Admin))).await;
    time("totalCount, isActive false", || count_of(inactive.clone())).await;
    time("totalCount, search \"hopper\"", || count_of(search("hopper"))).await;

    http_request(&settings, &services).await;
    services.db.close().await.unwrap();
}

/// One whole GraphQL `users(first: 20) { totalCount edges { cursor node {…} } pageInfo {…} }`
/// over HTTP, as an admin: token check, role lookup, page and count.
async fn http_request(settings: &Settings, services: &Services) {
    let email = Email::parse("bench-admin@example.com").unwrap();
    services
        .accounts
        .create_superuser(email, Password::parse(PASSWORD.into(), "password").unwrap(), false)
        .await
        .unwrap();
    let app = App::build(settings.clone()).await.unwrap();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let login = json!({
        "query": "mutation($i: LoginInput!) { login(input: $i) { ... on AuthPayload { accessToken } } }",
        "variables": { "i": { "email": "bench-admin@example.com", "password": PASSWORD } },
    });
    let answer: serde_json::Value = client.post(&url).json(&login).send().await.unwrap().json().await.unwrap();
    let token = answer["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    let query = json!({
        "query": "{ users(first: 20) { totalCount edges { cursor node { id email username firstName lastName \
                  role isActive emailVerified lastLoginAt createdAt } } \
                  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    });
    time("GraphQL users(first: 20) + totalCount, HTTP", || async {
        let answer: serde_json::Value =
            client.post(&url).bearer_auth(&token).json(&query).send().await.unwrap().json().await.unwrap();
        let edges = answer["data"]["users"]["edges"].as_array().map(Vec::len);
        format!("{} users of {}", edges.unwrap_or_else(|| panic!("{answer}")), answer["data"]["users"]["totalCount"])
    })
    .await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::main]
async fn main() {
    let dir = tempfile::TempDir::new().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("listing.db").display());
    bench("SQLite", &sqlite, dir.path()).await;

    if let Ok(base) = std::env::var("IDGATE_BENCH_DATABASE_URL") {
        let name = format!("idgate_bench_{}", Uuid::new_v4().simple());
        let server = Database::connect(&base).await.unwrap();
        server.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let (host, _) = base.rsplit_once('/').unwrap();
        println!();
        bench("PostgreSQL", &format!("{host}/{name}"), dir.path()).await;
        server.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
    }
}
