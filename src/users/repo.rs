//! User rows <-> domain users. Unique violations become CONFLICT naming the field; `DbErr`
//! never leaves this file.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    QueryTrait, Select,
};
use uuid::Uuid;

use crate::domain::{Gender, ProfileChanges, Role, User, UserId};
use crate::{
    db::{ModelColumns, Reader, Template, unique_row, unique_violation},
    entity::users,
    error::{AppError, AppResult},
};

/// A user together with the stored password hash, for the login check only.
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
}

pub fn to_user(row: users::Model) -> User {
    User {
        id: UserId(row.id),
        email: row.email,
        username: row.username,
        first_name: row.first_name,
        last_name: row.last_name,
        phone: row.phone,
        date_of_birth: row.date_of_birth,
        gender: row.gender.as_deref().and_then(Gender::from_db),
        avatar: row.avatar,
        locale: row.locale,
        role: Role::from_db(&row.role),
        is_active: row.is_active,
        email_verified_at: row.email_verified_at,
        phone_verified_at: row.phone_verified_at,
        last_login_at: row.last_login_at,
        locked_until: row.locked_until,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Inserts `user` (a [`User::draft`]) with its password hash.
///
/// Errors: CONFLICT on `email` or `username` when taken.
pub async fn insert(db: &impl ConnectionTrait, user: &User, password_hash: Option<String>) -> AppResult<User> {
    let row = users::Model {
        id: user.id.0,
        email: user.email.clone(),
        username: user.username.clone(),
        password_hash,
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        phone: user.phone.clone(),
        date_of_birth: user.date_of_birth,
        gender: user.gender.map(|g| g.as_str().to_owned()),
        avatar: user.avatar.clone(),
        locale: user.locale.clone(),
        role: user.role.as_str().to_owned(),
        is_active: user.is_active,
        email_verified_at: user.email_verified_at,
        phone_verified_at: user.phone_verified_at,
        failed_login_count: 0,
        locked_until: user.locked_until,
        last_login_at: user.last_login_at,
        created_at: user.created_at,
        updated_at: user.updated_at,
    };
    let active: users::ActiveModel = row.into();
    let inserted = active.insert(db).await.map_err(|e| match unique_violation(&e) {
        Some(detail) if detail.contains("username") => AppError::Conflict { field: "username" },
        Some(detail) if detail.contains("email") => AppError::Conflict { field: "email" },
        Some(_) => AppError::Conflict { field: "phone" },
        None => AppError::internal(e),
    })?;
    Ok(to_user(inserted))
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: UserId) -> AppResult<Option<User>> {
    Ok(unique_row(users::Entity::find_by_id(id.0), db).await?.map(to_user))
}

pub async fn find_credentials(db: &impl ConnectionTrait, email: &str) -> AppResult<Option<Credentials>> {
    Ok(unique_row(by_email(email), db).await?.map(credentials))
}

/// [`find_credentials`] on the held connections of every request's path (a login's lookup).
pub async fn read_credentials(reader: &Reader, email: &str) -> AppResult<Option<Credentials>> {
    static COLUMNS: LazyLock<ModelColumns<users::Entity>> = LazyLock::new(|| ModelColumns::with(&[]));
    // Every login runs it: rendered once per backend, not built with sea-query each time.
    static BY_EMAIL: Template<1> = Template::new(
        || ["\u{0}idgate: an email no account has".into()],
        |backend, [email]| users::Entity::find().filter(users::Column::Email.eq(email)).build(backend),
    );
    let rows = reader.models(BY_EMAIL.bind(reader.backend(), [email.into()])?, &COLUMNS).await?;
    Ok(rows.into_iter().next().map(|(row, _)| credentials(row)))
}

fn by_email(email: &str) -> Select<users::Entity> {
    users::Entity::find().filter(users::Column::Email.eq(email))
}

fn credentials(row: users::Model) -> Credentials {
    let password_hash = row.password_hash.clone();
    Credentials { user: to_user(row), password_hash }
}

/// Whether an account has `email` (stored lowercased, as `Email` parses it).
pub async fn email_taken(db: &impl ConnectionTrait, email: &str) -> AppResult<bool> {
    let found = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Email.eq(email))
        .into_tuple::<Uuid>()
        .one(db)
        .await
        .map_err(AppError::internal)?;
    Ok(found.is_some())
}

pub async fn username_taken(db: &impl ConnectionTrait, username: &str) -> AppResult<bool> {
    let found =
        users::Entity::find().filter(users::Column::Username.eq(username)).one(db).await.map_err(AppError::internal)?;
    Ok(found.is_some())
}

/// Locks the account until `until`, or unlocks it (None).
pub async fn set_locked_until(
    db: &impl ConnectionTrait,
    id: UserId,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        locked_until: Set(until),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// Stamps a successful login.
pub async fn record_login(db: &impl ConnectionTrait, id: UserId, now: DateTime<Utc>) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        last_login_at: Set(Some(now)),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// Sets the role of an existing user.
pub async fn set_role(db: &impl ConnectionTrait, id: UserId, role: Role, now: DateTime<Utc>) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        role: Set(role.as_str().to_owned()),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// The active account whose verified phone is `phone`.
pub async fn find_by_verified_phone(db: &impl ConnectionTrait, phone: &str) -> AppResult<Option<User>> {
    let row = users::Entity::find()
        .filter(users::Column::Phone.eq(phone))
        .filter(users::Column::PhoneVerifiedAt.is_not_null())
        .one(db)
        .await
        .map_err(AppError::internal)?;
    Ok(row.map(to_user))
}

/// Creates an account from a proven phone number: no email, no password.
///
/// Errors: CONFLICT (`phone`) when another account verified the number first.
pub async fn insert_phone_user(db: &impl ConnectionTrait, phone: &str, now: DateTime<Utc>) -> AppResult<User> {
    let user = User { phone: Some(phone.to_owned()), phone_verified_at: Some(now), ..blank(now) };
    insert(db, &user, None).await
}

/// Inserts the account of a first social sign-in: no password; the address (when the provider
/// vouched for it) verified now.
///
/// Errors: CONFLICT (`email`) when another account has the address.
pub async fn insert_social_user(
    db: &impl ConnectionTrait,
    email: Option<&str>,
    first_name: Option<String>,
    last_name: Option<String>,
    now: DateTime<Utc>,
) -> AppResult<User> {
    let user = User {
        email: email.map(str::to_owned),
        email_verified_at: email.map(|_| now),
        first_name,
        last_name,
        ..blank(now)
    };
    insert(db, &user, None).await
}

/// An active user with nothing but an id, created now.
fn blank(now: DateTime<Utc>) -> User {
    User {
        id: UserId(Uuid::now_v7()),
        email: None,
        username: None,
        first_name: None,
        last_name: None,
        phone: None,
        date_of_birth: None,
        gender: None,
        avatar: None,
        locale: None,
        role: Role::User,
        is_active: true,
        email_verified_at: None,
        phone_verified_at: None,
        last_login_at: None,
        locked_until: None,
        created_at: now,
        updated_at: now,
    }
}

/// Reads a user and, on PostgreSQL, locks the row until `txn` ends, so that rules about what
/// an account keeps (its last way to sign in) hold against concurrent changes. SQLite
/// serializes writers anyway.
pub async fn lock(txn: &impl ConnectionTrait, id: UserId) -> AppResult<Option<Credentials>> {
    let row = users::Entity::find_by_id(id.0).lock_exclusive().one(txn).await.map_err(AppError::internal)?;
    Ok(row.map(|row| Credentials { password_hash: row.password_hash.clone(), user: to_user(row) }))
}

/// The stored password hash of a user.
pub async fn password_hash(db: &impl ConnectionTrait, id: UserId) -> AppResult<Option<String>> {
    let row = users::Entity::find_by_id(id.0).one(db).await.map_err(AppError::internal)?;
    Ok(row.and_then(|r| r.password_hash))
}

/// Sets the email (verified now): a first verification, or a verified change of address.
///
/// Errors: CONFLICT (`email`) when another account has the address.
pub async fn set_verified_email(
    db: &impl ConnectionTrait,
    id: UserId,
    email: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        email: Set(Some(email.to_owned())),
        email_verified_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(|e| match unique_violation(&e) {
        Some(_) => AppError::Conflict { field: "email" },
        None => AppError::internal(e),
    })
}

/// Sets the phone (verified now).
///
/// Errors: CONFLICT (`phone`) when another account verified the number.
pub async fn set_verified_phone(
    db: &impl ConnectionTrait,
    id: UserId,
    phone: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        phone: Set(Some(phone.to_owned())),
        phone_verified_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(|e| match unique_violation(&e) {
        Some(_) => AppError::Conflict { field: "phone" },
        None => AppError::internal(e),
    })
}

/// Replaces the password hash.
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: UserId,
    hash: String,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        password_hash: Set(Some(hash)),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// Replaces the password hash `old` with `new`, only while `old` is still the stored one (so a
/// password changed meanwhile is kept); whether it did. Changes nothing else: a rehash of the
/// same password is no change to the account.
pub async fn replace_password_hash(db: &impl ConnectionTrait, id: UserId, old: &str, new: String) -> AppResult<bool> {
    let result = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, sea_orm::sea_query::Expr::value(new))
        .filter(users::Column::Id.eq(id.0))
        .filter(users::Column::PasswordHash.eq(old))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(result.rows_affected == 1)
}

/// Removes every way but the email to sign in: the password and the phone. For an account
/// taken over by the proven owner of its address (see `identities::link_proven`).
pub async fn clear_credentials(db: &impl ConnectionTrait, id: UserId, now: DateTime<Utc>) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        password_hash: Set(None),
        phone: Set(None),
        phone_verified_at: Set(None),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// Saves profile changes; a changed phone is stored unverified.
///
/// Errors: CONFLICT (`username`).
pub async fn update_profile(
    db: &impl ConnectionTrait,
    id: UserId,
    changes: &ProfileChanges,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut row =
        users::ActiveModel { id: sea_orm::ActiveValue::Unchanged(id.0), updated_at: Set(now), ..Default::default() };
    if let Some(username) = &changes.username {
        row.username = Set(username.as_ref().map(|u| u.as_str().to_owned()));
    }
    if let Some(name) = &changes.first_name {
        row.first_name = Set(name.as_ref().map(|n| n.as_str().to_owned()));
    }
    if let Some(name) = &changes.last_name {
        row.last_name = Set(name.as_ref().map(|n| n.as_str().to_owned()));
    }
    if let Some(date) = &changes.date_of_birth {
        row.date_of_birth = Set(date.map(|d| d.date()));
    }
    if let Some(gender) = &changes.gender {
        row.gender = Set(gender.map(|g| g.as_str().to_owned()));
    }
    if let Some(locale) = &changes.locale {
        row.locale = Set(locale.as_ref().map(|l| l.as_str().to_owned()));
    }
    if let Some(phone) = &changes.phone {
        row.phone = Set(phone.as_ref().map(|p| p.as_str().to_owned()));
        row.phone_verified_at = Set(None);
    }
    row.update(db).await.map(drop).map_err(|e| match unique_violation(&e) {
        Some(_) => AppError::Conflict { field: "username" },
        None => AppError::internal(e),
    })
}

/// Activates or deactivates an account.
pub async fn set_active(db: &impl ConnectionTrait, id: UserId, active: bool, now: DateTime<Utc>) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        is_active: Set(active),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(AppError::internal)
}

/// Sets the email and its verification time directly (an admin's edit).
///
/// Errors: CONFLICT (`email`).
pub async fn set_email(
    db: &impl ConnectionTrait,
    id: UserId,
    email: &str,
    verified_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = users::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.0),
        email: Set(Some(email.to_owned())),
        email_verified_at: Set(verified_at),
        updated_at: Set(now),
        ..Default::default()
    };
    row.update(db).await.map(drop).map_err(|e| match unique_violation(&e) {
        Some(_) => AppError::Conflict { field: "email" },
        None => AppError::internal(e),
    })
}

/// The stored avatar file name of a user.
pub async fn avatar_of(db: &impl ConnectionTrait, id: UserId) -> AppResult<Option<String>> {
    let row = users::Entity::find_by_id(id.0).one(db).await.map_err(AppError::internal)?;
    Ok(row.and_then(|r| r.avatar))
}

/// Deletes a user row; sessions go with it (foreign key cascade).
pub async fn delete(db: &impl ConnectionTrait, id: UserId) -> AppResult<()> {
    users::Entity::delete_by_id(id.0).exec(db).await.map(drop).map_err(AppError::internal)
}

/// Active superusers, for the rule that one must remain. The rows are locked (FOR UPDATE on
/// PostgreSQL; SQLite serialises writers anyway), so two superusers deactivating each other at
/// once cannot both succeed.
pub async fn count_active_superusers(db: &impl ConnectionTrait) -> AppResult<u64> {
    use sea_orm::QuerySelect;
    let ids: Vec<Uuid> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Role.eq(Role::Superuser.as_str()))
        .filter(users::Column::IsActive.eq(true))
        .lock_exclusive()
        .into_tuple()
        .all(db)
        .await
        .map_err(AppError::internal)?;
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use sea_orm::{ConnectionTrait as _, DbBackend};

    use super::*;
    use crate::db;

    /// A fresh SQLite file, and a new database on the PostgreSQL server that
    /// IDGATE_TEST_DATABASE_URL names, if it names one (named `idgate_test_…`, as the API tests'
    /// are, so that `.ci/run` drops it with theirs).
    async fn databases(dir: &tempfile::TempDir) -> Vec<(String, DbBackend)> {
        let mut databases =
            vec![(format!("sqlite://{}?mode=rwc", dir.path().join("users.db").display()), DbBackend::Sqlite)];
        if let Ok(base) = std::env::var("IDGATE_TEST_DATABASE_URL") {
            let name = format!("idgate_test_users_{}", Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&base).await.unwrap_or_else(|e| panic!("{e}"));
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| panic!("{e}"));
            let (server, _) = base.rsplit_once('/').unwrap_or((&base, ""));
            databases.push((format!("{server}/{name}"), DbBackend::Postgres));
        }
        databases
    }

    /// The reader of every request's path decodes rows itself on SQLite (`db::Reader`): every
    /// column of an account, set and unset, reads back as sea-orm reads it.
    #[tokio::test]
    async fn an_account_reads_back_as_sea_orm_reads_it() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        for (url, backend) in databases(&dir).await {
            db::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
            let db = db::connect(&url, 1).await.unwrap_or_else(|e| panic!("{e:?}"));
            let reader = Reader::new(&url, backend, 1).unwrap_or_else(|e| panic!("{e:?}"));
            let now = Utc::now();
            let full = users::ActiveModel {
                id: Set(Uuid::new_v4()),
                email: Set(Some(format!("{}@example.com", Uuid::new_v4()))),
                username: Set(Some(format!("r{}", Uuid::new_v4().simple()))),
                password_hash: Set(Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into())),
                first_name: Set(Some("Zoë".into())),
                last_name: Set(Some("O'Brien".into())),
                phone: Set(Some("+34600000000".into())),
                date_of_birth: Set(NaiveDate::from_ymd_opt(1990, 2, 28)),
                gender: Set(Some("FEMALE".into())),
                avatar: Set(Some("avatars/a.png".into())),
                locale: Set(Some("es".into())),
                role: Set("ADMIN".into()),
                is_active: Set(false),
                email_verified_at: Set(Some(now)),
                phone_verified_at: Set(Some(now - chrono::Duration::days(1))),
                failed_login_count: Set(3),
                locked_until: Set(Some(now + chrono::Duration::minutes(15))),
                last_login_at: Set(Some(now - chrono::Duration::hours(2))),
                created_at: Set(now - chrono::Duration::days(30)),
                updated_at: Set(now),
            };
            let sparse = users::ActiveModel {
                id: Set(Uuid::new_v4()),
                email: Set(None),
                username: Set(None),
                password_hash: Set(None),
                first_name: Set(None),
                last_name: Set(None),
                phone: Set(None),
                date_of_birth: Set(None),
                gender: Set(None),
                avatar: Set(None),
                locale: Set(None),
                role: Set("USER".into()),
                is_active: Set(true),
                email_verified_at: Set(None),
                phone_verified_at: Set(None),
                failed_login_count: Set(0),
                locked_until: Set(None),
                last_login_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            };
            for row in [full, sparse] {
                let written = row.insert(&db).await.unwrap_or_else(|e| panic!("{e}"));
                let select = users::Entity::find_by_id(written.id);
                let by_sea_orm = select.clone().one(&db).await.unwrap_or_else(|e| panic!("{e}"));
                let read = reader.models(select.build(backend), &ModelColumns::<users::Entity>::with(&[])).await;
                let read: Vec<_> =
                    read.unwrap_or_else(|e| panic!("{e:?}")).into_iter().map(|(model, _)| model).collect();
                assert_eq!(read, by_sea_orm.into_iter().collect::<Vec<_>>(), "{backend:?}");
                assert_eq!(read.first(), Some(&written), "{backend:?}");
            }
        }
    }
}
