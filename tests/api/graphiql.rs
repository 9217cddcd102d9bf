//! GraphiQL is served from idgate itself, pinned by Subresource Integrity, under a strict
//! Content-Security-Policy; every response says `nosniff`. A build without npm
//! (`cfg(graphiql_unbundled)`) serves an explanation instead of GraphiQL.

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::json;

use crate::helpers::TestApp;

async fn graphiql_page(app: &TestApp) -> (HeaderMap, String) {
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap_or_default())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The directives of a CSP header, by name.
fn directives(csp: &str) -> Vec<(String, String)> {
    csp.split(';')
        .filter_map(|d| {
            let d = d.trim();
            let (name, value) = d.split_once(' ').unwrap_or((d, ""));
            (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn directive(csp: &str, name: &str) -> Option<String> {
    directives(csp).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = TestApp::spawn().await;
    let json_answer = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ authConfig { loginRequiresOtp } }" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json_answer.status(), StatusCode::OK);
    assert_eq!(header(json_answer.headers(), "x-content-type-options"), "nosniff");

    for path in ["/graphql", "/verify-email", "/reset-password", "/healthz", "/no-such-page"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(response.headers(), "x-content-type-options"), "nosniff", "{path}");
    }
    let (headers, _) = graphiql_page(&app).await;
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn the_graphiql_page_can_be_neither_framed_nor_referred_from() {
    let app = TestApp::spawn().await;
    let (headers, _) = graphiql_page(&app).await;
    let csp = header(&headers, "content-security-policy");
    assert_eq!(directive(csp, "frame-ancestors").as_deref(), Some("'none'"), "{csp}");
    assert_eq!(header(&headers, "x-frame-options"), "DENY");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert!(header(&headers, "content-type").starts_with("text/html"));
}

#[cfg(not(graphiql_unbundled))]
mod bundled {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use sha2::{Digest, Sha384};

    use super::*;

    /// `(attribute value, whole tag)` for each `name="…"` in the page's tags.
    fn attributes<'a>(page: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
        let needle = format!(" {name}=\"");
        let mut found = Vec::new();
        for (start, _) in page.match_indices('<') {
            let Some(len) = page[start..].find('>') else { continue };
            let tag = &page[start..start + len + 1];
            if let Some(at) = tag.find(&needle) {
                let value = &tag[at + needle.len()..];
                found.push((&value[..value.find('"').unwrap_or(value.len())], tag));
            }
        }
        found
    }

    #[tokio::test]
    async fn the_graphiql_page_allows_only_its_own_scripts_and_styles() {
        let app = TestApp::spawn().await;
        let (headers, page) = graphiql_page(&app).await;
        let csp = header(&headers, "content-security-policy");
        for (name, value) in [
            ("default-src", "'none'"),
            ("script-src", "'self'"),
            ("img-src", "'self' data:"),
            ("font-src", "'self' data:"),
            ("connect-src", "'self'"),
            ("base-uri", "'none'"),
            ("form-action", "'none'"),
        ] {
            assert_eq!(directive(csp, name).as_deref(), Some(value), "{name} in {csp}");
        }
        // Styles: our files, and the one <style> GraphiQL's scroll lock inserts, by nonce.
        let style = directive(csp, "style-src").unwrap_or_default();
        let nonce = style.strip_prefix("'self' 'nonce-").and_then(|n| n.strip_suffix('\'')).unwrap_or_default();
        assert!(nonce.len() >= 22, "a 128-bit or longer nonce: {csp}");
        assert!(page.contains(&format!("nonce=\"{nonce}\"")), "the bootstrap script carries the nonce: {page}");
        let (again, _) = graphiql_page(&app).await;
        assert_ne!(header(&again, "content-security-policy"), csp, "a fresh nonce per response");

        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(!page.contains("<script>") && !page.contains("<style"), "no inline script or style: {page}");
        assert!(!page.contains(" style="), "no inline style: {page}");
    }

    #[tokio::test]
    async fn the_graphiql_page_loads_nothing_from_another_origin() {
        let app = TestApp::spawn().await;
        let (_, page) = graphiql_page(&app).await;
        assert!(!page.contains("http://") && !page.contains("https://"), "{page}");
        let references: Vec<_> = attributes(&page, "src").into_iter().chain(attributes(&page, "href")).collect();
        assert_eq!(references.len(), 6, "React, ReactDOM, GraphiQL (script, style), our script and style: {page}");
        for (reference, _) in references {
            assert!(reference.starts_with("/graphiql/assets/") && !reference.starts_with("//"), "{reference}");
        }
    }

    #[tokio::test]
    async fn every_asset_the_page_references_is_served_immutable_and_matches_its_integrity_hash() {
        let app = TestApp::spawn().await;
        let (_, page) = graphiql_page(&app).await;
        let references: Vec<_> = attributes(&page, "src").into_iter().chain(attributes(&page, "href")).collect();
        assert!(!references.is_empty(), "{page}");
        for (reference, tag) in references {
            let response =
                app.client.get(format!("{}{reference}", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::OK, "{reference}");
            let headers = response.headers().clone();
            let expected = if tag.starts_with("<script") { "text/javascript" } else { "text/css" };
            assert!(header(&headers, "content-type").starts_with(expected), "{reference}: {headers:?}");
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "{reference}");
            assert_eq!(header(&headers, "cache-control"), "public, max-age=31536000, immutable", "{reference}");
            let body = response.bytes().await.unwrap_or_default();
            assert!(body.len() > 100, "{reference} has content");
            let integrity = format!("sha384-{}", STANDARD.encode(Sha384::digest(&body)));
            assert!(tag.contains(&format!(" integrity=\"{integrity}\"")), "{tag} should pin {integrity}");
        }
    }

    #[tokio::test]
    async fn the_bootstrap_script_asks_idgate_for_graphql_responses() {
        let app = TestApp::spawn().await;
        let (_, page) = graphiql_page(&app).await;
        let script = attributes(&page, "src")
            .into_iter()
            .map(|(src, _)| src)
            .find(|src| src.contains("idgate-graphiql"))
            .unwrap_or_else(|| panic!("no bootstrap script in {page}"));
        let body = app
            .client
            .get(format!("{}{script}", app.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        assert!(body.contains("application/graphql-response+json, application/json"), "{body}");
        assert!(page.contains("data-endpoint=\"/graphql\""), "{page}");
    }

    #[tokio::test]
    async fn unknown_asset_names_are_not_found() {
        let app = TestApp::spawn().await;
        for name in ["graphiql.min.js", "..%2FCargo.toml", "idgate-graphiql.0000000000000000.js"] {
            let response = app
                .client
                .get(format!("{}/graphiql/assets/{name}", app.address))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
            assert_eq!(header(response.headers(), "cache-control"), "no-store", "{name}");
        }
    }
}

#[cfg(graphiql_unbundled)]
#[tokio::test]
async fn without_bundled_assets_the_page_explains_how_to_get_them() {
    let app = TestApp::spawn().await;
    let (headers, page) = graphiql_page(&app).await;
    assert!(page.contains("GraphiQL is not bundled in this build"), "{page}");
    assert!(page.contains("install Node.js with npm"), "{page}");
    assert!(!page.contains("<script") && !page.contains("http"), "{page}");
    let csp = header(&headers, "content-security-policy");
    assert_eq!(directive(csp, "default-src").as_deref(), Some("'none'"), "{csp}");
}
