//! Every GraphQL operation README.md shows passes the document limits (depth, complexity,
//! aliases), while the shapes attackers use fail them: the limits are sized for real use.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

/// The operations in README's ```graphql blocks, one document each (comments dropped).
fn readme_operations() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let mut operations = Vec::new();
    for block in readme.split("```graphql").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let mut current = String::new();
        let mut depth = 0i32;
        for line in block.lines() {
            let code = line.split(" #").next().unwrap_or(line);
            if code.trim_start().starts_with('#') || code.trim().is_empty() {
                continue;
            }
            let starts_operation = ["mutation", "query", "{"].iter().any(|start| code.starts_with(start));
            if depth == 0 && starts_operation && !current.trim().is_empty() {
                operations.push(std::mem::take(&mut current));
            }
            depth += code.matches(['{', '(']).count() as i32 - code.matches(['}', ')']).count() as i32;
            current.push_str(code);
            current.push('\n');
        }
        if !current.trim().is_empty() {
            operations.push(current);
        }
    }
    operations
}

fn refused_as_a_document(answer: &Value) -> bool {
    ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"].contains(&error_code(answer).as_str())
}

#[tokio::test]
async fn every_operation_in_the_readme_fits_the_limits() {
    let app = TestApp::spawn().await;
    let operations = readme_operations();
    assert!(operations.len() >= 30, "found {} operations", operations.len());
    for operation in operations {
        let answer = app.gql(&operation, json!({})).await;
        assert!(!refused_as_a_document(&answer), "README operation refused:\n{operation}\n{answer}");
    }
}

#[tokio::test]
async fn attack_shapes_fail_the_limits() {
    let app = TestApp::spawn().await;
    let aliased: String = (0..100).map(|i| format!("a{i}: authConfig {{ otpTtl }} ")).collect();
    let spread = "{ ...F ...F ...F ...F } fragment F on Query { a: authConfig { otpTtl } b: authConfig { otpTtl } \
                  c: authConfig { otpTtl } d: authConfig { otpTtl } e: authConfig { otpTtl } f: authConfig { otpTtl } \
                  g: authConfig { otpTtl } h: authConfig { otpTtl } }";
    let logins: String = (0..3)
        .map(|i| format!("l{i}: login(input: {{ email: \"a@example.com\", password: \"x\" }}) {{ __typename }} "))
        .collect();
    let deep =
        format!("{{ __type(name: \"User\") {{ {} name {} }} }}", "fields { type { ".repeat(12), "} } ".repeat(12));
    for attack in [format!("{{ {aliased} }}"), spread.to_owned(), format!("mutation {{ {logins} }}"), deep] {
        let answer = app.gql(&attack, json!({})).await;
        assert!(refused_as_a_document(&answer), "not refused:\n{attack}\n{answer}");
    }
}
