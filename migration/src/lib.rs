//! Database migrations for idgate, applied in order at start (`idgate migrate` applies them
//! without serving). One reversible change per file; a landed migration is never edited, only
//! followed by a new one. Constraint names are stable because repos map them to client errors.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_users;
mod m20261121_000002_create_sessions;
mod m20261121_000003_create_server_keys;
mod m20261121_000004_create_audit_events;
mod m20261121_000005_index_users_for_listing;
mod m20261129_000006_create_kv_entries;
mod m20261129_000007_create_social_identities;
mod m20261129_000008_rotate_server_keys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_sessions::Migration),
            Box::new(m20261121_000003_create_server_keys::Migration),
            Box::new(m20261121_000004_create_audit_events::Migration),
            Box::new(m20261121_000005_index_users_for_listing::Migration),
            Box::new(m20261129_000006_create_kv_entries::Migration),
            Box::new(m20261129_000007_create_social_identities::Migration),
            Box::new(m20261129_000008_rotate_server_keys::Migration),
        ]
    }
}
