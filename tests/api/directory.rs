//! The admin user directory (`users`, a Relay connection) and `user(id)`.
//!
//! Rows are seeded straight into the database (no password hashing, chosen timestamps); the
//! expected order is computed here from the rows themselves, with the documented rules: the
//! ordered column, then the id, both in the asked direction; empty values last either way.

use std::{cmp::Ordering, process::Command};

use chrono::{DateTime, Duration, TimeZone, Utc};
use idgate::{clock::Clock, entity::users};
use sea_orm::{Database, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, error_code};

const ADMIN: &str = "root@example.com";

const USERS: &str = "query($first: Int, $after: String, $last: Int, $before: String, $filter: UserFilter, \
     $orderBy: UserOrder) { users(first: $first, after: $after, last: $last, before: $before, filter: $filter, \
     orderBy: $orderBy) { totalCount edges { cursor node { id email } } \
     pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

/// Creates the superuser `root@example.com` with the CLI, as an operator would, and logs in.
async fn admin_token(app: &TestApp) -> String {
    let outbox = app.outbox.display().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_idgate"))
        .args(["create-superuser", "--email", ADMIN])
        .env("RUST_LOG", "warn")
        .env("IDGATE_DATABASE_URL", &app.database_url)
        .env("IDGATE_OUTBOX_DIR", &outbox)
        .env("IDGATE_SUPERUSER_PASSWORD", PASSWORD)
        .output()
        .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    app.log_in(ADMIN).await.access
}

async fn database(app: &TestApp) -> DatabaseConnection {
    Database::connect(&app.database_url).await.unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Whole seconds: every database stores them exactly.
fn base_time(app: &TestApp) -> DateTime<Utc> {
    Utc.timestamp_opt(app.clock.now().timestamp() - 3600, 0).single().unwrap_or_else(|| panic!("time"))
}

/// A plain active, verified user that never logged in.
fn member(name: &str, created_at: DateTime<Utc>) -> users::Model {
    users::Model {
        id: Uuid::now_v7(),
        email: Some(format!("{name}@example.com")),
        username: None,
        password_hash: None,
        first_name: None,
        last_name: None,
        phone: None,
        date_of_birth: None,
        gender: None,
        avatar: None,
        locale: None,
        role: "USER".into(),
        is_active: true,
        email_verified_at: Some(created_at),
        phone_verified_at: None,
        failed_login_count: 0,
        locked_until: None,
        last_login_at: None,
        created_at,
        updated_at: created_at,
    }
}

async fn insert(db: &DatabaseConnection, rows: Vec<users::Model>) {
    let rows: Vec<users::ActiveModel> = rows.into_iter().map(Into::into).collect();
    users::Entity::insert_many(rows).exec(db).await.unwrap_or_else(|e| panic!("insert: {e}"));
}

async fn delete(db: &DatabaseConnection, id: &str) {
    let id = Uuid::parse_str(id).unwrap_or_else(|e| panic!("{e}"));
    users::Entity::delete_by_id(id).exec(db).await.unwrap_or_else(|e| panic!("delete: {e}"));
}

/// `count` members created a minute apart, three to a minute (ties broken by id), all before
/// the admin.
async fn seed_members(app: &TestApp, count: usize) {
    let base = base_time(app);
    let rows = (0..count).map(|i| member(&format!("member{i:02}"), base - Duration::minutes((i / 3) as i64))).collect();
    insert(&database(app).await, rows).await;
}

/// Every row's id in the documented order for `field` (`CREATED_AT`, `EMAIL`, `LAST_LOGIN_AT`).
async fn expected_order(app: &TestApp, field: &str, ascending: bool) -> Vec<String> {
    let mut rows = users::Entity::find().all(&database(app).await).await.unwrap_or_else(|e| panic!("{e}"));
    let directed = |o: Ordering| if ascending { o } else { o.reverse() };
    fn empty_last<T: Ord>(a: &Option<T>, b: &Option<T>, directed: impl Fn(Ordering) -> Ordering) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => directed(a.cmp(b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    rows.sort_by(|a, b| {
        let by_column = match field {
            "CREATED_AT" => directed(a.created_at.cmp(&b.created_at)),
            "EMAIL" => empty_last(&a.email, &b.email, directed),
            "LAST_LOGIN_AT" => empty_last(&a.last_login_at, &b.last_login_at, directed),
            other => panic!("unknown field {other}"),
        };
        by_column.then_with(|| directed(a.id.cmp(&b.id)))
    });
    rows.into_iter().map(|r| r.id.to_string()).collect()
}

async fn users(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql_as(token, USERS, variables).await
}

fn connection(answer: &Value) -> &Value {
    assert!(answer["errors"].is_null(), "{answer}");
    &answer["data"]["users"]
}

fn ids(connection: &Value) -> Vec<String> {
    let edges = connection["edges"].as_array().unwrap_or_else(|| panic!("no edges: {connection}"));
    edges.iter().map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned()).collect()
}

fn cursor_of(connection: &Value, index: usize) -> String {
    connection["edges"][index]["cursor"].as_str().unwrap_or_else(|| panic!("no cursor: {connection}")).to_owned()
}

fn flags(connection: &Value) -> (bool, bool) {
    let info = &connection["pageInfo"];
    (info["hasPreviousPage"].as_bool().unwrap_or_default(), info["hasNextPage"].as_bool().unwrap_or_default())
}

/// Start and end cursors must be those of the first and last edge.
fn assert_page_cursors(connection: &Value) {
    let edges = connection["edges"].as_array().map(Vec::len).unwrap_or_default();
    let info = &connection["pageInfo"];
    if edges == 0 {
        assert!(info["startCursor"].is_null() && info["endCursor"].is_null(), "{connection}");
    } else {
        assert_eq!(info["startCursor"], connection["edges"][0]["cursor"], "{connection}");
        assert_eq!(info["endCursor"], connection["edges"][edges - 1]["cursor"], "{connection}");
    }
}

/// Pages from the start with `first: size` / `after`, checking the flags of every page.
async fn walk_forward(app: &TestApp, token: &str, size: usize, extra: &Value) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for page in 0.. {
        assert!(page < 200, "paging does not end");
        let mut variables = json!({ "first": size, "after": after });
        merge(&mut variables, extra);
        let answer = users(app, token, variables).await;
        let connection = connection(&answer);
        assert_page_cursors(connection);
        let batch = ids(connection);
        let (previous, next) = flags(connection);
        assert_eq!(previous, page > 0, "hasPreviousPage on page {page}: {connection}");
        if next {
            assert_eq!(batch.len(), size, "a page with a next page is full: {connection}");
        }
        seen.extend(batch);
        if !next {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    seen
}

/// Pages from the end with `last: size` / `before`; returns the ids in list order.
async fn walk_backward(app: &TestApp, token: &str, size: usize, extra: &Value) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut before = Value::Null;
    for page in 0.. {
        assert!(page < 200, "paging does not end");
        let mut variables = json!({ "last": size, "before": before });
        merge(&mut variables, extra);
        let answer = users(app, token, variables).await;
        let connection = connection(&answer);
        assert_page_cursors(connection);
        let (previous, next) = flags(connection);
        assert_eq!(next, page > 0, "hasNextPage on page {page} from the end: {connection}");
        let mut batch = ids(connection);
        if previous {
            assert_eq!(batch.len(), size, "a page with a previous page is full: {connection}");
        }
        batch.extend(seen);
        seen = batch;
        if !previous {
            break;
        }
        before = connection["pageInfo"]["startCursor"].clone();
    }
    seen
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        target.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

fn bad_input_field(answer: &Value) -> String {
    assert_eq!(error_code(answer), "BAD_USER_INPUT", "{answer}");
    answer["errors"][0]["extensions"]["field"].as_str().unwrap_or("<none>").to_owned()
}

#[tokio::test]
async fn the_directory_refuses_anonymous_callers_and_plain_users() {
    let app = TestApp::spawn().await;
    let anonymous = app.gql(USERS, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    assert!(anonymous["data"].is_null(), "{anonymous}");

    let user = app.signed_in("plain@example.com").await;
    let refused = users(&app, &user.access, json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert!(refused["data"].is_null(), "{refused}");
}

#[tokio::test]
async fn paging_forward_and_backward_returns_every_user_once_in_order() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 25).await;
    let expected = expected_order(&app, "CREATED_AT", false).await;
    assert_eq!(expected.len(), 26);

    let first = connection(&users(&app, &token, json!({ "first": 10 })).await).clone();
    assert_eq!(first["totalCount"], 26);
    assert_eq!(ids(&first), expected[..10]);
    assert_eq!(flags(&first), (false, true));
    assert_eq!(first["edges"][0]["node"]["email"], ADMIN, "newest first by default");

    assert_eq!(walk_forward(&app, &token, 10, &json!({})).await, expected);
    assert_eq!(walk_backward(&app, &token, 10, &json!({})).await, expected);
    assert_eq!(walk_forward(&app, &token, 7, &json!({})).await, expected);
    assert_eq!(walk_backward(&app, &token, 4, &json!({})).await, expected);
}

#[tokio::test]
async fn the_default_page_is_20_and_both_cursors_bound_a_window() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 25).await;
    let expected = expected_order(&app, "CREATED_AT", false).await;

    let default = connection(&users(&app, &token, json!({})).await).clone();
    assert_eq!(ids(&default), expected[..20]);

    // The window strictly between the 3rd and the 9th user, from either end.
    let after = cursor_of(&default, 2);
    let before = cursor_of(&default, 8);
    let window = json!({ "after": after, "before": before });
    let mut head = json!({ "first": 3 });
    merge(&mut head, &window);
    let head = connection(&users(&app, &token, head).await).clone();
    assert_eq!(ids(&head), expected[3..6]);
    assert_eq!(flags(&head), (true, true));
    let mut tail = json!({ "last": 10 });
    merge(&mut tail, &window);
    let tail = connection(&users(&app, &token, tail).await).clone();
    assert_eq!(ids(&tail), expected[3..8]);
    assert_eq!(flags(&tail), (true, true), "rows lie beyond both cursors");
}

#[tokio::test]
async fn an_empty_result_has_no_edges_and_no_pages_either_side() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 5).await;
    for variables in
        [json!({ "filter": { "search": "no such person" } }), json!({ "last": 5, "filter": { "role": "ADMIN" } })]
    {
        let answer = users(&app, &token, variables).await;
        let empty = connection(&answer);
        assert_eq!(empty["edges"], json!([]), "{empty}");
        assert_eq!(empty["totalCount"], 0);
        assert_eq!(flags(empty), (false, false));
        assert!(empty["pageInfo"]["startCursor"].is_null() && empty["pageInfo"]["endCursor"].is_null());
    }
    let none = connection(&users(&app, &token, json!({ "first": 0 })).await).clone();
    assert_eq!(none["edges"], json!([]));
    assert_eq!(flags(&none), (false, true), "first: 0 still says that users exist");
}

#[tokio::test]
async fn the_last_page_has_a_previous_page_and_no_next_one() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 25).await;
    let expected = expected_order(&app, "CREATED_AT", false).await;

    let twenty = connection(&users(&app, &token, json!({ "first": 20 })).await).clone();
    let after = cursor_of(&twenty, 19);
    let last = connection(&users(&app, &token, json!({ "first": 10, "after": after })).await).clone();
    assert_eq!(ids(&last), expected[20..]);
    assert_eq!(flags(&last), (true, false));

    let exact = connection(&users(&app, &token, json!({ "first": 26 })).await).clone();
    assert_eq!(flags(&exact), (false, false), "a page holding everything has no next page");
    let short = connection(&users(&app, &token, json!({ "first": 25 })).await).clone();
    assert_eq!(flags(&short), (false, true));

    let from_end = connection(&users(&app, &token, json!({ "last": 4 })).await).clone();
    assert_eq!(ids(&from_end), expected[22..]);
    assert_eq!(flags(&from_end), (true, false));

    let end = cursor_of(&last, 5);
    let beyond = connection(&users(&app, &token, json!({ "first": 10, "after": end })).await).clone();
    assert_eq!(beyond["edges"], json!([]));
    assert_eq!(flags(&beyond), (true, false));
}

#[tokio::test]
async fn a_cursor_from_a_deleted_user_still_continues_after_it() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 25).await;
    let expected = expected_order(&app, "CREATED_AT", false).await;
    let db = database(&app).await;

    let page = connection(&users(&app, &token, json!({ "first": 10 })).await).clone();
    let end = cursor_of(&page, 9);
    // Forward from the 10th user after it is gone, and backward from the 11th after it is gone.
    delete(&db, &expected[9]).await;
    let next = connection(&users(&app, &token, json!({ "first": 5, "after": end })).await).clone();
    assert_eq!(ids(&next), expected[10..15]);
    assert_eq!(flags(&next), (true, true));

    let eleventh = cursor_of(&next, 0);
    delete(&db, &expected[10]).await;
    let back = connection(&users(&app, &token, json!({ "last": 3, "before": eleventh })).await).clone();
    assert_eq!(ids(&back), expected[6..9]);
    assert_eq!(flags(&back), (true, true), "users remain after the deleted cursor's position");

    // The very first user gone (oldest first): its cursor still works, and nothing lies before
    // it any more.
    let oldest_first = json!({ "field": "CREATED_AT", "direction": "ASC" });
    let ascending = expected_order(&app, "CREATED_AT", true).await;
    let first = connection(&users(&app, &token, json!({ "first": 1, "orderBy": oldest_first })).await).clone();
    let start = cursor_of(&first, 0);
    delete(&db, &ascending[0]).await;
    let variables = json!({ "first": 2, "after": start, "orderBy": oldest_first });
    let after_first = connection(&users(&app, &token, variables).await).clone();
    assert_eq!(ids(&after_first), ascending[1..3]);
    assert_eq!(flags(&after_first), (false, true));
}

#[tokio::test]
async fn users_added_before_the_cursor_do_not_shift_the_next_page() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    seed_members(&app, 25).await;
    let expected = expected_order(&app, "CREATED_AT", false).await;

    let page = connection(&users(&app, &token, json!({ "first": 10 })).await).clone();
    let end = cursor_of(&page, 9);
    // Newer users land before the cursor, and so does one created in the same second as the
    // 10th user: its id is newer, hence larger, and in descending order it sorts first.
    let base = base_time(&app);
    let tie_time = base - Duration::minutes(2);
    insert(
        &database(&app).await,
        vec![member("newcomer1", base + Duration::minutes(5)), member("newcomer2", base), member("tied", tie_time)],
    )
    .await;
    let next = connection(&users(&app, &token, json!({ "first": 10, "after": end })).await).clone();
    assert_eq!(ids(&next), expected[10..20]);
    assert_eq!(next["totalCount"], 29, "the count does include the newcomers");
}

#[tokio::test]
async fn each_filter_narrows_the_directory() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    let base = base_time(&app);
    let at = |minutes: i64| base - Duration::minutes(minutes);
    let ada = users::Model {
        username: Some("countess".into()),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        ..member("ada.lovelace", at(1))
    };
    let grace = users::Model {
        email: Some("grace@navy.example.com".into()),
        username: Some("amazing_grace".into()),
        first_name: Some("Grace".into()),
        last_name: Some("HOPPER".into()),
        email_verified_at: None,
        ..member("unused", at(2))
    };
    let linus = users::Model { first_name: Some("Linus".into()), is_active: false, ..member("linus", at(3)) };
    let under = users::Model {
        username: Some("under_score".into()),
        last_name: Some("1000".into()),
        role: "ADMIN".into(),
        ..member("percy", at(4))
    };
    let undex =
        users::Model { username: Some("underxscore".into()), last_name: Some("100%".into()), ..member("x", at(5)) };
    let phoebe = users::Model {
        email: None,
        email_verified_at: None,
        phone: Some("+14155552671".into()),
        first_name: Some("Phoebe".into()),
        ..member("unused2", at(6))
    };
    let id = |row: &users::Model| row.id.to_string();
    let (ada_id, grace_id, linus_id, under_id, undex_id, phoebe_id) =
        (id(&ada), id(&grace), id(&linus), id(&under), id(&undex), id(&phoebe));
    insert(&database(&app).await, vec![ada, grace, linus, under, undex, phoebe]).await;
    let admin_id = expected_order(&app, "CREATED_AT", false).await[0].clone();

    let cases: Vec<(Value, Vec<&String>)> = vec![
        (json!({ "search": "LOVELACE" }), vec![&ada_id]),
        (json!({ "search": "Countess" }), vec![&ada_id]),
        (json!({ "search": "navy.EXAMPLE" }), vec![&grace_id]),
        (json!({ "search": "hopper" }), vec![&grace_id]),
        (json!({ "search": "  phoe " }), vec![&phoebe_id]),
        (json!({ "search": "linus" }), vec![&linus_id]),
        (json!({ "search": "r_s" }), vec![&under_id]),
        (json!({ "search": "100%" }), vec![&undex_id]),
        (json!({ "search": "%" }), vec![&undex_id]),
        (json!({ "search": "example.com" }), vec![&admin_id, &ada_id, &grace_id, &linus_id, &under_id, &undex_id]),
        (json!({ "search": "" }), vec![&admin_id, &ada_id, &grace_id, &linus_id, &under_id, &undex_id, &phoebe_id]),
        (json!({ "role": "ADMIN" }), vec![&under_id]),
        (json!({ "role": "SUPERUSER" }), vec![&admin_id]),
        (json!({ "role": "USER" }), vec![&ada_id, &grace_id, &linus_id, &undex_id, &phoebe_id]),
        (json!({ "isActive": false }), vec![&linus_id]),
        (json!({ "emailVerified": false }), vec![&grace_id, &phoebe_id]),
        (json!({ "emailVerified": true, "isActive": true, "role": "USER" }), vec![&ada_id, &undex_id]),
        (json!({ "createdAfter": at(3), "createdBefore": at(1) }), vec![&grace_id, &linus_id]),
        (json!({ "createdBefore": at(5) }), vec![&phoebe_id]),
        (json!({ "createdAfter": at(1) }), vec![&admin_id, &ada_id]),
        (json!({ "search": "a", "role": "ADMIN", "isActive": false }), vec![]),
    ];
    for (filter, want) in cases {
        let answer = users(&app, &token, json!({ "filter": filter })).await;
        let found = connection(&answer);
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(ids(found), want, "filter {filter}");
        assert_eq!(found["totalCount"], want.len(), "totalCount for {filter}");
    }

    // Filters hold across pages, both ways.
    let filter = json!({ "filter": { "search": "example.com" } });
    let expected = vec![admin_id.clone(), ada_id, grace_id, linus_id, under_id, undex_id];
    assert_eq!(walk_forward(&app, &token, 2, &filter).await, expected);
    assert_eq!(walk_backward(&app, &token, 4, &filter).await, expected);

    let too_long = users(&app, &token, json!({ "filter": { "search": "x".repeat(101) } })).await;
    assert_eq!(bad_input_field(&too_long), "search");
}

#[tokio::test]
async fn every_order_pages_both_ways_with_empty_values_last() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    let base = base_time(&app);
    let mut rows = Vec::new();
    for (i, name) in ["a_b", "a.b", "ab", "a-b", "zed", "m0", "m1"].into_iter().enumerate() {
        let last_login = match i % 3 {
            0 => None,
            1 => Some(base - Duration::hours(1)), // a tie on lastLoginAt
            _ => Some(base - Duration::hours(i as i64)),
        };
        rows.push(users::Model { last_login_at: last_login, ..member(name, base - Duration::minutes((i / 2) as i64)) });
    }
    for i in 0..4 {
        rows.push(users::Model {
            email: None,
            email_verified_at: None,
            last_login_at: (i % 2 == 0).then(|| base - Duration::minutes(30)),
            ..member("phone-only", base - Duration::minutes(i))
        });
    }
    insert(&database(&app).await, rows).await;

    for field in ["CREATED_AT", "EMAIL", "LAST_LOGIN_AT"] {
        for (direction, ascending) in [("ASC", true), ("DESC", false)] {
            let expected = expected_order(&app, field, ascending).await;
            let order = json!({ "orderBy": { "field": field, "direction": direction } });
            let all = connection(&users(&app, &token, order.clone()).await).clone();
            assert_eq!(ids(&all), expected, "{field} {direction}");
            for size in [1, 3, 5] {
                assert_eq!(walk_forward(&app, &token, size, &order).await, expected, "{field} {direction} by {size}");
                assert_eq!(walk_backward(&app, &token, size, &order).await, expected, "{field} {direction} by {size}");
            }
        }
    }

    // A cursor names its ordering: using it with another one is refused.
    let by_email = json!({ "first": 1, "orderBy": { "field": "EMAIL", "direction": "ASC" } });
    let cursor = cursor_of(connection(&users(&app, &token, by_email).await), 0);
    let mixed = users(&app, &token, json!({ "after": cursor })).await;
    assert_eq!(bad_input_field(&mixed), "after");
}

#[tokio::test]
async fn page_sizes_and_cursors_are_checked() {
    let app = TestApp::spawn().await;
    let token = admin_token(&app).await;
    let cases = [
        (json!({ "first": 101 }), "first"),
        (json!({ "first": -1 }), "first"),
        (json!({ "last": 101 }), "last"),
        (json!({ "last": -5 }), "last"),
        (json!({ "first": 5, "last": 5 }), "last"),
        (json!({ "after": "garbage" }), "after"),
        (json!({ "before": "eyJieSI6ImVtYWlsIn0" }), "before"),
        (json!({ "after": "" }), "after"),
    ];
    for (variables, field) in cases {
        let answer = users(&app, &token, variables.clone()).await;
        assert_eq!(bad_input_field(&answer), field, "{variables}: {answer}");
        assert!(answer["data"].is_null(), "{answer}");
    }
    let hundred = users(&app, &token, json!({ "first": 100 })).await;
    assert!(hundred["errors"].is_null(), "{hundred}");
}

#[tokio::test]
async fn a_user_is_readable_by_themselves_and_by_admins_only() {
    let app = TestApp::spawn().await;
    let admin = admin_token(&app).await;
    let alice = app.signed_in("alice@example.com").await;
    let bob = app.signed_in("bob@example.com").await;
    let (alice_id, bob_id) = (id_of(&app, &alice.access).await, id_of(&app, &bob.access).await);
    let query = "query($id: ID!) { user(id: $id) { id email role } }";
    let unknown = Uuid::now_v7().to_string();

    let own = app.gql_as(&alice.access, query, json!({ "id": alice_id })).await;
    assert_eq!(own["data"]["user"]["email"], "alice@example.com", "{own}");

    let other = app.gql_as(&alice.access, query, json!({ "id": bob_id })).await;
    assert_eq!(error_code(&other), "FORBIDDEN", "{other}");
    assert!(other["data"]["user"].is_null(), "{other}");
    let missing = app.gql_as(&alice.access, query, json!({ "id": unknown })).await;
    assert_eq!(error_code(&missing), "FORBIDDEN", "a non-admin cannot tell a missing id from another's: {missing}");

    let by_admin = app.gql_as(&admin, query, json!({ "id": bob_id })).await;
    assert_eq!(by_admin["data"]["user"]["email"], "bob@example.com", "{by_admin}");
    assert_eq!(by_admin["data"]["user"]["role"], "USER");
    let gone = app.gql_as(&admin, query, json!({ "id": unknown })).await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "{gone}");
    assert!(gone["data"]["user"].is_null(), "{gone}");

    let malformed = app.gql_as(&admin, query, json!({ "id": "not-an-id" })).await;
    assert_eq!(bad_input_field(&malformed), "id");
    let anonymous = app.gql(query, json!({ "id": alice_id })).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}

async fn id_of(app: &TestApp, token: &str) -> String {
    let answer = app.gql_as(token, "{ me { id } }", json!({})).await;
    answer["data"]["me"]["id"].as_str().unwrap_or_else(|| panic!("no id: {answer}")).to_owned()
}
