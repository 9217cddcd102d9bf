//! GraphiQL: the page a browser gets from `GET /graphql`, and the files it loads from
//! `/graphiql/assets/{name}`.
//!
//! Everything the page needs is served by idgate itself (build.rs embeds the pinned npm
//! packages), so GraphiQL works offline and no third party can change the code that runs next
//! to a user's tokens. The page is hardened as OWASP's secure-headers and CSP cheat sheets
//! advise (https://cheatsheetseries.owasp.org/cheatsheets/Content_Security_Policy_Cheat_Sheet.html):
//! no inline script, every script and stylesheet pinned by Subresource Integrity, a CSP that
//! allows nothing from another origin, and no framing. Asset names carry a hash of their
//! content, so they are cached for a year and never change under a name.
//!
//! A build without npm (`cfg(graphiql_unbundled)`) has no assets; the page then says so and
//! how to get them.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// One embedded file.
#[cfg_attr(graphiql_unbundled, allow(dead_code))]
struct Asset {
    /// Served name: `{stem}.{hash}.{ext}`.
    name: &'static str,
    content_type: &'static str,
    /// Subresource Integrity value, `sha384-…`.
    integrity: &'static str,
    body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));

/// Where the assets are served; the route in `http::router` matches it.
#[cfg_attr(graphiql_unbundled, allow(dead_code))]
const ASSETS_PATH: &str = "/graphiql/assets";

/// `GET /graphiql/assets/{name}`: one embedded file, cacheable for good; 404 for any other
/// name.
pub async fn asset(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        asset.body,
    )
        .into_response()
}

/// The GraphiQL page, with its security headers. The style nonce is fresh per response.
#[cfg(not(graphiql_unbundled))]
pub fn page() -> Response {
    let nonce = crate::security::crypto::random_token();
    let stylesheet =
        |a: &Asset| format!(r#"<link rel="stylesheet" href="{ASSETS_PATH}/{}" integrity="{}">"#, a.name, a.integrity);
    let script = |a: &Asset| format!(r#"<script src="{ASSETS_PATH}/{}" integrity="{}"></script>"#, a.name, a.integrity);
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>idgate · GraphiQL</title>
{graphiql_css}
{page_css}
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
{react}
{react_dom}
{graphiql_js}
<script src="{ASSETS_PATH}/{page_js}" integrity="{page_js_integrity}" nonce="{nonce}" data-endpoint="/graphql"></script>
</body>
</html>
"#,
        graphiql_css = stylesheet(&GRAPHIQL_CSS),
        page_css = stylesheet(&PAGE_CSS),
        react = script(&REACT),
        react_dom = script(&REACT_DOM),
        graphiql_js = script(&GRAPHIQL_JS),
        page_js = PAGE_JS.name,
        page_js_integrity = PAGE_JS.integrity,
    );
    // As strict as GraphiQL 3 allows. `data:` images and fonts: its stylesheet inlines its
    // icons and fonts. The style nonce: the scroll lock of its dialogs and menus
    // (react-remove-scroll) inserts a <style> element stamped with it (see idgate-graphiql.js);
    // every other stylesheet is one of the files served here. Inline styles set from script
    // (CSSOM) are not subject to style-src.
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    with_page_headers(Html(html).into_response(), &csp)
}

/// Instead of GraphiQL: this build could not bundle its assets, and here is how to.
#[cfg(graphiql_unbundled)]
pub fn page() -> Response {
    let html = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>idgate · GraphiQL is not bundled</title>
</head>
<body>
<h1>GraphiQL is not bundled in this build</h1>
<p>This idgate was built without GraphiQL's assets (React and GraphiQL from npm), because npm
was not installed or could not install them when it was compiled. The GraphQL API itself works:
send queries to this URL with POST, or with GET and a <code>query</code> parameter.</p>
<p>To get GraphiQL here, install Node.js with npm on the machine that builds idgate, then
rebuild (<code>touch web/graphiql/package.json</code> first if nothing else changed) and
restart. The build warns when it cannot bundle the assets.</p>
</body>
</html>
"#;
    with_page_headers(
        Html(html).into_response(),
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    )
}

fn with_page_headers(mut response: Response, csp: &str) -> Response {
    let headers = response.headers_mut();
    match HeaderValue::from_str(csp) {
        Ok(value) => headers.insert(header::CONTENT_SECURITY_POLICY, value),
        // Not reachable (the policy is ASCII); refuse to serve the page without it.
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    };
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
