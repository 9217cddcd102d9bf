//! The domain types every feature shares: the user and its parsed parts (`UserId`, `Email`,
//! `Password`, `Phone`, `Role`, ...). They sit below the features so that `security`, `audit`
//! and the GraphQL guards need no feature to name a user.
//!
//! Each input newtype is built once at the boundary with `parse`, which either returns a value
//! that satisfies its invariants or a BAD_USER_INPUT naming the field; services accept only
//! these types.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Longest password accepted, in characters: checked before any hashing.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Longest username, as in the Django projects idgate replaces.
const MAX_USERNAME_CHARS: usize = 150;
/// Longest first or last name.
const MAX_NAME_CHARS: usize = 150;

/// A user's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub Uuid);

impl UserId {
    /// Parses a client-supplied id; `field` names the input for the error.
    pub fn parse(raw: &str, field: &'static str) -> AppResult<Self> {
        Uuid::parse_str(raw.trim()).map(Self).map_err(|_| AppError::bad_input(field, "is not a valid id"))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A syntactically valid email address, trimmed and lowercased: addresses compare
/// case-insensitively everywhere in idgate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let email = raw.trim().to_lowercase();
        let invalid = |message: &str| Err(AppError::bad_input("email", message));
        if email.is_empty() {
            return invalid("is required");
        }
        if email.chars().count() > MAX_EMAIL_CHARS {
            return invalid("must be at most 254 characters long");
        }
        // Require a dotted domain: "user@localhost" is valid RFC 5322 but never deliverable here.
        let dotted = email.rsplit_once('@').is_some_and(|(_, domain)| domain.contains('.'));
        if !email_address::EmailAddress::is_valid(&email) || !dotted {
            return invalid("is not a valid email address");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }

    /// A masked form safe to show someone who only knows the password: `a•••e@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let chars: Vec<char> = local.chars().collect();
        let shown = match chars.as_slice() {
            [] => String::new(),
            [only] => format!("{only}•••"),
            [first, .., last] => format!("{first}•••{last}"),
        };
        format!("{shown}@{domain}")
    }
}

/// A password as typed: 1 to 128 characters, never logged (its Debug is redacted). Whether it
/// is strong enough for a new account is the policy's call, not this type's.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    /// `field` names the input (password, newPassword, ...).
    pub fn parse(raw: String, field: &'static str) -> AppResult<Self> {
        if raw.is_empty() {
            return Err(AppError::bad_input(field, "is required"));
        }
        // Refused before any hashing: a megabyte password must not cost a megabyte of work.
        if raw.chars().count() > MAX_PASSWORD_CHARS {
            return Err(AppError::bad_input(field, "must be at most 128 characters long"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn secret(&self) -> SecretString {
        self.0.clone()
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A username: 3 to 150 of letters, digits and `@ . + - _`, lowercased so that uniqueness is
/// case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let name = raw.trim().to_lowercase();
        let count = name.chars().count();
        if !(3..=MAX_USERNAME_CHARS).contains(&count) {
            return Err(AppError::bad_input("username", "must be 3 to 150 characters long"));
        }
        if !name.chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) {
            return Err(AppError::bad_input("username", "may contain only letters, digits and @ . + - _"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A first or last name: trimmed, 1 to 150 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str, field: &'static str) -> AppResult<Self> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(AppError::bad_input(field, "must be 1 to 150 characters long"));
        }
        if name.chars().any(char::is_control) {
            return Err(AppError::bad_input(field, "must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form (`+14155550123`), validated against the numbering plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let invalid =
            || AppError::bad_input("phone", "must be a valid phone number in international form, like +14155550123");
        let raw = raw.trim();
        if !raw.starts_with('+') || raw.len() > 32 {
            return Err(invalid());
        }
        let number = phonenumber::parse(None, raw).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Self(number.format().mode(phonenumber::Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166 country of the number, when the numbering plan names one.
    pub fn country(&self) -> Option<String> {
        let number = phonenumber::parse(None, &self.0).ok()?;
        number.country().id().map(|id| id.as_ref().to_owned())
    }

    /// A masked form for someone who only knows the number: `+1•••••••71`.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let keep_end = 2.min(chars.len());
        let head: String = chars.iter().take(2).collect();
        let tail: String = chars[chars.len() - keep_end..].iter().collect();
        format!("{head}{}{tail}", "•".repeat(chars.len().saturating_sub(4)))
    }
}

/// A date of birth: not in the future, not before 1900.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    pub fn parse(date: NaiveDate, today: NaiveDate) -> AppResult<Self> {
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
        if date > today || date < earliest {
            return Err(AppError::bad_input("dateOfBirth", "must be between 1900-01-01 and today"));
        }
        Ok(Self(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

/// Self-described gender, optional everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Gender {
    Female,
    Male,
    NonBinary,
    Other,
    PreferNotToSay,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "FEMALE",
            Self::Male => "MALE",
            Self::NonBinary => "NON_BINARY",
            Self::Other => "OTHER",
            Self::PreferNotToSay => "PREFER_NOT_TO_SAY",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        [Self::Female, Self::Male, Self::NonBinary, Self::Other, Self::PreferNotToSay]
            .into_iter()
            .find(|g| g.as_str() == value)
    }
}

/// What a user may do. Ordered: each role includes the powers of those below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum Role {
    User,
    Admin,
    Superuser,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Admin => "ADMIN",
            Self::Superuser => "SUPERUSER",
        }
    }

    /// Unknown values read as the least privilege.
    pub fn from_db(value: &str) -> Self {
        match value {
            "ADMIN" => Self::Admin,
            "SUPERUSER" => Self::Superuser,
            _ => Self::User,
        }
    }
}

/// A user as the rest of idgate sees it: no password hash.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    /// Absent only for accounts created from a phone number.
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Option<Gender>,
    /// File name of the avatar in the media directory (see `media`).
    pub avatar: Option<String>,
    pub locale: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub phone_verified_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Set while the account is locked after repeated failed logins (see `security::lockout`).
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// When a lock still holds at `now`, the time it ends.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }
}

impl User {
    /// The account a registration would create, before it is stored: also the answer to a
    /// registration for a taken address, which must look just as new.
    pub fn draft(new: &NewUser, role: Role, now: DateTime<Utc>) -> Self {
        Self {
            id: UserId(Uuid::now_v7()),
            email: Some(new.email.as_str().to_owned()),
            username: new.username.as_ref().map(|u| u.as_str().to_owned()),
            first_name: new.first_name.as_ref().map(|n| n.as_str().to_owned()),
            last_name: new.last_name.as_ref().map(|n| n.as_str().to_owned()),
            phone: new.phone.as_ref().map(|p| p.as_str().to_owned()),
            date_of_birth: new.date_of_birth.map(|d| d.date()),
            gender: new.gender,
            avatar: None,
            locale: None,
            role,
            is_active: true,
            email_verified_at: None,
            phone_verified_at: None,
            last_login_at: None,
            locked_until: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A locale tag such as `en`, `es-MX`: 2 to 16 letters, digits and dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale(String);

impl Locale {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let tag = raw.trim();
        let plausible = (2..=16).contains(&tag.len()) && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !plausible {
            return Err(AppError::bad_input("locale", "must be a language tag like en or es-MX"));
        }
        Ok(Self(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Profile fields to change: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub username: Option<Option<Username>>,
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub date_of_birth: Option<Option<DateOfBirth>>,
    pub gender: Option<Option<Gender>>,
    pub locale: Option<Option<Locale>>,
    /// A new phone is stored unverified.
    pub phone: Option<Option<Phone>>,
}

impl ProfileChanges {
    /// The GraphQL names of the fields that change (for the audit detail).
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut note = |set: bool, name| {
            if set {
                names.push(name);
            }
        };
        note(self.username.is_some(), "username");
        note(self.first_name.is_some(), "firstName");
        note(self.last_name.is_some(), "lastName");
        note(self.date_of_birth.is_some(), "dateOfBirth");
        note(self.gender.is_some(), "gender");
        note(self.locale.is_some(), "locale");
        note(self.phone.is_some(), "phone");
        names
    }
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub username: Option<Username>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub phone: Option<Phone>,
    pub date_of_birth: Option<DateOfBirth>,
    pub gender: Option<Gender>,
}

impl NewUser {
    /// The user's own words a password must not contain.
    pub fn personal_words(&self) -> Vec<&str> {
        let mut words = vec![self.email.local_part(), self.email.as_str()];
        words.extend(self.username.as_ref().map(Username::as_str));
        words.extend(self.first_name.as_ref().map(PersonName::as_str));
        words.extend(self.last_name.as_ref().map(PersonName::as_str));
        words
    }
}

/// A logged-in device.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub user_id: UserId,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who an access token speaks for, after its signature, claims and revocation were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: Uuid,
    /// The account's role: as claimed by the token after `TokenService::verify`, as it is now in
    /// the database after `AuthService::authenticate` (the one authorization relies on).
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: AppResult<impl fmt::Debug>) -> String {
        match result {
            Ok(v) => format!("ok {v:?}"),
            Err(AppError::BadUserInput { field, .. }) => format!("bad {field}"),
            Err(e) => format!("other {e}"),
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Email::parse("  Alice@Example.COM ").map(|e| e.0).ok(), Some("alice@example.com".into()));
    }

    #[test]
    fn emails_without_a_dotted_domain_or_at_sign_are_refused() {
        for bad in ["", "alice", "alice@", "@example.com", "alice@localhost", "a b@example.com"] {
            assert_eq!(code(Email::parse(bad)), "bad email", "{bad:?}");
        }
    }

    #[test]
    fn emails_longer_than_254_characters_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(code(Email::parse(&long)), "bad email");
    }

    #[test]
    fn masked_email_shows_first_and_last_letter_and_domain() {
        assert_eq!(Email::parse("alice@example.com").map(|e| e.masked()).ok(), Some("a•••e@example.com".into()));
        assert_eq!(Email::parse("a@example.com").map(|e| e.masked()).ok(), Some("a•••@example.com".into()));
    }

    #[test]
    fn passwords_over_128_characters_are_refused_before_hashing() {
        assert_eq!(code(Password::parse("x".repeat(129), "password")), "bad password");
        assert!(Password::parse("é".repeat(128), "password").is_ok());
    }

    #[test]
    fn password_debug_is_redacted() {
        let printed = format!("{:?}", Password::parse("hunter2-secret".into(), "password").ok());
        assert!(!printed.contains("hunter2"));
    }

    #[test]
    fn usernames_are_lowercased_and_limited_to_safe_characters() {
        assert_eq!(Username::parse("Alice_01").map(|u| u.0).ok(), Some("alice_01".into()));
        assert_eq!(code(Username::parse("al")), "bad username");
        assert_eq!(code(Username::parse("alice<script>")), "bad username");
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(Phone::parse("+1 415 555 2671").map(|p| p.0).ok(), Some("+14155552671".into()));
        assert_eq!(Phone::parse("+44 20 7946 0958").map(|p| p.0).ok(), Some("+442079460958".into()));
    }

    #[test]
    fn phones_without_country_code_or_invalid_are_refused() {
        for bad in ["4155552671", "+1 23", "+999 123456", "call me"] {
            assert_eq!(code(Phone::parse(bad)), "bad phone", "{bad:?}");
        }
    }

    #[test]
    fn phones_know_their_country_and_mask_all_but_the_ends() {
        let phone = Phone::parse("+44 20 7946 0958").ok();
        assert_eq!(phone.as_ref().and_then(Phone::country), Some("GB".into()));
        assert_eq!(phone.map(|p| p.masked()), Some("+4•••••••••58".into()));
    }

    #[test]
    fn dates_of_birth_in_the_future_are_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let tomorrow = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap_or_default();
        assert_eq!(code(DateOfBirth::parse(tomorrow, today)), "bad dateOfBirth");
        assert!(DateOfBirth::parse(today, today).is_ok());
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        assert_eq!(code(PersonName::parse("Al\u{0}ice", "firstName")), "bad firstName");
        assert_eq!(PersonName::parse(" Zoë ", "firstName").map(|n| n.0).ok(), Some("Zoë".into()));
    }
}
