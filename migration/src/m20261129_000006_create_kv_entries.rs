//! The key-value table that holds ephemeral state (pending codes, link tokens, attempt and
//! rate-limit counters) when no Redis is configured, so that a restart or a crash loses
//! nothing a user was promised. Expiry is a Unix time in milliseconds: one integer compares the
//! same way on SQLite and PostgreSQL. The index serves the sweep of expired rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KvEntries::Table)
                    .col(text(KvEntries::Key).primary_key())
                    .col(text(KvEntries::Value))
                    .col(big_integer(KvEntries::ExpiresAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_kv_entries_expires_at_ms")
                    .table(KvEntries::Table)
                    .col(KvEntries::ExpiresAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(KvEntries::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum KvEntries {
    Table,
    Key,
    Value,
    ExpiresAtMs,
}
