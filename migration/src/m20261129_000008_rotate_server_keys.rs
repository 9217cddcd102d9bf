//! Signing keys rotate: a purpose may have several keys, numbered by `sequence` (the highest
//! live one is the newest), and a key can be retired. The first key of a purpose is sequence 1,
//! so instances starting together still agree on one (the unique pair decides).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("uq_server_keys_purpose").table(ServerKeys::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ServerKeys::Table)
                    .add_column(big_integer(ServerKeys::Sequence).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ServerKeys::Table)
                    .add_column(timestamp_with_time_zone_null(ServerKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_server_keys_purpose_sequence")
                    .table(ServerKeys::Table)
                    .col(ServerKeys::Purpose)
                    .col(ServerKeys::Sequence)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("uq_server_keys_purpose_sequence").table(ServerKeys::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(ServerKeys::Table).drop_column(ServerKeys::RetiredAt).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(ServerKeys::Table).drop_column(ServerKeys::Sequence).to_owned())
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
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Purpose,
    Sequence,
    RetiredAt,
}
