//! A Django user's fields -> an idgate account, through the same parsers registration uses: a
//! field that fails its parser makes the row a bad row. Django's `is_superuser` is SUPERUSER,
//! `is_staff` the configured staff role; a password hash idgate cannot verify (unusable,
//! legacy, unknown) leaves the account without a password.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::read::DjangoUser;
use crate::{
    domain::{Email, PersonName, Role, Username},
    error::AppError,
    security::django_hashes::DjangoHash,
};

/// An account to create, parsed.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub role: Role,
    pub is_active: bool,
    pub joined_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The Django hash as stored, when idgate can verify it.
    pub password_hash: Option<String>,
}

/// Maps one Django user; the error says which field is wrong and why.
pub fn map(user: DjangoUser, staff_role: Role) -> Result<ImportedUser, String> {
    // idgate keys accounts by email; Django does not require one.
    if user.email.trim().is_empty() {
        return Err("has no email (idgate accounts are keyed by email)".to_owned());
    }
    let email = Email::parse(&user.email).map_err(reason)?;
    let username = optional(&user.username, Username::parse)?;
    let first_name = optional(&user.first_name, |raw| PersonName::parse(raw, "first_name"))?;
    let last_name = optional(&user.last_name, |raw| PersonName::parse(raw, "last_name"))?;
    let role = match (user.is_superuser, user.is_staff) {
        (true, _) => Role::Superuser,
        (false, true) => staff_role,
        (false, false) => Role::User,
    };
    let password_hash = DjangoHash::parse(&user.password).map(|_| user.password);
    Ok(ImportedUser {
        email,
        username,
        first_name,
        last_name,
        role,
        is_active: user.is_active,
        joined_at: parse_time("date_joined", &user.date_joined)?,
        last_login_at: parse_time("last_login", &user.last_login)?,
        password_hash,
    })
}

/// An empty field is absent; anything else must parse.
fn optional<T>(raw: &str, parse: impl Fn(&str) -> Result<T, AppError>) -> Result<Option<T>, String> {
    if raw.trim().is_empty() { Ok(None) } else { parse(raw).map(Some).map_err(reason) }
}

fn reason(error: AppError) -> String {
    match error {
        AppError::BadUserInput { field, message } => format!("{field} {message}"),
        other => other.to_string(),
    }
}

/// A time as dumpdata writes it (`2021-03-01T09:30:15.123Z`), as Python's str() does
/// (`2021-03-01 09:30:15.123456+00:00`) or PostgreSQL's COPY (`... 09:30:15.123456+00`); one
/// without an offset (a project with USE_TZ = False) is read as UTC.
fn parse_time(field: &str, raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let iso = raw.replacen(' ', "T", 1);
    if let Ok(time) = DateTime::parse_from_rfc3339(&iso) {
        return Ok(Some(time.to_utc()));
    }
    if let Ok(time) = DateTime::parse_from_str(&iso, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Ok(Some(time.to_utc()));
    }
    NaiveDateTime::parse_from_str(&iso, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|time| Some(time.and_utc()))
        .map_err(|_| format!("{field} is not a date and time like 2021-03-01T09:30:15Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBKDF2: &str = "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=";

    fn django(email: &str) -> DjangoUser {
        DjangoUser {
            email: email.to_owned(),
            username: "Alice_01".to_owned(),
            first_name: " Alice ".to_owned(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: "2021-03-01T09:30:15.123Z".to_owned(),
            last_login: String::new(),
            password: PBKDF2.to_owned(),
        }
    }

    fn mapped(user: DjangoUser) -> ImportedUser {
        map(user, Role::Admin).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn fields_go_through_the_domain_parsers() {
        let user = mapped(django("Alice@Example.COM"));
        assert_eq!(user.email.as_str(), "alice@example.com");
        assert_eq!(user.username.as_ref().map(Username::as_str), Some("alice_01"));
        assert_eq!(user.first_name.as_ref().map(PersonName::as_str), Some("Alice"));
        assert!(user.last_name.is_none() && user.last_login_at.is_none());
        assert_eq!(user.password_hash.as_deref(), Some(PBKDF2));
        assert_eq!(user.joined_at.map(|t| t.to_rfc3339()), Some("2021-03-01T09:30:15.123+00:00".to_owned()));
    }

    #[test]
    fn rows_without_a_valid_email_or_with_a_bad_field_are_refused_naming_the_field() {
        assert_eq!(
            map(django(""), Role::Admin).err(),
            Some("has no email (idgate accounts are keyed by email)".into())
        );
        assert_eq!(map(django("nope"), Role::Admin).err(), Some("email is not a valid email address".into()));
        let bad_username = DjangoUser { username: "has space".into(), ..django("a@example.com") };
        assert!(map(bad_username, Role::Admin).is_err_and(|e| e.starts_with("username may contain only")));
        let bad_date = DjangoUser { last_login: "yesterday".into(), ..django("a@example.com") };
        assert!(map(bad_date, Role::Admin).is_err_and(|e| e.starts_with("last_login is not a date")));
    }

    #[test]
    fn superusers_stay_superusers_and_staff_takes_the_chosen_role() {
        let staff = DjangoUser { is_staff: true, ..django("a@example.com") };
        assert_eq!(mapped(staff.clone()).role, Role::Admin);
        assert_eq!(map(staff.clone(), Role::User).map(|u| u.role), Ok(Role::User));
        let root = DjangoUser { is_superuser: true, ..staff };
        assert_eq!(map(root, Role::User).map(|u| u.role), Ok(Role::Superuser));
        assert_eq!(mapped(django("a@example.com")).role, Role::User);
    }

    #[test]
    fn hashes_idgate_cannot_verify_import_no_password() {
        for password in ["", "!unusable", "md5$salt$0123456789abcdef0123456789abcdef", "sha1$a$b", "plain"] {
            let user = DjangoUser { password: password.into(), ..django("a@example.com") };
            assert_eq!(mapped(user).password_hash, None, "{password}");
        }
    }

    #[test]
    fn times_in_django_python_and_postgresql_forms_are_read_as_utc() {
        for (raw, expected) in [
            ("2021-03-01T09:30:15Z", "2021-03-01T09:30:15+00:00"),
            ("2021-03-01 09:30:15.123456+00:00", "2021-03-01T09:30:15.123456+00:00"),
            ("2021-03-01 11:30:15+02:00", "2021-03-01T09:30:15+00:00"),
            ("2021-03-01 09:30:15.5+00", "2021-03-01T09:30:15.500+00:00"),
            ("2021-03-01T09:30:15.123", "2021-03-01T09:30:15.123+00:00"),
        ] {
            let parsed = parse_time("date_joined", raw).map(|t| t.map(|t| t.to_rfc3339()));
            assert_eq!(parsed, Ok(Some(expected.to_owned())), "{raw}");
        }
        assert_eq!(parse_time("last_login", " "), Ok(None));
    }
}
