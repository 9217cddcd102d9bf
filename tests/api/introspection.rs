//! Introspection works with the standard queries tools send, while the depth limit still stops
//! deep data queries. The fixtures are `getIntrospectionQuery()` of graphql-js 16.15: with its
//! defaults, and with every option on (GraphiQL and code generators ask for those).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const GRAPHQL_JS: &str = include_str!("fixtures/introspection-graphql-js.graphql");
const ALL_OPTIONS: &str = include_str!("fixtures/introspection-graphiql.graphql");

async fn introspect(app: &TestApp, query: &str, accept: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("accept", accept)
        .json(&json!({ "query": query, "operationName": "IntrospectionQuery" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_standard_introspection_queries_load_the_whole_schema() {
    let app = TestApp::spawn().await;
    for (name, query) in [("graphql-js defaults", GRAPHQL_JS), ("every option", ALL_OPTIONS)] {
        for accept in ["application/json", "application/graphql-response+json"] {
            let answer = introspect(&app, query, accept).await;
            assert!(answer["errors"].is_null(), "{name} ({accept}): {answer}");
            let schema = &answer["data"]["__schema"];
            assert_eq!(schema["queryType"]["name"], "Query", "{name}");
            assert_eq!(schema["mutationType"]["name"], "Mutation", "{name}");
            let types = schema["types"].as_array().cloned().unwrap_or_default();
            let named = |n: &str| types.iter().find(|t| t["name"] == n).cloned().unwrap_or_default();
            assert!(named("User")["fields"].as_array().is_some_and(|f| !f.is_empty()), "{name}");
            assert_eq!(named("Date")["kind"], "SCALAR", "{name}: the date scalar is called Date");
            assert!(named("NaiveDate").is_null(), "{name}: no Rust type names in the schema");
        }
    }
    let full = introspect(&app, ALL_OPTIONS, "application/json").await;
    let types = full["data"]["__schema"]["types"].as_array().cloned().unwrap_or_default();
    let date = types.iter().find(|t| t["name"] == "Date").cloned().unwrap_or_default();
    assert!(date["specifiedByURL"].as_str().is_some_and(|u| u.contains("rfc3339")), "{date}");
    for scalar in ["Date", "DateTime", "JSON", "Upload"] {
        let described = types.iter().find(|t| t["name"] == scalar).map(|t| t["description"].clone());
        let text = described.and_then(|d| d.as_str().map(str::to_owned)).unwrap_or_default();
        assert!(text.len() > 20 && !text.contains("NaiveDate") && !text.contains("<Utc>"), "{scalar}: {text:?}");
    }
}

#[tokio::test]
async fn the_depth_limit_still_stops_deep_data_queries() {
    let app = TestApp::spawn_with(&[("query_depth_limit", json!(3))]).await;
    let deep = app.gql("{ users(first: 1) { edges { node { id } } } }", json!({})).await;
    assert_eq!(error_code(&deep), "GRAPHQL_VALIDATION_FAILED", "{deep}");
    assert!(deep["errors"][0]["message"].as_str().unwrap_or_default().contains("nested too deep"), "{deep}");
    let shallow = app.gql("{ authConfig { passwordPolicy { minLength } } }", json!({})).await;
    assert!(shallow["errors"].is_null(), "{shallow}");
    // Introspection has room of its own, whatever the data limit.
    let answer = introspect(&app, GRAPHQL_JS, "application/json").await;
    assert!(answer["errors"].is_null(), "{answer}");
}

#[tokio::test]
async fn introspection_cannot_nest_without_bound() {
    let app = TestApp::spawn().await;
    let deep =
        format!("{{ __type(name: \"User\") {{ {} name {} }} }}", "fields { type { ".repeat(12), "} } ".repeat(12));
    let answer = app.gql(&deep, json!({})).await;
    assert_eq!(error_code(&answer), "GRAPHQL_VALIDATION_FAILED", "{answer}");
}
