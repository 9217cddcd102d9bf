//! The one bootstrap path: settings -> database (migrated), KV, mailer, clock, keys -> services
//! -> schema -> HTTP service. `main` and every test go through [`App::build`].

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::net::TcpListener;

use crate::{
    clock::{Clock, SystemClock},
    config::Settings,
    error::{AppError, AppResult},
    graphql::limits::DepthLimits,
    http::{self, HttpState, client_ip::TrustedProxies},
    schema::{self, IdgateSchema},
    services::Services,
};

/// A built application, bound to its port and ready to serve.
pub struct App {
    listener: TcpListener,
    http: HttpState,
    shutdown_grace: Duration,
    shutdown_delay: Duration,
    /// Set when a stop begins: /readyz answers 503 from then on.
    stopping: Arc<AtomicBool>,
}

impl App {
    /// Builds the application on the system clock.
    pub async fn build(settings: Settings) -> AppResult<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the application on the given clock (a manual clock lets tests move time).
    pub async fn build_with_clock(mut settings: Settings, clock: Arc<dyn Clock>) -> AppResult<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| AppError::internal(format!("cannot listen on {}: {e}", settings.listen)))?;
        if settings.public_url_from_listen {
            let bound = listener.local_addr().map_err(AppError::internal)?;
            settings.use_listen_address(bound);
        }
        let services = Services::build(&settings, clock).await?;
        services.audit.spawn_pruning();
        let schema: IdgateSchema = schema::build_schema(services.clone(), &settings);
        if let Some(address) = settings.metrics_listen {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|e| AppError::internal(format!("cannot listen on {address} for metrics: {e}")))?;
            tracing::info!(%address, "metrics are served at /metrics");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, http::metrics_router()).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let http = HttpState {
            stopping: Arc::clone(&stopping),
            schema,
            services,
            max_body_bytes: settings.max_body_bytes,
            documents: Arc::default(),
            depth_limits: DepthLimits::from_settings(&settings),
            graphiql: settings.graphiql_enabled(),
            proxies: TrustedProxies::new(settings.trusted_proxy_list().unwrap_or_default()),
            public_origin: url::Url::parse(settings.issuer())
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_default(),
            cors_origins: settings.cors_origin_list().into_iter().filter_map(|o| o.parse().ok()).collect(),
            jwks_max_age: settings.key_refresh_secs,
            introspection_secret: settings.introspection_secret.clone(),
            issuer: settings.issuer().to_owned(),
            metrics_token: settings.metrics_token.clone(),
        };
        Ok(Self {
            listener,
            http,
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
            shutdown_delay: settings.shutdown_delay(),
            stopping,
        })
    }

    /// The bound port (useful when listening on port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests (bounded by the
    /// shutdown grace period).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops as a load balancer needs: /readyz turns 503 at
    /// once while everything else is still served for the shutdown delay (traffic moves away),
    /// then new connections are refused and in-flight requests get the grace period to finish.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.shutdown_grace;
        let delay = self.shutdown_delay;
        let stopping = self.stopping;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
            http::service(self.http),
        );
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            stop.await;
            stopping.store(true, Ordering::SeqCst);
            if !delay.is_zero() {
                tracing::info!(seconds = delay.as_secs(), "stopping: /readyz reports unready; still serving");
                tokio::time::sleep(delay).await;
            }
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        });
        let drained = async {
            // Once stopping, in-flight requests get `grace` to finish.
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result,
            () = http::tick_under_request_timeouts() => Ok(()),
            () = drained => {
                tracing::warn!("shutdown grace period over; dropping remaining requests");
                Ok(())
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
