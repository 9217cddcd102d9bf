//! Reading the audit log, and pruning it past the retention period.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    model::{AuditEvent, AuditFilter},
    repo,
};
use crate::{
    clock::Clock,
    error::{AppError, AppResult},
};

/// Largest page of events.
pub const MAX_PAGE: u64 = 100;

/// The audit log.
#[derive(Clone)]
pub struct AuditLog {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: Arc<dyn Clock>,
    /// Events older than this are pruned; None keeps them forever.
    pub(crate) retention: Option<Duration>,
}

impl AuditLog {
    /// The audit log, keeping events for the configured retention (forever when 0).
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, settings: &crate::config::Settings) -> Self {
        let days = settings.audit_retention_days;
        Self { db, clock, retention: (days > 0).then(|| Duration::from_secs(days * 24 * 3600)) }
    }

    /// A page of events, newest first.
    ///
    /// Errors: BAD_USER_INPUT (`first` out of 1..=100).
    pub async fn list(
        &self,
        filter: &AuditFilter,
        first: Option<i32>,
        after: Option<Uuid>,
    ) -> AppResult<(Vec<AuditEvent>, bool, u64)> {
        let first = first.unwrap_or(20);
        let limit = u64::try_from(first).ok().filter(|n| (1..=MAX_PAGE).contains(n));
        let limit = limit.ok_or_else(|| AppError::bad_input("first", "must be between 1 and 100"))?;
        repo::list(&self.db, filter, after, limit).await
    }

    /// Deletes events past the retention period; returns how many.
    pub async fn prune(&self) -> AppResult<u64> {
        let Some(retention) = self.retention else { return Ok(0) };
        let cutoff = self.clock.now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        repo::prune(&self.db, cutoff).await
    }

    /// Prunes once an hour for as long as the process runs (only with a retention period).
    pub fn spawn_pruning(&self) {
        if self.retention.is_none() {
            return;
        }
        let log = self.clone();
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                hourly.tick().await;
                match log.prune().await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old audit events pruned"),
                    Err(e) => tracing::error!(error = %e, "audit pruning failed"),
                }
            }
        });
    }
}
