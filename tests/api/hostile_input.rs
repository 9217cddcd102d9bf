//! Hostile documents and bodies: however deep or malformed, a request fails on its own and the
//! server keeps serving. (A stack overflow here would abort this whole test binary, so every
//! test below would fail with it.)

use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const LEVELS: usize = 10_000;

fn url(app: &TestApp) -> String {
    format!("{}/graphql", app.address)
}

/// The four shapes that overflowed the parser's stack: lists and objects in an argument, a list
/// in a directive argument, and selection sets.
fn deep_documents() -> Vec<(&'static str, String)> {
    let open_close = |open: &str, close: &str| (open.repeat(LEVELS), close.repeat(LEVELS));
    let (lists_in, lists_out) = open_close("[", "]");
    let (objects_in, objects_out) = open_close("{a:", "}");
    let (sets_in, sets_out) = open_close("{a", "}");
    vec![
        ("lists in an argument", format!("{{ authConfig(x: {lists_in}1{lists_out}) {{ otpTtl }} }}")),
        ("objects in an argument", format!("{{ authConfig(x: {objects_in}1{objects_out}) {{ otpTtl }} }}")),
        ("lists in a directive", format!("{{ authConfig @skip(if: {lists_in}true{lists_out}) {{ otpTtl }} }}")),
        ("selection sets", format!("{sets_in}{sets_out}")),
    ]
}

async fn still_serves(app: &TestApp) {
    let answer = app.gql("{ authConfig { loginRequiresOtp } }", json!({})).await;
    assert_eq!(answer["data"]["authConfig"]["loginRequiresOtp"], true, "{answer}");
}

#[tokio::test]
async fn deeply_nested_documents_over_post_are_refused_with_a_parse_error() {
    let app = TestApp::spawn().await;
    for (shape, document) in deep_documents() {
        let response = app
            .client
            .post(url(&app))
            .json(&json!({ "query": document }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{shape}");
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED", "{shape}: {body}");
        assert!(body.get("data").is_none(), "{shape}: nothing ran, so no data entry: {body}");
    }
    still_serves(&app).await;
}

/// GETs `/graphql?<query string>` over a raw connection: brackets stay unencoded, as a client
/// may send them, since ten thousand levels percent-encoded would not fit in any URI.
async fn raw_get(app: &TestApp, query_string: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap_or_else(|e| panic!("{e}"));
    let request = format!("GET /graphql?{query_string} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap_or_else(|e| panic!("{e}"));
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn deeply_nested_documents_over_get_are_refused_with_a_parse_error() {
    let app = TestApp::spawn().await;
    for (shape, document) in deep_documents() {
        let (status, body) = raw_get(&app, &format!("query={}", document.replace(' ', "+"))).await;
        assert_eq!(status, 400, "{shape}");
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED", "{shape}: {body}");
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_in_variables_is_refused() {
    let app = TestApp::spawn().await;
    let nested = format!("{}1{}", "[".repeat(LEVELS), "]".repeat(LEVELS));
    let body = format!(r#"{{"query":"query($v: JSON) {{ authConfig {{ otpTtl }} }}","variables":{{"v":{nested}}}}}"#);
    let response = app
        .client
        .post(url(&app))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let lists = format!("%7B%22v%22:{}1{}%7D", "[".repeat(LEVELS), "]".repeat(LEVELS));
    let (status, _) = raw_get(&app, &format!("query=%7B+authConfig+%7B+otpTtl+%7D+%7D&variables={lists}")).await;
    assert_eq!(status, 400);
    still_serves(&app).await;
}

#[tokio::test]
async fn a_syntax_error_gives_its_position_without_echoing_the_document() {
    let app = TestApp::spawn().await;
    let answer = app.gql("{ authConfig { otpTtl } SECRET_MARKER( }", json!({})).await;
    assert_eq!(error_code(&answer), "GRAPHQL_PARSE_FAILED", "{answer}");
    let error = &answer["errors"][0];
    assert!(error["message"].as_str().unwrap_or_default().starts_with("syntax error"), "{answer}");
    assert!(!answer.to_string().contains("SECRET_MARKER"), "the document is echoed: {answer}");
    assert_eq!(error["locations"][0]["line"], 1, "{answer}");
    assert!(answer.get("data").is_none(), "{answer}");
}

#[tokio::test]
async fn long_chains_of_fragments_are_refused() {
    let app = TestApp::spawn().await;
    let mut document = String::from("{ ...F0 }");
    for i in 0..1_000 {
        document.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
    }
    document.push_str(" fragment F1000 on Query { authConfig { otpTtl } }");
    let response =
        app.client.post(url(&app)).json(&json!({ "query": document })).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    still_serves(&app).await;
}

/// A request body for the property test: a document (valid, mutated or random) and variables.
fn hostile_bodies() -> impl Strategy<Value = String> {
    let valid = prop_oneof![
        Just("{ authConfig { loginRequiresOtp otpTtl passwordPolicy { minLength } } }".to_owned()),
        Just("query Q($e: String!) { __typename } mutation M { logout }".to_owned()),
        Just("{ __schema { types { name fields { name type { ofType { name } } } } } }".to_owned()),
        Just("fragment F on Query { authConfig { otpTtl } } { ...F ... on Query { __typename } }".to_owned()),
        Just("mutation { requestPasswordReset(email: \"a@example.com\") }".to_owned()),
    ];
    let tokens = prop::collection::vec(
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("\"".to_owned()),
            Just("\"\"\"".to_owned()),
            Just("\\".to_owned()),
            Just("#".to_owned()),
            Just("\n".to_owned()),
            Just("...".to_owned()),
            Just("@skip(if:".to_owned()),
            Just("$v".to_owned()),
            Just(":".to_owned()),
            Just("fragment F on Query".to_owned()),
            "[a-zA-Z_]{1,8}",
            "[0-9.eE+-]{1,6}",
            any::<char>().prop_map(String::from),
        ],
        0..400,
    )
    .prop_map(|tokens| tokens.concat());
    // A valid document with a random slice replaced by random tokens.
    let mutated = (valid.clone(), any::<prop::sample::Index>(), tokens.clone()).prop_map(|(doc, at, noise)| {
        let cut = at.index(doc.len() + 1);
        let cut = (0..=cut).rev().find(|&i| doc.is_char_boundary(i)).unwrap_or(0);
        format!("{}{noise}{}", &doc[..cut], &doc[cut..])
    });
    let document = prop_oneof![valid, mutated, tokens.clone()];
    let variables = prop_oneof![
        Just("null".to_owned()),
        Just("{}".to_owned()),
        (1usize..300).prop_map(|depth| format!("{{\"v\":{}0{}}}", "[".repeat(depth), "]".repeat(depth))),
        tokens.clone(),
    ];
    prop_oneof![
        4 => (document, variables).prop_map(|(query, variables)| {
            format!("{{\"query\":{},\"variables\":{variables}}}", serde_json::Value::String(query))
        }),
        1 => tokens,
    ]
}

#[test]
fn random_and_mutated_documents_and_bodies_always_get_an_answer() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let result = runner.run(&hostile_bodies(), |body| {
        let response = runtime
            .block_on(app.client.post(url(&app)).header("content-type", "application/json").body(body.clone()).send());
        let response = response.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status();
        prop_assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::TOO_MANY_REQUESTS]
                .contains(&status),
            "status {status} for {body:?}"
        );
        let answer: Value = runtime
            .block_on(response.json())
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}) for {body:?}")))?;
        prop_assert!(answer.get("data").is_some() || answer["errors"].is_array(), "{answer} for {body:?}");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    runtime.block_on(still_serves(&app));
}
