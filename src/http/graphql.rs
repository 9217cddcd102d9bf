//! The GraphQL over HTTP transport, stricter than the stock integration as an auth server
//! must be (https://graphql.github.io/graphql-over-http/draft/):
//! - POST with a JSON body (`application/json`), capped in size; no batched arrays;
//! - POST with `multipart/form-data` for file uploads (`uploadAvatar`), following the GraphQL
//!   multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec):
//!   one file of at most `IDGATE_AVATAR_MAX_BYTES`, no batches, and only with an
//!   `Authorization: Bearer` header. Uploads are for signed-in users, and since
//!   `multipart/form-data` is a CORS-safelisted type a cross-site HTML form could post it; it
//!   cannot add that header;
//! - GET only for queries (a mutation over GET is 405 with `Allow: POST`), or GraphiQL for a
//!   browser; every other method 405;
//! - the response media type negotiated from `Accept`: `application/graphql-response+json`
//!   (with 400 for requests that fail before execution) or `application/json` (always 200).

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use async_graphql::{
    BatchRequest, ErrorExtensionValues, Name, ParseRequestError, Pos, ServerError, Value,
    http::{MultipartOptions, receive_batch_body},
    parser::{
        Positioned,
        types::{Directive, ExecutableDocument, OperationType, Selection, SelectionSet},
    },
};
use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::HttpState;
use crate::{
    client::ClientInfo,
    graphql::{
        errors::{self, Refusal},
        limits::{self, ShapeError},
        viewer::Viewer,
    },
    security::cookies::{CSRF_HEADER, RequestCookies},
    telemetry::{self, LoginLabels, OperationLabels, RequestLabels},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";
/// The code of a document that cannot be parsed, or is refused before parsing.
const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";

/// The media type of the answer, chosen from `Accept`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

/// Picks the response format; None when the client accepts neither (406). The new media type
/// is used only when asked for by name; `*/*` and a missing header get the legacy
/// `application/json`, which is what curl and older clients expect.
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Format::Json);
    };
    let (mut modern, mut legacy) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts.find_map(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => modern = modern.max(quality),
            APPLICATION_JSON | "application/*" | "*/*" => legacy = legacy.max(quality),
            _ => {}
        }
    }
    if modern > 0.0 && modern >= legacy {
        Some(Format::GraphqlResponseJson)
    } else if legacy > 0.0 {
        Some(Format::Json)
    } else {
        None
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }] });
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON))], body.to_string()).into_response()
}

/// POST /graphql. Takes the whole request, so the headers are moved out of it rather than
/// copied (the `HeaderMap` extractor clones them).
pub async fn post(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (axum::http::request::Parts { headers, .. }, body) = request.into_parts();
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<mime::Mime>().ok());
    if content_type.as_ref().is_some_and(|m| m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str()) {
        return post_multipart(&state, peer, &headers, body).await;
    }
    let json_body = content_type.is_some_and(|m| {
        let essence = m.essence_str();
        (essence == APPLICATION_JSON || essence == GRAPHQL_RESPONSE_JSON)
            && m.get_param(mime::CHARSET).is_none_or(|c| c == mime::UTF_8)
    });
    if !json_body {
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json");
    }
    let Some(format) = negotiate(&headers) else {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let bytes: Bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"),
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return plain(StatusCode::BAD_REQUEST, "batched requests are not supported");
    }
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not a GraphQL request in JSON"),
    };
    let admitted = match admit(&state, request, format) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if admitted.mutation
        && let Some(refused) = csrf_refusal(&state, &headers)
    {
        return refused;
    }
    execute(&state, admitted, &headers, peer, format).await
}

/// POST /graphql with `multipart/form-data`: an `operations` part (one GraphQL request in
/// JSON), a `map` part, and at most one file of at most `avatar_max_bytes`. The body may exceed
/// that by `max_body_bytes` for the other parts and the framing.
async fn post_multipart(state: &HttpState, peer: SocketAddr, headers: &HeaderMap, body: Body) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if !bearer {
        return plain(StatusCode::BAD_REQUEST, "multipart requests need an Authorization: Bearer header");
    }
    let Some(format) = negotiate(headers) else {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let max_file = state.services.media.max_bytes();
    let bytes = match axum::body::to_bytes(body, max_file.saturating_add(state.max_body_bytes)).await {
        Ok(bytes) => bytes,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // Only a per-part cap: `max_num_files` would cap the whole stream (operations and map
    // included) at `max_file`, so the number of files is checked below instead.
    let options = MultipartOptions::default().max_file_size(max_file);
    let request = match receive_batch_body(content_type, &bytes[..], options).await {
        Ok(BatchRequest::Single(request)) => request,
        Ok(BatchRequest::Batch(_)) => return plain(StatusCode::BAD_REQUEST, "batched requests are not supported"),
        Err(ParseRequestError::PayloadTooLarge) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "the file is too large");
        }
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not a GraphQL multipart request"),
    };
    if request.uploads.len() > 1 {
        return plain(StatusCode::BAD_REQUEST, "send at most one file per request");
    }
    match admit(state, request, format) {
        Ok(admitted) => execute(state, admitted, headers, peer, format).await,
        Err(refused) => *refused,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    operation_name: Option<String>,
}

/// GET /graphql: GraphiQL for a browser without a query, else a query (never a mutation).
pub async fn get(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let Some(query) = params.query else {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        if wants_html && state.graphiql {
            return super::graphiql::page();
        }
        return plain(StatusCode::BAD_REQUEST, "missing query parameter");
    };
    if query.len() + params.variables.as_ref().map_or(0, String::len) > state.max_body_bytes {
        return plain(StatusCode::URI_TOO_LONG, "the query string is too large");
    }
    let Some(format) = negotiate(&headers) else {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let variables = match params.variables.as_deref().map(serde_json::from_str::<async_graphql::Variables>) {
        None => async_graphql::Variables::default(),
        Some(Ok(variables)) => variables,
        Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "variables must be a JSON object"),
    };
    let mut request = async_graphql::Request::new(query).variables(variables);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    let admitted = match admit(&state, request, format) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if admitted.mutation {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "mutations must be sent with POST");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, admitted, &headers, peer, format).await
}

/// Any other method on /graphql.
pub async fn method_not_allowed() -> Response {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET for queries or POST");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// Whether the operation a request would run is a mutation (or subscription).
fn is_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    document
        .operations
        .iter()
        .filter(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name)
        .any(|(_, op)| op.node.ty != OperationType::Query)
}

/// A request whose document passed [`admit`], parsed once for everything after.
struct Admitted {
    request: async_graphql::Request,
    /// Whether the operation to run writes (GET refuses those).
    mutation: bool,
    /// The first root field of the operation to run, for metrics and logs once validation has
    /// shown it is one of the schema's.
    root_field: String,
}

/// The name of the first root field of the operation a request would run.
fn root_field(document: &ExecutableDocument, operation_name: Option<&str>) -> String {
    let operation = document
        .operations
        .iter()
        .find(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name);
    let first = operation.and_then(|(_, op)| op.node.selection_set.node.items.first().map(|s| &s.node));
    match first {
        Some(Selection::Field(field)) => field.node.name.node.to_string(),
        Some(_) => "fragment".to_owned(),
        None => "invalid".to_owned(),
    }
}

/// Checks a request's document before the schema sees it: brackets nested too deeply are
/// refused before any parser runs (400, whatever the media type: no legitimate client sends
/// them), then the parsed document must stay within the depth limits and name only files the
/// request carries. The schema reuses the parsed document.
fn admit(state: &HttpState, mut request: async_graphql::Request, format: Format) -> Result<Admitted, Box<Response>> {
    let refuse = |code: &'static str, message: String| request_error(format, code, message, Vec::new());
    if let Err(e) = limits::check_nesting(&request.query) {
        return Err(Box::new(with_status(refuse(PARSE_FAILED, e.to_string()), StatusCode::BAD_REQUEST)));
    }
    let document = match state.documents.parse(&request.query) {
        Ok(document) => document,
        Err(e) => {
            let e = ServerError::from(e);
            return Err(Box::new(request_error(format, PARSE_FAILED, syntax_message(&e.message), e.locations)));
        }
    };
    match limits::check_depth(&document, state.depth_limits) {
        Err(e @ (ShapeError::TooDeep { .. } | ShapeError::TooManyAliases(_))) => {
            return Err(Box::new(refuse(errors::VALIDATION_FAILED, e.to_string())));
        }
        Err(e) => return Err(Box::new(with_status(refuse(PARSE_FAILED, e.to_string()), StatusCode::BAD_REQUEST))),
        Ok(()) => {}
    }
    if names_missing_upload(&request, &document) {
        return Err(Box::new(plain(StatusCode::BAD_REQUEST, "an Upload value must name a file sent with the request")));
    }
    let mutation = is_mutation(&document, request.operation_name.as_deref());
    let root_field = root_field(&document, request.operation_name.as_deref());
    request.set_parsed_query(document);
    Ok(Admitted { request, mutation, root_field })
}

/// The parser's own message draws the submitted text around the error; a client gets only the
/// sentence (the position travels in `locations`), so nothing it sent is echoed back.
fn syntax_message(drawn: &str) -> String {
    let sentence = drawn.lines().rev().find_map(|line| line.trim_start().strip_prefix("= ")).map(str::trim);
    match sentence {
        Some(sentence) if !sentence.is_empty() => format!("syntax error: {sentence}"),
        _ => "syntax error".to_owned(),
    }
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

/// A GraphQL answer for a request refused before execution.
fn request_error(format: Format, code: &'static str, message: String, locations: Vec<Pos>) -> Response {
    let mut error = ServerError::new(message, None);
    error.locations = locations;
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    render(format, async_graphql::Response::from_errors(vec![error]))
}

async fn execute(
    state: &HttpState,
    admitted: Admitted,
    headers: &HeaderMap,
    peer: SocketAddr,
    format: Format,
) -> Response {
    let started = std::time::Instant::now();
    let request = admitted.request;
    let cookies = state.services.cookies.read(headers);
    let viewer = resolve_viewer(state, headers, &cookies).await;
    if let Some(principal) = viewer.principal() {
        tracing::Span::current().record("user", tracing::field::display(principal.user_id));
    }
    let client = ClientInfo {
        ip: Some(state.proxies.client_ip(peer.ip(), headers)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
        locale: headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(ClientInfo::locale_from_accept_language),
    };
    let mut response = state.schema.execute(request.data(viewer).data(client).data(cookies)).await;
    errors::finalize(&mut response);
    observe(&admitted.root_field, &response, started.elapsed());
    render(format, response)
}

/// Counts the request (and a sign-in's outcome) and names it in the request's log span.
fn observe(root_field: &str, response: &async_graphql::Response, took: std::time::Duration) {
    let code = response.errors.first().and_then(|e| match e.extensions.as_ref()?.get("code")? {
        Value::String(code) => Some(code.as_str()),
        _ => None,
    });
    // A document that failed validation may name fields the schema lacks: never a label.
    let operation = if errors::is_request_error(response) { "invalid" } else { root_field };
    let outcome = code.unwrap_or("ok");
    let span = tracing::Span::current();
    span.record("operation", operation);
    span.record("outcome", outcome);
    let metrics = telemetry::metrics();
    let labels = RequestLabels { operation: operation.to_owned(), outcome: outcome.to_owned() };
    metrics.requests.get_or_create(&labels).inc();
    let labels = OperationLabels { operation: labels.operation };
    metrics.request_seconds.get_or_create(&labels).observe(took.as_secs_f64());
    if matches!(operation, "login" | "verifyOtp" | "socialAuth" | "requestPhoneLogin") {
        let outcome = code.map_or_else(|| "success".to_owned(), str::to_lowercase);
        metrics.logins.get_or_create(&LoginLabels { method: labels.operation, outcome }).inc();
    }
}

/// Serialises a GraphQL response in the negotiated format. A request error (nothing executed)
/// has no `data` entry (GraphQL spec, "Response Format"), and is a 400 under
/// `application/graphql-response+json`. A request that did nothing but hit rate limits is a 429
/// with `Retry-After` in either format (RFC 6585), so HTTP clients and proxies back off too; one
/// that did nothing because a shared part is down is a 503, so a load balancer can retry elsewhere.
fn render(format: Format, mut response: async_graphql::Response) -> Response {
    let request_error = errors::is_request_error(&response);
    let (status, media) = match format {
        Format::GraphqlResponseJson if request_error => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE_JSON),
        Format::GraphqlResponseJson => (StatusCode::OK, GRAPHQL_RESPONSE_JSON),
        Format::Json => (StatusCode::OK, APPLICATION_JSON),
    };
    let refusal = errors::only_refused(&response);
    let retry_after = match refusal {
        Some(Refusal::RateLimited { retry_after }) => Some(retry_after),
        _ => None,
    };
    // Headers resolvers set (token cookies).
    let set_headers = std::mem::take(&mut response.http_headers);
    let status = match refusal {
        Some(Refusal::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
        Some(Refusal::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
        None => status,
    };
    let body = if request_error {
        serde_json::to_value(&response).and_then(|mut value| {
            if let Some(object) = value.as_object_mut() {
                object.remove("data");
            }
            serde_json::to_vec(&value)
        })
    } else {
        serde_json::to_vec(&response)
    };
    match body {
        Ok(body) => {
            let mut response =
                (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], body).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            for (name, value) in set_headers.iter() {
                response.headers_mut().append(name, value.clone());
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a GraphQL response");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The placeholder async-graphql's multipart parser puts where a file goes, followed by the
/// file's index.
const UPLOAD_PLACEHOLDER: &str = "#__graphql_file__:";

/// Whether any string in the request's variables or document is an upload placeholder that
/// does not name a file the request carries. async-graphql's `Upload` trusts placeholders (a
/// forged one panics it), so only those its multipart parser wrote may reach execution.
fn names_missing_upload(request: &async_graphql::Request, document: &ExecutableDocument) -> bool {
    let files = request.uploads.len();
    let bad =
        |s: &str| s.strip_prefix(UPLOAD_PLACEHOLDER).is_some_and(|n| !n.parse::<usize>().is_ok_and(|i| i < files));
    if request.variables.values().any(|v| const_has(v, &bad)) {
        return true;
    }
    // Without a quote the document holds no string.
    if !request.query.contains('"') {
        return false;
    }
    let operations = document.operations.iter().any(|(_, op)| {
        op.node.variable_definitions.iter().any(|d| d.node.default_value().is_some_and(|v| const_has(v, &bad)))
            || directives_have(&op.node.directives, &bad)
            || selections_have(&op.node.selection_set.node, &bad)
    });
    operations
        || document
            .fragments
            .values()
            .any(|f| directives_have(&f.node.directives, &bad) || selections_have(&f.node.selection_set.node, &bad))
}

fn selections_have(set: &SelectionSet, bad: &impl Fn(&str) -> bool) -> bool {
    set.items.iter().any(|item| {
        directives_have(item.node.directives(), bad)
            || match &item.node {
                Selection::Field(field) => {
                    field.node.arguments.iter().any(|(_, v)| {
                        const_has(&v.node.clone().into_const_with(null_variable).unwrap_or_default(), bad)
                    }) || selections_have(&field.node.selection_set.node, bad)
                }
                Selection::InlineFragment(fragment) => selections_have(&fragment.node.selection_set.node, bad),
                Selection::FragmentSpread(_) => false,
            }
    })
}

fn directives_have(directives: &[Positioned<Directive>], bad: &impl Fn(&str) -> bool) -> bool {
    directives.iter().any(|d| {
        d.node
            .arguments
            .iter()
            .any(|(_, v)| const_has(&v.node.clone().into_const_with(null_variable).unwrap_or_default(), bad))
    })
}

/// Variables inside a document's literals read as null: their values are checked separately.
fn null_variable(_: Name) -> Result<Value, Infallible> {
    Ok(Value::Null)
}

fn const_has(value: &Value, bad: &impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => bad(s),
        Value::List(items) => items.iter().any(|v| const_has(v, bad)),
        Value::Object(fields) => fields.values().any(|v| const_has(v, bad)),
        _ => false,
    }
}

/// A mutation that rides on cookies (no `Authorization` header) must prove it comes from a page
/// of ours: an `Origin` (or `Sec-Fetch-Site`) that is this server or an allowed CORS origin,
/// and an `X-CSRF-Token` header equal to the signed CSRF cookie (OWASP CSRF Prevention Cheat
/// Sheet: signed double-submit cookie plus origin verification). The 403 answer when not.
fn csrf_refusal(state: &HttpState, headers: &HeaderMap) -> Option<Response> {
    let cookies = state.services.cookies.read(headers);
    if headers.contains_key(header::AUTHORIZATION) || !cookies.carry_credentials() {
        return None;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same_site = match origin {
        Some(origin) => origin == state.public_origin || state.cors_origins.iter().any(|allowed| allowed == origin),
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| site == "same-origin" || site == "none"),
    };
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let reason = if !same_site {
        "CSRF_ORIGIN"
    } else if presented.is_none() {
        "CSRF_TOKEN_MISSING"
    } else if !state.services.cookies.csrf_valid(presented, cookies.csrf.as_deref()) {
        "CSRF_TOKEN_INVALID"
    } else {
        return None;
    };
    let body = serde_json::json!({ "errors": [{
        "message": "a mutation authenticated by cookie needs a same-site origin and the X-CSRF-Token header",
        "extensions": { "code": "FORBIDDEN", "reason": reason },
    }] });
    Some(
        (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON))], body.to_string())
            .into_response(),
    )
}

/// The caller behind `Authorization: Bearer …`, else behind the access-token cookie. A store
/// failure refuses the token (fail closed).
async fn resolve_viewer(state: &HttpState, headers: &HeaderMap, cookies: &RequestCookies) -> Viewer {
    let token = match headers.get(header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim()),
        None => match cookies.access.as_deref() {
            Some(token) => Some(token),
            None => return Viewer::Anonymous,
        },
    };
    let Some(token) = token else { return Viewer::Rejected };
    match state.services.auth.authenticate(token).await {
        Ok((principal, account)) => Viewer::Authenticated(principal, Arc::new(account)),
        Err(crate::error::AppError::Internal(e) | crate::error::AppError::Unavailable(e)) => {
            tracing::error!(error = %e, "could not check an access token");
            Viewer::Unchecked
        }
        Err(_) => Viewer::Rejected,
    }
}
