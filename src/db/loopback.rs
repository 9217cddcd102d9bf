//! PostgreSQL on this host is reached without TLS unless its URL asks for TLS.
//!
//! sqlx, as libpq, defaults to `sslmode=prefer`: TLS whenever the server offers it, with no
//! check of its certificate. Over a loopback address that protects nothing (the bytes never
//! leave the host, and `prefer` never stopped an impostor anyway), and it is not free: under a
//! login flood on PostgreSQL + Redis (2 cores, the database on 127.0.0.1) PostgreSQL took 0.17
//! against 0.12 ms of CPU a login with and without it, idgate a little more, and the cores sat
//! idle a further 0.12 ms a login with it; the cores' share left for hashing rose by about a
//! point without it.
//!
//! So for a URL whose host is a loopback address or `localhost`, with no TLS option (`sslmode`,
//! `sslrootcert`, …; nor `host` or `hostaddr`, which may point elsewhere) in it and no
//! `PGSSLMODE` in the environment, idgate tries one connection with `sslmode=disable` at start
//! and keeps that mode if the server takes it. A server that refuses plaintext (`hostssl`
//! rules), or any other failure of that probe, leaves the URL as it was given.

use std::{net::IpAddr, str::FromStr, time::Duration};

use sea_orm::sqlx::{ConnectOptions as _, Connection as _, postgres::PgConnectOptions};

/// How long the probe may take before the URL is used as given.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL to connect to `url` with: see the module documentation.
pub async fn resolve_url(url: &str) -> String {
    let Some(plain) = plaintext_url(url, std::env::var_os("PGSSLMODE").is_some()) else { return url.to_owned() };
    let probe = async {
        let connection = PgConnectOptions::from_str(&plain)?.connect().await?;
        connection.close().await
    };
    // The error names the server's reason (a `hostssl` rule, a refused connection), never the
    // URL, which may hold a password.
    let failed = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => return plain,
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
    };
    tracing::info!(error = %failed, "PostgreSQL on this host took no connection without TLS: its URL is used as given");
    url.to_owned()
}

/// `url` with `sslmode=disable` when it names PostgreSQL on a loopback host and says nothing of
/// TLS (nor does `PGSSLMODE`, when `env_sslmode`); otherwise None.
fn plaintext_url(url: &str, env_sslmode: bool) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    if env_sslmode || !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    // A `postgres:` URL's host is opaque to the URL parser, so an address comes as a name.
    let loopback = match parsed.host()? {
        url::Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        url::Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
    };
    // Any TLS option (`sslrootcert`, `sslcert`, …) says the operator thought about TLS.
    let chosen = |key: &str| key.starts_with("ssl") || matches!(key, "host" | "hostaddr");
    if !loopback || parsed.query_pairs().any(|(key, _)| chosen(&key)) {
        return None;
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    Some(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_on_a_loopback_host_without_a_tls_choice_goes_plaintext() {
        let plain = |url| plaintext_url(url, false);
        assert_eq!(
            plain("postgres://postgres@127.0.0.1:5432/idgate").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/idgate?sslmode=disable")
        );
        assert_eq!(
            plain("postgresql://u:p%40ss@localhost/idgate?application_name=x").as_deref(),
            Some("postgresql://u:p%40ss@localhost/idgate?application_name=x&sslmode=disable")
        );
        assert!(plain("postgres://u@[::1]:5432/idgate").is_some_and(|url| url.ends_with("?sslmode=disable")));
        assert!(plain("postgres://u@127.8.9.10/idgate").is_some());
        // Another host, a TLS choice, a socket or address elsewhere, another database: as given.
        assert_eq!(plain("postgres://u@db.internal:5432/idgate"), None);
        assert_eq!(plain("postgres://u@10.0.0.5/idgate"), None);
        assert_eq!(plain("postgres://u@127.0.0.1/idgate?sslmode=require"), None);
        assert_eq!(plain("postgres://u@127.0.0.1/idgate?sslmode=prefer"), None);
        assert_eq!(plain("postgres://u@127.0.0.1/idgate?sslrootcert=/etc/ca.pem"), None);
        assert_eq!(plain("postgres://u@localhost/idgate?host=/var/run/postgresql"), None);
        assert_eq!(plain("postgres://u@localhost/idgate?hostaddr=10.0.0.5"), None);
        assert_eq!(plain("sqlite://idgate.db?mode=rwc"), None);
        assert_eq!(plaintext_url("postgres://u@127.0.0.1/idgate", true), None, "PGSSLMODE decides");
    }

    #[tokio::test]
    async fn a_probe_that_fails_leaves_the_url_as_given() {
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("postgres://postgres@127.0.0.1:{port}/idgate");
        assert_eq!(resolve_url(&url).await, url);
    }

    /// Whether a connection to `url` is encrypted, as the server sees it.
    async fn encrypted(url: &str) -> bool {
        let options = PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("{e}"));
        let mut connection = options.connect().await.unwrap_or_else(|e| panic!("{e}"));
        sea_orm::sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// On the PostgreSQL the suite runs against (when it is on this host), the resolved URL's
    /// connections have no TLS, where the URL as given has it if the server offers it.
    #[tokio::test]
    async fn postgres_on_this_host_is_reached_without_tls() {
        let Ok(url) = std::env::var("IDGATE_TEST_DATABASE_URL") else { return };
        if plaintext_url(&url, std::env::var_os("PGSSLMODE").is_some()).is_none() {
            return;
        }
        let resolved = resolve_url(&url).await;
        assert!(resolved.ends_with("sslmode=disable"), "{resolved}");
        assert!(!encrypted(&resolved).await);
        if !encrypted(&url).await {
            eprintln!("this PostgreSQL offers no TLS: the URL as given had none either");
        }
    }
}
