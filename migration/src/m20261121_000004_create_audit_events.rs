//! The audit log: one row per security-relevant event. `user_id` and `actor_id` carry no
//! foreign key on purpose: the trail keeps the ids of deleted accounts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(string_len(AuditEvents::Kind, 40))
                    .col(uuid_null(AuditEvents::UserId))
                    .col(uuid_null(AuditEvents::ActorId))
                    .col(string_len_null(AuditEvents::Ip, 64))
                    .col(string_len_null(AuditEvents::UserAgent, 512))
                    .col(text(AuditEvents::Detail))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_audit_events_created", AuditEvents::CreatedAt),
            ("ix_audit_events_user", AuditEvents::UserId),
            ("ix_audit_events_actor", AuditEvents::ActorId),
            ("ix_audit_events_kind", AuditEvents::Kind),
        ] {
            manager.create_index(Index::create().name(name).table(AuditEvents::Table).col(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditEvents::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Kind,
    UserId,
    ActorId,
    Ip,
    UserAgent,
    Detail,
    CreatedAt,
}
