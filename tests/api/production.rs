//! `IDGATE_ENV=production` turns the development conveniences off: introspection, field
//! suggestions and GraphiQL. (Start-up refusals are unit tests of `config`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

async fn production() -> TestApp {
    TestApp::spawn_with(&[
        ("env", json!("production")),
        ("public_url", json!("https://id.example.com")),
        ("secret_key", json!("a production secret of some length 42")),
    ])
    .await
}

#[tokio::test]
async fn production_refuses_introspection_and_suggestions_but_answers_queries() {
    let app = production().await;
    let schema = app.gql("{ __schema { queryType { name } } }", json!({})).await;
    assert!(schema["data"]["__schema"].is_null(), "the schema stays unread: {schema}");
    let named = app.gql("{ __type(name: \"User\") { fields { name } } }", json!({})).await;
    assert!(named["data"]["__type"].is_null(), "{named}");
    let typo = app.gql("{ authConfg { otpTtl } }", json!({})).await;
    assert!(typo["errors"].is_array(), "{typo}");
    assert!(!typo.to_string().contains("Did you mean"), "no field suggestions: {typo}");
    let config = app.gql("{ authConfig { loginRequiresOtp } }", json!({})).await;
    assert_eq!(config["data"]["authConfig"]["loginRequiresOtp"], true, "{config}");
}

#[tokio::test]
async fn production_serves_no_graphiql() {
    let app = production().await;
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(!page.text().await.unwrap_or_default().contains("<html"), "no GraphiQL page");
}

#[tokio::test]
async fn development_keeps_suggestions_and_introspection() {
    let app = TestApp::spawn().await;
    let typo = app.gql("{ authConfg { otpTtl } }", json!({})).await;
    assert!(typo.to_string().contains("Did you mean"), "{typo}");
    let schema = app.gql("{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(schema["data"]["__schema"]["queryType"]["name"], "Query", "{schema}");
}
