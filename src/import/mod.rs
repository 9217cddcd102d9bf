//! Moving users in from a Django project (`idgate import-users`): [`read`] reads the export,
//! [`map`] turns each user into an account through the domain parsers, and [`run`] creates the
//! accounts. Its rules:
//!
//! - All or nothing: every account and its audit event (`USER_CREATED`, detail `{"source":
//!   "django_import"}`) are written in one transaction, committed at the end; a dry run reads
//!   the same way and writes nothing.
//! - Idempotent: accounts are matched by email; one that exists is left untouched and counted
//!   as already present, so running the same file again creates nothing.
//! - A bad row (unreadable, no email, a field its parser refuses, an email or username taken
//!   by an earlier row or, for the username, by another account) is reported at its position
//!   and skipped.
//! - Imported addresses count as verified: they were the accounts' identities in Django.
//!   Password hashes idgate can verify are stored as Django wrote them (see
//!   `security::django_hashes`) and replaced by argon2id at the account's first login.

pub mod map;
pub mod read;

use std::{collections::HashMap, fmt};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use self::{
    map::ImportedUser,
    read::{Position, Row},
};
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    domain::{Role, User, UserId},
    error::{AppError, AppResult},
    users::repo as users,
};

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Validate and count, write nothing.
    pub dry_run: bool,
    /// The role of Django staff (`is_staff`) who are not superusers.
    pub staff_role: Role,
}

/// A skipped row and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub position: Position,
    pub reason: String,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Rows (CSV records, JSON entries) in the file.
    pub read: usize,
    /// Accounts created.
    pub imported: usize,
    /// Rows whose email already had an account (left as it was).
    pub already_present: usize,
    /// Accounts created without a password: Django's hash was unusable or not one idgate
    /// verifies. They sign in after a password reset (or with a provider).
    pub without_password: usize,
    pub bad_rows: Vec<BadRow>,
}

impl fmt::Display for ImportReport {
    /// The bad rows, one a line, then the counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for bad in &self.bad_rows {
            writeln!(f, "{}: {}", bad.position, bad.reason)?;
        }
        let verb = if self.dry_run { "would be imported" } else { "imported" };
        writeln!(f, "read: {}", self.read)?;
        writeln!(f, "{verb}: {}", self.imported)?;
        writeln!(f, "already present: {}", self.already_present)?;
        writeln!(f, "without usable password: {}", self.without_password)?;
        write!(f, "bad rows: {}", self.bad_rows.len())?;
        if self.dry_run {
            write!(f, "\ndry run: nothing was written")?;
        }
        Ok(())
    }
}

/// Creates the accounts of `rows` as the module header says, at `now`.
///
/// Errors: CONFLICT when another process created an account with one of the emails or
/// usernames during the import (nothing is written then: run it again); INTERNAL on database
/// failures (nothing is written either).
pub async fn run(
    db: &DatabaseConnection,
    rows: Vec<Row>,
    options: ImportOptions,
    now: DateTime<Utc>,
) -> AppResult<ImportReport> {
    let mut report = ImportReport { dry_run: options.dry_run, read: rows.len(), ..ImportReport::default() };
    let accepted = accept(rows, options.staff_role, &mut report.bad_rows);
    let txn = db.begin().await.map_err(AppError::internal)?;
    for (position, user) in accepted {
        if users::email_taken(&txn, user.email.as_str()).await? {
            report.already_present += 1;
            continue;
        }
        if let Some(username) = &user.username
            && users::username_taken(&txn, username.as_str()).await?
        {
            report.bad_rows.push(BadRow { position, reason: "username is taken by another account".to_owned() });
            continue;
        }
        if !options.dry_run {
            let created = users::insert(&txn, &account(&user, now), user.password_hash.clone()).await?;
            let event = NewAuditEvent::new(AuditKind::UserCreated, now)
                .user(created.id)
                .detail(json!({ "source": "django_import" }));
            audit::record(&txn, event).await?;
        }
        report.imported += 1;
        report.without_password += usize::from(user.password_hash.is_none());
    }
    if options.dry_run {
        txn.rollback().await.map_err(AppError::internal)?;
    } else {
        txn.commit().await.map_err(AppError::internal)?;
    }
    report.bad_rows.sort_by_key(|bad| order(bad.position));
    Ok(report)
}

/// The rows that map to accounts, in file order; the first row with an email or username wins
/// and later ones are bad rows, so the outcome never depends on what is already stored.
fn accept(rows: Vec<Row>, staff_role: Role, bad_rows: &mut Vec<BadRow>) -> Vec<(Position, ImportedUser)> {
    let mut emails: HashMap<String, Position> = HashMap::new();
    let mut usernames: HashMap<String, Position> = HashMap::new();
    let mut accepted = Vec::new();
    for Row { position, user } in rows {
        let mapped = user.and_then(|user| map::map(user, staff_role));
        let user = match mapped {
            Ok(user) => user,
            Err(reason) => {
                bad_rows.push(BadRow { position, reason });
                continue;
            }
        };
        let earlier =
            emails.get(user.email.as_str()).map(|first| format!("has the same email as {first}")).or_else(|| {
                let username = user.username.as_ref()?;
                usernames.get(username.as_str()).map(|first| format!("has the same username as {first}"))
            });
        if let Some(reason) = earlier {
            bad_rows.push(BadRow { position, reason });
            continue;
        }
        emails.insert(user.email.as_str().to_owned(), position);
        if let Some(username) = &user.username {
            usernames.insert(username.as_str().to_owned(), position);
        }
        accepted.push((position, user));
    }
    accepted
}

/// File order of positions (all of one kind in one file).
fn order(position: Position) -> u64 {
    match position {
        Position::Line(line) => line,
        Position::Entry(index) => index as u64,
    }
}

/// The account of an imported user: its address verified now, joined when Django says.
fn account(user: &ImportedUser, now: DateTime<Utc>) -> User {
    User {
        id: UserId(Uuid::now_v7()),
        email: Some(user.email.as_str().to_owned()),
        username: user.username.as_ref().map(|u| u.as_str().to_owned()),
        first_name: user.first_name.as_ref().map(|n| n.as_str().to_owned()),
        last_name: user.last_name.as_ref().map(|n| n.as_str().to_owned()),
        phone: None,
        date_of_birth: None,
        gender: None,
        avatar: None,
        locale: None,
        role: user.role,
        is_active: user.is_active,
        email_verified_at: Some(now),
        phone_verified_at: None,
        last_login_at: user.last_login_at,
        locked_until: None,
        created_at: user.joined_at.unwrap_or(now),
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::{read::DjangoUser, *};

    fn row(position: Position, email: &str, username: &str) -> Row {
        let user = DjangoUser {
            email: email.to_owned(),
            username: username.to_owned(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: String::new(),
            last_login: String::new(),
            password: String::new(),
        };
        Row { position, user: Ok(user) }
    }

    #[test]
    fn the_first_row_with_an_email_or_username_wins_and_later_ones_are_bad_rows() {
        let rows = vec![
            row(Position::Line(2), "a@example.com", "ann"),
            row(Position::Line(3), "A@Example.com", "other"),
            row(Position::Line(4), "b@example.com", "ANN"),
            row(Position::Line(5), "c@example.com", ""),
            Row { position: Position::Line(6), user: Err("is not a CSV record".to_owned()) },
        ];
        let mut bad = Vec::new();
        let accepted = accept(rows, Role::Admin, &mut bad);
        let kept: Vec<String> = accepted.iter().map(|(p, u)| format!("{p} {}", u.email.as_str())).collect();
        assert_eq!(kept, ["line 2 a@example.com", "line 5 c@example.com"]);
        let reasons: Vec<String> = bad.iter().map(|b| format!("{}: {}", b.position, b.reason)).collect();
        assert_eq!(
            reasons,
            [
                "line 3: has the same email as line 2",
                "line 4: has the same username as line 2",
                "line 6: is not a CSV record"
            ]
        );
    }

    #[test]
    fn the_report_lists_bad_rows_then_the_counts() {
        let report = ImportReport {
            dry_run: true,
            read: 4,
            imported: 2,
            already_present: 1,
            without_password: 1,
            bad_rows: vec![BadRow { position: Position::Entry(3), reason: "has no email".to_owned() }],
        };
        assert_eq!(
            report.to_string(),
            "entry 3: has no email\nread: 4\nwould be imported: 2\nalready present: 1\n\
             without usable password: 1\nbad rows: 1\ndry run: nothing was written"
        );
    }
}
