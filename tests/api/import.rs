//! `idgate import-users`: the users of a Django project, hashed by Django's own hashers
//! (fixtures/make_django_users.py wrote the fixtures; its PASSWORDS are the passwords below),
//! imported with the CLI into a running app's database, then signed in over GraphQL.

use std::process::{Command, Output};

use idgate::entity::{audit_events, users};
use sea_orm::{ColumnTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code};

const JSON_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/fixtures/django_users.json");
const CSV_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/fixtures/django_users.csv");

/// Every fixture user whose hash idgate verifies: (email, password, Django's hasher).
const VERIFIABLE: [(&str, &str, &str); 10] = [
    ("pbkdf2@example.com", "pbkdf2 sha256 passphrase one", "pbkdf2_sha256"),
    ("sha1@example.com", "pbkdf2 sha1 passphrase two", "pbkdf2_sha1"),
    ("argon2id@example.com", "argon2id passphrase three", "argon2"),
    ("argon2i@example.com", "argon2i passphrase four", "argon2"),
    // Stored as "BCrypt.SHA@Example.com" by Django: idgate's addresses are lowercase.
    ("bcrypt.sha@example.com", "bcrypt sha256 passphrase five", "bcrypt_sha256"),
    ("bcrypt@example.com", "bcrypt passphrase six", "bcrypt"),
    ("scrypt@example.com", "scrypt pässwörd sieben 🦀", "scrypt"),
    ("staff@example.com", "staff passphrase eight", "pbkdf2_sha256"),
    ("root@example.com", "root passphrase nine", "pbkdf2_sha256"),
    ("inactive@example.com", "inactive passphrase twelve", "pbkdf2_sha256"),
];

/// An app whose logins return tokens at once.
async fn app() -> TestApp {
    TestApp::spawn_with(&[("login_otp", json!("off"))]).await
}

/// Runs `idgate import-users ARGS` against the app's database.
fn import(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idgate"))
        .arg("import-users")
        .args(args)
        .env("IDGATE_DATABASE_URL", &app.database_url)
        .env("IDGATE_OUTBOX_DIR", app.outbox.display().to_string())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run idgate: {e}"))
}

/// The report of a successful import.
fn imported(app: &TestApp, args: &[&str]) -> String {
    let output = import(app, args);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    report
}

/// The number after `label: ` on its own line of the report.
fn count(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
}

async fn database(app: &TestApp) -> DatabaseConnection {
    Database::connect(&app.database_url).await.unwrap_or_else(|e| panic!("connect: {e}"))
}

/// The stored row of `email`.
async fn row(app: &TestApp, email: &str) -> users::Model {
    users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(&database(app).await)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no account for {email}"))
}

async fn stored_hash(app: &TestApp, email: &str) -> Option<String> {
    row(app, email).await.password_hash
}

async fn account_count(app: &TestApp) -> u64 {
    users::Entity::find().count(&database(app).await).await.unwrap_or_else(|e| panic!("{e}"))
}

/// A successful login's access token.
async fn access_token(app: &TestApp, email: &str, password: &str) -> String {
    let login = app.login(email, password).await;
    login["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{email}: {login}")).to_owned()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let me = app
        .gql_as(token, "{ me { email username firstName lastName role isActive emailVerified createdAt } }", json!({}))
        .await;
    me["data"]["me"].clone()
}

#[tokio::test]
async fn every_django_hash_format_signs_in_once_and_is_then_argon2id() {
    let app = app().await;
    imported(&app, &[JSON_FIXTURE]);
    for (email, password, hasher) in VERIFIABLE.into_iter().filter(|(email, ..)| *email != "inactive@example.com") {
        let before = stored_hash(&app, email).await.unwrap_or_else(|| panic!("{email} has no password"));
        assert!(before.starts_with(&format!("{hasher}$")), "{email} keeps Django's hash until it signs in: {before}");
        access_token(&app, email, password).await;
        let after = stored_hash(&app, email).await.unwrap_or_default();
        assert!(after.starts_with("$argon2id$"), "{email}: the first login replaces Django's hash: {after}");
        access_token(&app, email, password).await;
        assert_eq!(stored_hash(&app, email).await, Some(after), "{email}: an argon2id hash stays");
    }
}

#[tokio::test]
async fn a_wrong_password_against_a_django_hash_is_invalid_credentials_and_keeps_the_hash() {
    let app = app().await;
    imported(&app, &[JSON_FIXTURE]);
    for (email, _, hasher) in [VERIFIABLE[0], VERIFIABLE[4], VERIFIABLE[6]] {
        let refused = app.login(email, "not the django password").await;
        assert_eq!(error_code(&refused), "INVALID_CREDENTIALS", "{email}: {refused}");
        let kept = stored_hash(&app, email).await.unwrap_or_default();
        assert!(kept.starts_with(&format!("{hasher}$")), "{email}: {kept}");
    }
}

#[tokio::test]
async fn unusable_and_unsupported_hashes_import_the_account_without_a_password() {
    let app = app().await;
    let report = imported(&app, &[JSON_FIXTURE]);
    assert_eq!(count(&report, "without usable password"), 2, "{report}");
    for email in ["unusable@example.com", "md5@example.com"] {
        assert_eq!(stored_hash(&app, email).await, None, "{email}");
    }
    let md5 = app.login("md5@example.com", "md5 passphrase eleven").await;
    assert_eq!(error_code(&md5), "INVALID_CREDENTIALS", "an MD5 hash signs nobody in: {md5}");
}

#[tokio::test]
async fn the_report_counts_the_file_and_names_bad_rows_by_entry() {
    let app = app().await;
    let report = imported(&app, &[JSON_FIXTURE]);
    assert_eq!(count(&report, "read"), 16, "{report}");
    assert_eq!(count(&report, "imported"), 12, "{report}");
    assert_eq!(count(&report, "already present"), 0, "{report}");
    assert_eq!(count(&report, "bad rows"), 4, "{report}");
    for bad in [
        "entry 12: email is not a valid email address",
        "entry 13: has no email",
        "entry 14: has the same email as entry 0",
        "entry 15: username may contain only",
    ] {
        assert!(report.lines().any(|line| line.starts_with(bad)), "{bad:?} in:\n{report}");
    }
    assert_eq!(account_count(&app).await, 12);
    assert!(app.login("space@example.com", "x").await["errors"].is_array(), "bad rows are skipped");
}

#[tokio::test]
async fn django_fields_become_the_account_roles_names_and_dates() {
    let app = app().await;
    imported(&app, &[JSON_FIXTURE]);
    let pat = me(&app, &access_token(&app, VERIFIABLE[0].0, VERIFIABLE[0].1).await).await;
    assert_eq!(pat["username"], "pat", "{pat}");
    assert_eq!(pat["lastName"], "O'Brien, Jr.", "{pat}");
    assert_eq!(pat["role"], "USER", "{pat}");
    assert_eq!(pat["emailVerified"], true, "imported addresses count as verified: {pat}");
    assert!(pat["createdAt"].as_str().is_some_and(|t| t.starts_with("2021-03-01T09:30:15")), "date_joined: {pat}");
    let staff = me(&app, &access_token(&app, VERIFIABLE[7].0, VERIFIABLE[7].1).await).await;
    assert_eq!(staff["role"], "ADMIN", "is_staff: {staff}");
    let root = me(&app, &access_token(&app, VERIFIABLE[8].0, VERIFIABLE[8].1).await).await;
    assert_eq!(root["role"], "SUPERUSER", "is_superuser: {root}");
    let inactive = app.login(VERIFIABLE[9].0, VERIFIABLE[9].1).await;
    assert_eq!(error_code(&inactive), "ACCOUNT_INACTIVE", "{inactive}");
    let last_login = row(&app, "sha1@example.com").await.last_login_at;
    assert_eq!(last_login, None, "sha1 never logged in to Django");
    let last_login = row(&app, "md5@example.com").await.last_login_at.map(|t| t.to_rfc3339());
    assert!(last_login.is_some_and(|t| t.starts_with("2021-03-11T18:30:15")), "last_login is kept");
}

#[tokio::test]
async fn csv_exports_import_with_bad_rows_named_by_line_and_staff_as_chosen() {
    let app = app().await;
    let report = imported(&app, &[CSV_FIXTURE, "--staff-role", "user"]);
    assert_eq!(count(&report, "read"), 18, "{report}");
    assert_eq!(count(&report, "imported"), 12, "{report}");
    assert_eq!(count(&report, "without usable password"), 2, "{report}");
    assert_eq!(count(&report, "bad rows"), 6, "{report}");
    for bad in [
        "line 14: email is not a valid email address",
        "line 15: has no email",
        "line 16: has the same email as line 2",
        "line 17: username may contain only",
        "line 18: date_joined is not a date and time",
        "line 19: is_active is not true or false",
    ] {
        assert!(report.lines().any(|line| line.starts_with(bad)), "{bad:?} in:\n{report}");
    }
    let (email, password, _) = VERIFIABLE[6];
    access_token(&app, email, password).await;
    assert!(stored_hash(&app, email).await.is_some_and(|h| h.starts_with("$argon2id$")));
    let pat = me(&app, &access_token(&app, VERIFIABLE[0].0, VERIFIABLE[0].1).await).await;
    assert_eq!(pat["lastName"], "O'Brien, Jr.", "a quoted field keeps its comma: {pat}");
    let staff = me(&app, &access_token(&app, VERIFIABLE[7].0, VERIFIABLE[7].1).await).await;
    assert_eq!(staff["role"], "USER", "--staff-role user: {staff}");
    let root = me(&app, &access_token(&app, VERIFIABLE[8].0, VERIFIABLE[8].1).await).await;
    assert_eq!(root["role"], "SUPERUSER", "{root}");
}

#[tokio::test]
async fn a_dry_run_reports_the_import_and_writes_nothing() {
    let app = app().await;
    let report = imported(&app, &[JSON_FIXTURE, "--dry-run"]);
    assert_eq!(count(&report, "would be imported"), 12, "{report}");
    assert_eq!(count(&report, "bad rows"), 4, "{report}");
    assert!(report.contains("dry run: nothing was written"), "{report}");
    assert_eq!(account_count(&app).await, 0);
    let audited = audit_events::Entity::find().count(&database(&app).await).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(audited, 0);
}

#[tokio::test]
async fn importing_the_same_file_again_creates_and_changes_nothing() {
    let app = app().await;
    imported(&app, &[JSON_FIXTURE]);
    let (email, password, _) = VERIFIABLE[0];
    access_token(&app, email, password).await;
    let upgraded = stored_hash(&app, email).await;
    let again = imported(&app, &[JSON_FIXTURE]);
    assert_eq!(count(&again, "imported"), 0, "{again}");
    assert_eq!(count(&again, "already present"), 12, "{again}");
    assert_eq!(count(&again, "without usable password"), 0, "{again}");
    assert_eq!(count(&again, "bad rows"), 4, "the same bad rows: {again}");
    assert_eq!(account_count(&app).await, 12);
    assert_eq!(stored_hash(&app, email).await, upgraded, "an account that exists is left as it is");
    let created = audit_events::Entity::find()
        .filter(audit_events::Column::Kind.eq("USER_CREATED"))
        .all(&database(&app).await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.len(), 12, "one event per imported user");
    assert!(created.iter().all(|event| event.detail.to_string().contains("django_import")), "{created:?}");
}

#[tokio::test]
async fn an_account_that_exists_keeps_its_password_and_a_taken_username_is_a_bad_row() {
    let app = TestApp::spawn().await;
    app.register_verified("pbkdf2@example.com", PASSWORD).await;
    let registered = app
        .gql(
            "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }",
            json!({ "input": { "email": "someone@example.com", "password": PASSWORD, "username": "sha" } }),
        )
        .await;
    assert!(registered["errors"].is_null(), "{registered}");
    let report = imported(&app, &[JSON_FIXTURE]);
    assert_eq!(count(&report, "already present"), 1, "{report}");
    assert_eq!(count(&report, "imported"), 10, "{report}");
    assert!(report.contains("entry 1: username is taken by another account"), "{report}");
    assert!(stored_hash(&app, "pbkdf2@example.com").await.is_some_and(|h| h.starts_with("$argon2id$")));
    assert!(
        users::Entity::find()
            .filter(users::Column::Email.eq("sha1@example.com"))
            .one(&database(&app).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
}

#[tokio::test]
async fn a_file_that_is_not_an_export_is_refused_and_writes_nothing() {
    let app = app().await;
    let unknown = import(&app, &["users.txt"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--format"), "{unknown:?}");
    let as_csv = import(&app, &[JSON_FIXTURE, "--format", "csv"]);
    assert!(!as_csv.status.success());
    assert!(String::from_utf8_lossy(&as_csv.stderr).contains("column"), "{as_csv:?}");
    assert_eq!(account_count(&app).await, 0);
}
