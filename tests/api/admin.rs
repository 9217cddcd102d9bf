use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, Tokens, error_code};

const DEACTIVATE: &str = "mutation($id: ID!) { deactivateUser(id: $id) { user { isActive } } }";
const ACTIVATE: &str = "mutation($id: ID!) { activateUser(id: $id) { user { isActive } } }";
const DELETE: &str = "mutation($id: ID!) { deleteUser(id: $id) }";
const SET_ROLE: &str = "mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { user { role } } }";
const AUDIT: &str = "query($f: AuditEventFilter) { auditEvents(first: 100, filter: $f) { totalCount edges { node { kind userId actorId detail } } } }";

fn outcome(response: &Value) -> String {
    if response["errors"].is_null() { "ok".into() } else { error_code(response) }
}

async fn me_id(app: &TestApp, tokens: &Tokens) -> String {
    app.gql_as(&tokens.access, "{ me { id } }", json!({})).await["data"]["me"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every guarded operation, asked by each kind of caller.
#[tokio::test]
async fn each_guarded_operation_answers_each_role_as_documented() {
    let app = TestApp::spawn_with(&[("register_rate_per_ip", json!(1000))]).await;
    let root = app.superuser("root@example.com").await;
    let (_, admin) = app.account(&root, "admin@example.com", "ADMIN").await;
    let user = app.signed_in("user@example.com").await;
    let other = app.signed_in("other@example.com").await;
    let user_id = me_id(&app, &user).await;
    let other_id = me_id(&app, &other).await;

    // (operation, variables, [anonymous, user, admin, superuser])
    let table: Vec<(&str, Value, [&str; 4])> = vec![
        ("{ me { id email } }", json!({}), ["UNAUTHENTICATED", "ok", "ok", "ok"]),
        ("{ mySessions { id } }", json!({}), ["UNAUTHENTICATED", "ok", "ok", "ok"]),
        ("{ users(first: 5) { totalCount } }", json!({}), ["UNAUTHENTICATED", "FORBIDDEN", "ok", "ok"]),
        (
            "query($id: ID!) { user(id: $id) { id email phone dateOfBirth gender lastLoginAt } }",
            json!({ "id": user_id }),
            ["UNAUTHENTICATED", "ok", "ok", "ok"],
        ),
        (
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": other_id }),
            ["UNAUTHENTICATED", "FORBIDDEN", "ok", "ok"],
        ),
        (
            "query($id: ID!) { user(id: $id) { sessions { id current } } }",
            json!({ "id": user_id }),
            ["UNAUTHENTICATED", "ok", "ok", "ok"],
        ),
        ("{ auditEvents(first: 5) { totalCount } }", json!({}), ["UNAUTHENTICATED", "FORBIDDEN", "ok", "ok"]),
        (
            "mutation { updateMe(input: { firstName: \"Zed\" }) { user { firstName } } }",
            json!({}),
            ["UNAUTHENTICATED", "ok", "ok", "ok"],
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { lastName: \"Doe\" }) { user { lastName } } }",
            json!({ "id": other_id }),
            ["UNAUTHENTICATED", "FORBIDDEN", "ok", "ok"],
        ),
        (
            "mutation($id: ID!) { setUserRole(id: $id, role: USER) { user { role } } }",
            json!({ "id": other_id }),
            ["UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "ok"],
        ),
    ];
    for (operation, variables, expected) in table {
        let answers = [
            app.gql(operation, variables.clone()).await,
            app.gql_as(&user.access, operation, variables.clone()).await,
            app.gql_as(&admin.access, operation, variables.clone()).await,
            app.gql_as(&root.access, operation, variables.clone()).await,
        ];
        let got: Vec<String> = answers.iter().map(outcome).collect();
        assert_eq!(got, expected, "{operation}: {answers:?}");
    }

    // createUser: admins make USERs only; superusers any role.
    let create = "mutation($input: CreateUserInput!) { createUser(input: $input) { user { role } } }";
    let new = |email: &str, role: &str| json!({ "input": { "email": email, "password": PASSWORD, "role": role } });
    assert_eq!(outcome(&app.gql_as(&user.access, create, new("a@example.com", "USER")).await), "FORBIDDEN");
    assert_eq!(outcome(&app.gql_as(&admin.access, create, new("b@example.com", "USER")).await), "ok");
    assert_eq!(outcome(&app.gql_as(&admin.access, create, new("c@example.com", "ADMIN")).await), "FORBIDDEN");
    assert_eq!(outcome(&app.gql_as(&root.access, create, new("d@example.com", "ADMIN")).await), "ok");
}

#[tokio::test]
async fn private_fields_of_a_user_are_visible_to_that_user_and_admins_only() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let user = app.signed_in("user@example.com").await;
    let id = me_id(&app, &user).await;
    let query = "query($id: ID!) { user(id: $id) { id email lastLoginAt } }";
    let own = app.gql_as(&user.access, query, json!({ "id": id })).await;
    assert_eq!(own["data"]["user"]["email"], "user@example.com", "{own}");
    let by_admin = app.gql_as(&root.access, query, json!({ "id": id })).await;
    assert_eq!(by_admin["data"]["user"]["email"], "user@example.com", "{by_admin}");
}

#[tokio::test]
async fn a_demoted_admin_loses_its_power_at_once() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let (admin_id, admin) = app.account(&root, "admin@example.com", "ADMIN").await;
    let users = "{ users(first: 1) { totalCount } }";
    assert_eq!(outcome(&app.gql_as(&admin.access, users, json!({})).await), "ok");
    let demoted = app.gql_as(&root.access, SET_ROLE, json!({ "id": admin_id, "role": "USER" })).await;
    assert_eq!(demoted["data"]["setUserRole"]["user"]["role"], "USER", "{demoted}");
    assert_eq!(
        outcome(&app.gql_as(&admin.access, users, json!({})).await),
        "FORBIDDEN",
        "the same token, no longer admin"
    );
}

#[tokio::test]
async fn deactivating_a_user_ends_its_sessions_and_activation_lets_it_back_in() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let user = app.signed_in("user@example.com").await;
    let id = me_id(&app, &user).await;
    let off = app.gql_as(&root.access, DEACTIVATE, json!({ "id": id })).await;
    assert_eq!(off["data"]["deactivateUser"]["user"]["isActive"], false, "{off}");
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.login("user@example.com", PASSWORD).await), "ACCOUNT_INACTIVE");
    let on = app.gql_as(&root.access, ACTIVATE, json!({ "id": id })).await;
    assert_eq!(on["data"]["activateUser"]["user"]["isActive"], true);
    assert_eq!(app.login("user@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn only_a_deactivated_user_can_be_deleted_and_the_audit_trail_keeps_its_id() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let user = app.signed_in("user@example.com").await;
    let id = me_id(&app, &user).await;
    let refused = app.gql_as(&root.access, DELETE, json!({ "id": id })).await;
    assert_eq!(error_code(&refused), "CONFLICT", "the caller may, the account is not ready: {refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap_or_default().contains("deactivate it first"));
    app.gql_as(&root.access, DEACTIVATE, json!({ "id": id })).await;
    assert_eq!(app.gql_as(&root.access, DELETE, json!({ "id": id })).await["data"]["deleteUser"], true);
    assert_eq!(
        error_code(&app.gql_as(&root.access, "query($id: ID!) { user(id: $id) { id } }", json!({ "id": id })).await),
        "NOT_FOUND"
    );
    assert_eq!(error_code(&app.login("user@example.com", PASSWORD).await), "INVALID_CREDENTIALS");
    let trail = app.gql_as(&root.access, AUDIT, json!({ "f": { "userId": id } })).await;
    let kinds: Vec<&str> = trail["data"]["auditEvents"]["edges"]
        .as_array()
        .map(|edges| edges.iter().filter_map(|e| e["node"]["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(kinds.contains(&"DELETED") && kinds.contains(&"REGISTERED"), "{kinds:?}");
}

#[tokio::test]
async fn nobody_acts_on_themselves_and_admins_leave_admins_alone() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let root_id = me_id(&app, &root).await;
    let (admin_id, admin) = app.account(&root, "admin@example.com", "ADMIN").await;
    let (_, _other_admin) = app.account(&root, "admin2@example.com", "ADMIN").await;
    let other_admin_id = {
        let listed = app
            .gql_as(
                &root.access,
                "{ users(first: 10, filter: { search: \"admin2\" }) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        listed["data"]["users"]["edges"][0]["node"]["id"].as_str().unwrap_or_default().to_owned()
    };
    for (who, id) in [(&root, &root_id), (&admin, &admin_id)] {
        let own = app.gql_as(&who.access, DEACTIVATE, json!({ "id": id })).await;
        assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    }
    assert_eq!(error_code(&app.gql_as(&admin.access, DEACTIVATE, json!({ "id": other_admin_id })).await), "FORBIDDEN");
    assert_eq!(error_code(&app.gql_as(&admin.access, DEACTIVATE, json!({ "id": root_id })).await), "FORBIDDEN");
    assert_eq!(
        error_code(&app.gql_as(&root.access, SET_ROLE, json!({ "id": root_id, "role": "USER" })).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn two_superusers_cannot_both_deactivate_each_other() {
    let app = TestApp::spawn().await;
    let first = app.superuser("first@example.com").await;
    let (second_id, second) = app.account(&first, "second@example.com", "SUPERUSER").await;
    let first_id = me_id(&app, &first).await;
    let (a, b) = tokio::join!(
        app.gql_as(&first.access, DEACTIVATE, json!({ "id": second_id })),
        app.gql_as(&second.access, DEACTIVATE, json!({ "id": first_id })),
    );
    let succeeded = [&a, &b].iter().filter(|r| r["errors"].is_null()).count();
    assert!(succeeded <= 1, "one active superuser must remain: {a} {b}");
}

#[tokio::test]
async fn security_events_are_on_record_without_secrets() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let user = app.signed_in("user@example.com").await;
    let id = me_id(&app, &user).await;
    app.login("user@example.com", "a wrong password 1").await;
    app.gql_as(&user.access, "mutation { logout }", json!({})).await;
    let trail = app.gql_as(&root.access, AUDIT, json!({ "f": { "userId": id } })).await;
    let events = trail["data"]["auditEvents"]["edges"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["node"]["kind"].as_str()).collect();
    for kind in ["REGISTERED", "EMAIL_VERIFIED", "LOGIN_SUCCEEDED", "LOGIN_FAILED", "SESSION_REVOKED"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let text = trail.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("a wrong password"), "no secrets: {text}");
    let wrong_only = app.gql_as(&root.access, AUDIT, json!({ "f": { "userId": id, "kind": "LOGIN_FAILED" } })).await;
    assert_eq!(wrong_only["data"]["auditEvents"]["totalCount"], 1, "{wrong_only}");
}

const DEACTIVATE_ME: &str = "mutation($p: String!) { deactivateMe(password: $p) }";

#[tokio::test]
async fn the_last_active_superuser_cannot_deactivate_their_own_account() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let refused = app.gql_as(&root.access, DEACTIVATE_ME, json!({ "p": PASSWORD })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap_or_default().contains("last active superuser"));
    assert_eq!(app.me(&root.access).await["data"]["me"]["email"], "root@example.com", "still active, still signed in");
    // With another superuser around, leaving is allowed.
    app.account(&root, "second@example.com", "SUPERUSER").await;
    let left = app.gql_as(&root.access, DEACTIVATE_ME, json!({ "p": PASSWORD })).await;
    assert_eq!(left["data"]["deactivateMe"], true, "{left}");
    assert_eq!(error_code(&app.me(&root.access).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn two_superusers_deactivating_themselves_at_once_leave_one_active() {
    let app = TestApp::spawn().await;
    let first = app.superuser("first@example.com").await;
    let (_, second) = app.account(&first, "second@example.com", "SUPERUSER").await;
    let (a, b) = tokio::join!(
        app.gql_as(&first.access, DEACTIVATE_ME, json!({ "p": PASSWORD })),
        app.gql_as(&second.access, DEACTIVATE_ME, json!({ "p": PASSWORD })),
    );
    let succeeded = [&a, &b].iter().filter(|r| r["data"]["deactivateMe"] == true).count();
    assert_eq!(succeeded, 1, "exactly one may leave: {a} {b}");
    let mut active = 0;
    for tokens in [&first, &second] {
        if app.me(&tokens.access).await["data"]["me"]["email"].is_string() {
            active += 1;
        }
    }
    assert_eq!(active, 1, "one superuser remains active and signed in");
}
