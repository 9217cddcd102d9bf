//! `tokenInfo` and `POST /oauth/introspect`: what a resource server learns about a token that
//! the JWKS alone cannot tell it (revocation, deactivation).

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{TestApp, re_signed};

const TOKEN_INFO: &str =
    "query($t: String!) { tokenInfo(token: $t) { active subject sessionId role issuedAt expiresAt tokenType } }";
const INACTIVE: &str =
    r#"{"active":false,"subject":null,"sessionId":null,"role":null,"issuedAt":null,"expiresAt":null,"tokenType":null}"#;

async fn info(app: &TestApp, token: &str) -> Value {
    let answer = app.gql(TOKEN_INFO, json!({ "t": token })).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["tokenInfo"].clone()
}

fn inactive() -> Value {
    serde_json::from_str(INACTIVE).unwrap_or_default()
}

#[tokio::test]
async fn token_info_sees_live_tokens_and_nothing_of_dead_ones() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let alice = app.signed_in("alice@example.com").await;
    let me = app.gql_as(&alice.access, "{ me { id } }", json!({})).await;

    let access = info(&app, &alice.access).await;
    assert_eq!(access["active"], true, "{access}");
    assert_eq!(access["subject"], me["data"]["me"]["id"]);
    assert_eq!(access["sessionId"], alice.session_id.as_str());
    assert_eq!((access["role"].as_str(), access["tokenType"].as_str()), (Some("USER"), Some("ACCESS")));
    let lifetime = chrono::DateTime::parse_from_rfc3339(access["expiresAt"].as_str().unwrap_or_default())
        .map(|e| e.timestamp())
        .unwrap_or_default()
        - chrono::DateTime::parse_from_rfc3339(access["issuedAt"].as_str().unwrap_or_default())
            .map(|i| i.timestamp())
            .unwrap_or_default();
    assert_eq!(lifetime, 900);
    let refresh = info(&app, &alice.refresh).await;
    assert_eq!(
        (refresh["active"].as_bool(), refresh["tokenType"].as_str()),
        (Some(true), Some("REFRESH")),
        "{refresh}"
    );

    let forged_refresh = format!("{}.{}", alice.session_id.replace('-', ""), "A".repeat(43));
    let foreign = re_signed(&alice.access, |_, claims| claims["aud"] = json!("another-service"));
    for dead in ["", "garbage", "a.b.c", forged_refresh.as_str(), foreign.as_str(), &"x".repeat(20_000)] {
        assert_eq!(info(&app, dead).await, inactive(), "{dead:.40}");
    }

    // Revocation: what a signature check alone cannot see.
    let logout = app.gql_as(&alice.access, "mutation { logout }", json!({})).await;
    assert!(logout["errors"].is_null(), "{logout}");
    assert_eq!(info(&app, &alice.access).await, inactive());
    assert_eq!(info(&app, &alice.refresh).await, inactive());

    // Deactivation, and expiry.
    let bob = app.signed_in("bob@example.com").await;
    let bob_id = app.gql_as(&bob.access, "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let off = app
        .gql_as(
            &root.access,
            "mutation($id: ID!) { deactivateUser(id: $id) { user { isActive } } }",
            json!({ "id": bob_id }),
        )
        .await;
    assert!(off["errors"].is_null(), "{off}");
    assert_eq!(info(&app, &bob.access).await, inactive());
    app.clock.advance(Duration::seconds(900 + 31));
    assert_eq!(info(&app, &root.access).await, inactive(), "expired");
}

#[tokio::test]
async fn token_info_is_rate_limited_per_alias() {
    let app = TestApp::spawn_with(&[("token_info_rate_per_ip", json!(3))]).await;
    let aliases: String = (0..5).map(|i| format!("t{i}: tokenInfo(token: \"x\") {{ active }} ")).collect();
    let answer = app.gql(&format!("{{ {aliases} }}"), json!({})).await;
    let limited =
        answer["errors"].as_array().into_iter().flatten().filter(|e| e["extensions"]["code"] == "RATE_LIMITED");
    assert_eq!(limited.count(), 2, "three of five aliases run: {answer}");
}

#[tokio::test]
async fn the_introspection_endpoint_answers_like_rfc_7662_for_callers_with_the_secret() {
    let off = TestApp::spawn().await;
    let response = off.client.post(format!("{}/oauth/introspect", off.address)).form(&[("token", "x")]).send().await;
    assert_eq!(response.map(|r| r.status().as_u16()).unwrap_or_default(), 404, "off without a secret");

    let app = TestApp::spawn_with(&[("introspection_secret", json!("s3cret-for-services"))]).await;
    let carol = app.signed_in("carol@example.com").await;
    let url = format!("{}/oauth/introspect", app.address);
    let ask = |auth: Option<(&str, &str)>, token: &str| {
        let mut request = app.client.post(&url).form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send()
    };
    let anonymous = ask(None, &carol.access).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(anonymous.status(), 401);
    let wrong = ask(Some(("svc", "guess")), &carol.access).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrong.status(), 401);

    let live = ask(Some(("svc", "s3cret-for-services")), &carol.access).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(live.status(), 200);
    let body: Value = live.json().await.unwrap_or_default();
    assert_eq!((body["active"].as_bool(), body["token_type"].as_str()), (Some(true), Some("access_token")), "{body}");
    assert_eq!(body["sid"], carol.session_id.as_str());
    assert!(body["exp"].as_i64().unwrap_or_default() > body["iat"].as_i64().unwrap_or_default());

    let bearer = app
        .client
        .post(&url)
        .bearer_auth("s3cret-for-services")
        .form(&[("token", carol.refresh.as_str())])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body: Value = bearer.json().await.unwrap_or_default();
    assert_eq!(body["token_type"], "refresh_token", "{body}");

    let dead = ask(Some(("svc", "s3cret-for-services")), "nonsense").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dead.json::<Value>().await.unwrap_or_default(), json!({ "active": false }));
}
