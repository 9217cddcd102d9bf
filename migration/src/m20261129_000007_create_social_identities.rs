//! Social identities: one row per account at a sign-in provider, keyed by the provider and the
//! provider's own subject id (never by email, which providers let people change and reuse).
//! One identity per provider per account, so "unlink GitHub" names exactly one row.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialIdentities::Table)
                    .col(pk_uuid(SocialIdentities::Id))
                    .col(uuid(SocialIdentities::UserId))
                    .col(string_len(SocialIdentities::Provider, 32))
                    .col(string_len(SocialIdentities::Subject, 255))
                    .col(string_len_null(SocialIdentities::Email, 320))
                    .col(timestamp_with_time_zone(SocialIdentities::LinkedAt))
                    .col(timestamp_with_time_zone(SocialIdentities::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_identities_user")
                            .from(SocialIdentities::Table, SocialIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_social_identities_subject")
                    .table(SocialIdentities::Table)
                    .col(SocialIdentities::Provider)
                    .col(SocialIdentities::Subject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_social_identities_user_provider")
                    .table(SocialIdentities::Table)
                    .col(SocialIdentities::UserId)
                    .col(SocialIdentities::Provider)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SocialIdentities::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SocialIdentities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    Email,
    LinkedAt,
    LastUsedAt,
}
