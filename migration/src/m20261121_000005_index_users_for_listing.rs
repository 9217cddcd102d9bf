//! Indexes for the admin user directory, so a page stays an index range at any depth and size.
//! Each ordering ends in the id (the tiebreaker of every keyset), and each serves both
//! directions; rows without a value (no email, never logged in) are read as their own range of
//! the same index (`column IS NULL`, by id).
//!
//! - `(created_at, id)`: the default order, and `createdAfter`/`createdBefore`.
//! - `(email, id)`: ordering by email, byte-wise (`COLLATE "C"` on PostgreSQL, whatever the
//!   database's locale; SQLite compares bytes already). The unique email index stays as is.
//! - `(last_login_at, id)`: ordering by last login.
//! - `(role, created_at, id)` and `(is_active, created_at, id)`: the role and active filters in
//!   the default order, and counting them, without sorting.
//!
//! The search filter (a substring anywhere in four columns) has no portable index; it reads the
//! rows in order until a page is full.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Index names with their columns (as SQL, the same on both databases except the email
/// collation).
const INDEXES: [(&str, &str); 5] = [
    ("ix_users_created_at_id", "created_at, id"),
    ("ix_users_email_id", "email{collate}, id"),
    ("ix_users_last_login_at_id", "last_login_at, id"),
    ("ix_users_role_created_at_id", "role, created_at, id"),
    ("ix_users_is_active_created_at_id", "is_active, created_at, id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let collate = match manager.get_database_backend() {
            DatabaseBackend::Postgres => r#" COLLATE "C""#,
            _ => "",
        };
        let db = manager.get_connection();
        for (name, columns) in INDEXES {
            let columns = columns.replace("{collate}", collate);
            db.execute_unprepared(&format!("CREATE INDEX {name} ON users ({columns})")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager.drop_index(Index::drop().name(name).table(Users::Table).to_owned()).await?;
        }
        Ok(())
    }
}
