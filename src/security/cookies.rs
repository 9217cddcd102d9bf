//! Tokens in cookies, for browser clients that keep them out of JavaScript's reach, and the
//! double-submit CSRF token that cookie-authenticated mutations must carry.
//!
//! A client opts in per request with `X-Idgate-Token-Transport: cookie`; token-issuing
//! mutations then set the access token (HttpOnly, `Path=/`) and the refresh token (HttpOnly,
//! scoped to `/graphql`) as cookies and leave them out of the body, plus a readable CSRF cookie.
//! All are `SameSite=Lax`, `Secure` with the `__Host-` / `__Secure-` name prefixes unless
//! `IDGATE_INSECURE_COOKIES` (local http only), and live as long as their tokens
//! (OWASP Session Management and CSRF Prevention cheat sheets).
//!
//! The CSRF token is `<random>.<HMAC of it under the server's code secret>`: a subdomain that
//! plants its own cookie cannot make a valid one, and every instance checks it alike.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use cookie::{Cookie, SameSite};

use super::{
    codes::CodeHasher,
    crypto::{constant_time_eq, random_token},
};

/// The request header with which a browser client asks for cookies.
pub const TRANSPORT_HEADER: &str = "x-idgate-token-transport";
/// The request header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The path the refresh cookie is sent to.
const GRAPHQL_PATH: &str = "/graphql";
const CSRF_SCOPE: &str = "csrf";

/// The idgate cookies a request carried, and whether it asked for cookies in return.
#[derive(Debug, Clone, Default)]
pub struct RequestCookies {
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub csrf: Option<String>,
    /// `X-Idgate-Token-Transport: cookie` was sent.
    pub wants_cookies: bool,
}

impl RequestCookies {
    /// Whether the request carried a credential in a cookie (so a mutation needs CSRF proof).
    pub fn carry_credentials(&self) -> bool {
        self.access.is_some() || self.refresh.is_some()
    }
}

/// The cookies idgate sets.
#[derive(Clone, Copy)]
enum Which {
    Access,
    Refresh,
    Csrf,
}

/// Names, attributes and CSRF signing.
#[derive(Clone)]
pub struct CookieJar {
    secure: bool,
    access_ttl: Duration,
    refresh_ttl: Duration,
    signer: CodeHasher,
}

impl CookieJar {
    pub fn new(secure: bool, access_ttl: Duration, refresh_ttl: Duration, signer: CodeHasher) -> Self {
        Self { secure, access_ttl, refresh_ttl, signer }
    }

    /// A cookie's name. The refresh cookie is scoped to a path, which the `__Host-` prefix
    /// forbids.
    fn name(&self, which: Which) -> &'static str {
        match (self.secure, which) {
            (true, Which::Access) => "__Host-idgate-access",
            (true, Which::Refresh) => "__Secure-idgate-refresh",
            (true, Which::Csrf) => "__Host-idgate-csrf",
            (false, Which::Access) => "idgate-access",
            (false, Which::Refresh) => "idgate-refresh",
            (false, Which::Csrf) => "idgate-csrf",
        }
    }

    fn build(&self, which: Which, value: String, path: &'static str, http_only: bool, ttl: Duration) -> String {
        let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        Cookie::build((self.name(which), value))
            .path(path)
            .http_only(http_only)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(max_age)
            .build()
            .to_string()
    }

    /// `Set-Cookie` values for a fresh grant: access, refresh and a new CSRF token.
    pub fn grant(&self, access_token: &str, refresh_token: &str) -> Vec<String> {
        vec![
            self.build(Which::Access, access_token.to_owned(), "/", true, self.access_ttl),
            self.build(Which::Refresh, refresh_token.to_owned(), GRAPHQL_PATH, true, self.refresh_ttl),
            self.csrf().1,
        ]
    }

    /// A new CSRF token and the `Set-Cookie` value of its readable cookie.
    pub fn csrf(&self) -> (String, String) {
        let nonce = random_token();
        let token = format!("{nonce}.{}", self.signer.digest(CSRF_SCOPE, &nonce));
        let cookie = self.build(Which::Csrf, token.clone(), "/", false, self.refresh_ttl);
        (token, cookie)
    }

    /// `Set-Cookie` values that remove the token cookies (logout).
    pub fn cleared(&self) -> Vec<String> {
        vec![
            self.build(Which::Access, String::new(), "/", true, Duration::ZERO),
            self.build(Which::Refresh, String::new(), GRAPHQL_PATH, true, Duration::ZERO),
        ]
    }

    /// The idgate cookies of a request.
    pub fn read(&self, headers: &HeaderMap) -> RequestCookies {
        let mut found = RequestCookies {
            wants_cookies: headers
                .get(TRANSPORT_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("cookie")),
            ..RequestCookies::default()
        };
        let (access, refresh, csrf) = (self.name(Which::Access), self.name(Which::Refresh), self.name(Which::Csrf));
        let pairs = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
        for cookie in pairs.flat_map(Cookie::split_parse).filter_map(Result::ok) {
            let value = Some(cookie.value().to_owned()).filter(|v| !v.is_empty() && v.len() <= 4096);
            match cookie.name() {
                name if name == access => found.access = value,
                name if name == refresh => found.refresh = value,
                name if name == csrf => found.csrf = value,
                _ => {}
            }
        }
        found
    }

    /// Whether `presented` (the header) matches the CSRF cookie and carries our signature.
    pub fn csrf_valid(&self, presented: Option<&str>, cookie: Option<&str>) -> bool {
        let (Some(presented), Some(cookie)) = (presented, cookie) else { return false };
        let Some((nonce, signature)) = presented.split_once('.') else { return false };
        constant_time_eq(presented.as_bytes(), cookie.as_bytes()) && self.signer.matches(CSRF_SCOPE, nonce, signature)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use secrecy::SecretString;

    use super::*;

    fn jar(secure: bool) -> CookieJar {
        let signer = CodeHasher::new(SecretString::from("a test key of some length"));
        CookieJar::new(secure, Duration::from_secs(900), Duration::from_secs(3600), signer)
    }

    #[test]
    fn granted_cookies_are_http_only_secure_lax_prefixed_and_scoped() {
        let cookies = jar(true).grant("ACCESS", "REFRESH");
        assert!(cookies[0].starts_with("__Host-idgate-access=ACCESS"), "{}", cookies[0]);
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=900"] {
            assert!(cookies[0].contains(attribute), "{attribute} in {}", cookies[0]);
        }
        assert!(cookies[1].starts_with("__Secure-idgate-refresh=REFRESH") && cookies[1].contains("Path=/graphql"));
        assert!(cookies[2].starts_with("__Host-idgate-csrf=") && !cookies[2].contains("HttpOnly"), "{}", cookies[2]);
    }

    #[test]
    fn insecure_cookies_drop_secure_and_the_prefixes() {
        let cookies = jar(false).grant("A", "R");
        assert!(cookies[0].starts_with("idgate-access=A") && !cookies[0].contains("Secure"), "{}", cookies[0]);
    }

    #[test]
    fn a_csrf_token_is_valid_only_when_it_matches_its_cookie_and_our_signature() {
        let jar = jar(true);
        let (token, _) = jar.csrf();
        assert!(jar.csrf_valid(Some(&token), Some(&token)));
        assert!(!jar.csrf_valid(Some(&token), None));
        assert!(!jar.csrf_valid(None, Some(&token)));
        let forged = "nonce.0000";
        assert!(!jar.csrf_valid(Some(forged), Some(forged)), "a planted cookie without our signature");
        let (other, _) = jar.csrf();
        assert!(!jar.csrf_valid(Some(&token), Some(&other)));
    }

    #[test]
    fn request_cookies_are_read_by_name() {
        let jar = jar(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b; __Host-idgate-access=AT; __Host-idgate-csrf=C"));
        headers.insert(TRANSPORT_HEADER, HeaderValue::from_static("cookie"));
        let read = jar.read(&headers);
        assert_eq!(
            (read.access.as_deref(), read.refresh.as_deref(), read.csrf.as_deref()),
            (Some("AT"), None, Some("C"))
        );
        assert!(read.wants_cookies && read.carry_credentials());
    }
}
