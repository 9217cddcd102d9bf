//! Server keys generated at first start when none is configured: the access-token signing key
//! and the secret that keys one-time-code hashes. Kept in the database so that every instance
//! and every restart uses the same ones. One key per purpose until key rotation arrives.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(string_len(ServerKeys::Id, 64).primary_key())
                    .col(string_len(ServerKeys::Purpose, 32))
                    .col(string_len(ServerKeys::Algorithm, 16))
                    .col(text(ServerKeys::Material))
                    .col(timestamp_with_time_zone(ServerKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_server_keys_purpose")
                    .table(ServerKeys::Table)
                    .col(ServerKeys::Purpose)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ServerKeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Id,
    Purpose,
    Algorithm,
    Material,
    CreatedAt,
}
