//! The database connection: connect (creating the SQLite file if needed), migrate, and the
//! translation of constraint violations that every repo shares.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

use crate::error::{AppError, AppResult};

/// Connects to `url` with at most `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> AppResult<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // SQLite serialises writers; one connection avoids "database is locked" under load
        // while WAL keeps readers cheap.
        options.max_connections(1).min_connections(1);
    }
    let db = Database::connect(options).await.map_err(AppError::internal)?;
    if url.starts_with("sqlite:") {
        use sea_orm::ConnectionTrait;
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000"] {
            db.execute_unprepared(pragma).await.map_err(AppError::internal)?;
        }
    }
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> AppResult<()> {
    Migrator::up(db, None).await.map_err(AppError::internal)
}

/// The violated unique constraint's description (names the index on PostgreSQL, the column on
/// SQLite), if `err` is a unique violation.
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) => Some(detail),
        _ => None,
    }
}
