//! Users: one row per account. Emails are stored normalized (lowercase), so the unique index is
//! case-insensitive; an account created from a phone number alone has none. A phone number is unique only once verified: an unverified claim on a number
//! must not block its owner, nor reveal that someone else typed it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_len_null(Users::Email, 254))
                    .col(string_len_null(Users::Username, 150))
                    .col(text_null(Users::PasswordHash))
                    .col(string_len_null(Users::FirstName, 150))
                    .col(string_len_null(Users::LastName, 150))
                    .col(string_len_null(Users::Phone, 16))
                    .col(date_null(Users::DateOfBirth))
                    .col(string_len_null(Users::Gender, 32))
                    .col(string_len_null(Users::Avatar, 255))
                    .col(string_len_null(Users::Locale, 16))
                    .col(string_len(Users::Role, 16).default("USER"))
                    .col(boolean(Users::IsActive).default(true))
                    .col(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                    .col(timestamp_with_time_zone_null(Users::PhoneVerifiedAt))
                    .col(integer(Users::FailedLoginCount).default(0))
                    .col(timestamp_with_time_zone_null(Users::LockedUntil))
                    .col(timestamp_with_time_zone_null(Users::LastLoginAt))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("uq_users_email").table(Users::Table).col(Users::Email).unique().to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("uq_users_username").table(Users::Table).col(Users::Username).unique().to_owned(),
            )
            .await?;
        // A partial index: sea-query's builder has no WHERE for indexes on every backend, and
        // this statement reads the same on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_users_verified_phone ON users (phone) \
                 WHERE phone_verified_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    Username,
    PasswordHash,
    FirstName,
    LastName,
    Phone,
    DateOfBirth,
    Gender,
    Avatar,
    Locale,
    Role,
    IsActive,
    EmailVerifiedAt,
    PhoneVerifiedAt,
    FailedLoginCount,
    LockedUntil,
    LastLoginAt,
    CreatedAt,
    UpdatedAt,
}
