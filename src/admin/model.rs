//! Domain types of the user directory: the parsed filter, the order, the page request with its
//! cursors, and a page of users. Everything a client sends is parsed here once, into values the
//! service and repo can trust: page sizes are bounded, a cursor decodes to a sort key of the
//! ordering it is used with, and the search text is lowercased and bounded.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{Role, User, UserId},
    error::{AppError, AppResult},
};

/// Users per page when the client asks for no size.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Longest search text, in characters.
const MAX_SEARCH_CHARS: usize = 100;
/// Longest encoded cursor we try to decode (ours are about 150 characters; an email key can
/// make one up to about 480).
const MAX_CURSOR_CHARS: usize = 1024;

/// The column users are ordered by (the id always follows as tiebreaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum UserOrderField {
    #[default]
    CreatedAt,
    /// Users without an email (phone-only accounts) come last, in both directions.
    Email,
    /// Users who never logged in come last, in both directions.
    LastLoginAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

/// How users are ordered: by default the newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserOrder {
    pub field: UserOrderField,
    pub direction: OrderDirection,
}

/// Lowercased search text, matched as a substring of email, username, first and last name.
/// Case is ignored for every letter on PostgreSQL, for ASCII letters only on SQLite (whose
/// `lower()` and `LIKE` fold nothing else); emails and usernames are stored lowercase anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Trims and lowercases `raw`; blank text means no search (`None`).
    ///
    /// Errors: BAD_USER_INPUT (`search`) over 100 characters.
    pub fn parse(raw: &str) -> AppResult<Option<Self>> {
        let text = raw.trim().to_lowercase();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > MAX_SEARCH_CHARS {
            return Err(AppError::bad_input("search", "must be at most 100 characters long"));
        }
        Ok(Some(Self(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `LIKE` pattern for "contains", with `\` as escape character: the `%` and `_` a user
    /// types match themselves, not any text.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// Which users to list. Every condition given must hold; none given lists everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub search: Option<SearchText>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_verified: Option<bool>,
    /// Created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

/// The value of the ordered column in one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "at", rename_all = "camelCase")]
pub enum SortKey {
    CreatedAt(DateTime<Utc>),
    Email(Option<String>),
    LastLoginAt(Option<DateTime<Utc>>),
}

impl SortKey {
    /// The key of `user` in the ordering by `field`.
    pub fn of(user: &User, field: UserOrderField) -> Self {
        match field {
            UserOrderField::CreatedAt => Self::CreatedAt(user.created_at),
            UserOrderField::Email => Self::Email(user.email.clone()),
            UserOrderField::LastLoginAt => Self::LastLoginAt(user.last_login_at),
        }
    }

    pub fn field(&self) -> UserOrderField {
        match self {
            Self::CreatedAt(_) => UserOrderField::CreatedAt,
            Self::Email(_) => UserOrderField::Email,
            Self::LastLoginAt(_) => UserOrderField::LastLoginAt,
        }
    }
}

/// A position in an ordering: the sort key and id of a row. It stays meaningful when that row
/// is deleted or other rows are inserted, because it compares against keys, not row numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: SortKey,
    pub id: UserId,
}

/// The JSON inside an encoded cursor: `{"by":"createdAt","at":"…","id":"…"}`.
#[derive(Serialize, Deserialize)]
struct CursorWire {
    #[serde(flatten)]
    key: SortKey,
    id: Uuid,
}

impl Cursor {
    /// The cursor of `user` in the ordering by `field`.
    pub fn of(user: &User, field: UserOrderField) -> Self {
        Self { key: SortKey::of(user, field), id: user.id }
    }

    /// The opaque form given to clients: base64url (unpadded) of a small JSON object. Opaque
    /// means clients must not build or edit cursors; it is not a secret nor signed, and a
    /// tampered cursor only names another position in a listing the caller may read anyway.
    pub fn encode(&self) -> String {
        let wire = CursorWire { key: self.key.clone(), id: self.id.0 };
        // Serializing plain strings, dates and a UUID cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a client's cursor for the ordering by `field`; `input` names the argument.
    ///
    /// Errors: BAD_USER_INPUT (`input`) when it is not one of our cursors, or belongs to
    /// another ordering.
    pub fn decode(raw: &str, field: UserOrderField, input: &'static str) -> AppResult<Self> {
        let invalid = || AppError::bad_input(input, "is not a valid cursor");
        if raw.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let json = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let wire: CursorWire = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if wire.key.field() != field {
            return Err(AppError::bad_input(input, "belongs to a different orderBy field"));
        }
        Ok(Self { key: wire.key, id: UserId(wire.id) })
    }
}

/// How many rows a page takes, and from which end of the window between the cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The first `n` rows after `after` (Relay `first`).
    First(u64),
    /// The last `n` rows before `before` (Relay `last`).
    Last(u64),
}

/// A Relay page request: optional cursors bounding a window of the ordering, and how many rows
/// to take from which end of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    pub take: Take,
}

impl PageRequest {
    /// Parses Relay's `first`, `after`, `last`, `before` for the ordering by `field`. Neither
    /// size given means the first 20.
    ///
    /// Errors: BAD_USER_INPUT naming `first` or `last` (negative, over 100, or both given),
    /// `after` or `before` (not a cursor of this ordering).
    pub fn parse(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
        field: UserOrderField,
    ) -> AppResult<Self> {
        let take = match (first, last) {
            (Some(_), Some(_)) => return Err(AppError::bad_input("last", "give either first or last, not both")),
            (Some(n), None) => Take::First(page_size(n, "first")?),
            (None, Some(n)) => Take::Last(page_size(n, "last")?),
            (None, None) => Take::First(DEFAULT_PAGE_SIZE),
        };
        Ok(Self {
            after: after.map(|raw| Cursor::decode(raw, field, "after")).transpose()?,
            before: before.map(|raw| Cursor::decode(raw, field, "before")).transpose()?,
            take,
        })
    }
}

fn page_size(n: i32, field: &'static str) -> AppResult<u64> {
    let n = u64::try_from(n).map_err(|_| AppError::bad_input(field, "must not be negative"))?;
    if n > MAX_PAGE_SIZE {
        return Err(AppError::bad_input(field, "must be at most 100"));
    }
    Ok(n)
}

/// One user of a page, with its cursor.
#[derive(Debug, Clone)]
pub struct UserEdge {
    pub cursor: Cursor,
    pub user: User,
}

/// A page of users in order, with Relay's page flags.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub edges: Vec<UserEdge>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: AppResult<impl std::fmt::Debug>) -> String {
        match result {
            Ok(v) => format!("ok {v:?}"),
            Err(AppError::BadUserInput { field, .. }) => format!("bad {field}"),
            Err(e) => format!("other {e}"),
        }
    }

    fn cursor(key: SortKey) -> Cursor {
        Cursor { key, id: UserId(Uuid::now_v7()) }
    }

    #[test]
    fn cursors_round_trip_every_kind_of_key() {
        let now = Utc::now();
        for key in [
            SortKey::CreatedAt(now),
            SortKey::Email(Some("a_b%c@example.com".into())),
            SortKey::Email(None),
            SortKey::LastLoginAt(Some(now)),
            SortKey::LastLoginAt(None),
        ] {
            let original = cursor(key);
            let decoded = Cursor::decode(&original.encode(), original.key.field(), "after");
            assert_eq!(decoded.ok(), Some(original));
        }
    }

    #[test]
    fn cursors_are_url_safe_text() {
        let encoded = cursor(SortKey::Email(Some("ü+/?@example.com".into()))).encode();
        assert!(encoded.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{encoded}");
    }

    #[test]
    fn garbage_cursors_are_refused_naming_the_argument() {
        let not_json = URL_SAFE_NO_PAD.encode("nope");
        let wrong_shape = URL_SAFE_NO_PAD.encode(r#"{"by":"createdAt","at":"yesterday","id":"x"}"#);
        let too_long = "A".repeat(2000);
        for raw in ["", "%%%", not_json.as_str(), wrong_shape.as_str(), too_long.as_str()] {
            assert_eq!(field_of(Cursor::decode(raw, UserOrderField::CreatedAt, "before")), "bad before", "{raw:?}");
        }
    }

    #[test]
    fn a_cursor_of_another_ordering_is_refused() {
        let by_email = cursor(SortKey::Email(None)).encode();
        assert_eq!(field_of(Cursor::decode(&by_email, UserOrderField::LastLoginAt, "after")), "bad after");
    }

    #[test]
    fn page_size_defaults_to_20_and_is_bounded_by_0_and_100() {
        let parse = |first, last| PageRequest::parse(first, None, last, None, UserOrderField::CreatedAt);
        assert_eq!(parse(None, None).map(|p| p.take).ok(), Some(Take::First(20)));
        assert_eq!(parse(Some(0), None).map(|p| p.take).ok(), Some(Take::First(0)));
        assert_eq!(parse(None, Some(100)).map(|p| p.take).ok(), Some(Take::Last(100)));
        assert_eq!(field_of(parse(Some(101), None)), "bad first");
        assert_eq!(field_of(parse(Some(-1), None)), "bad first");
        assert_eq!(field_of(parse(None, Some(101))), "bad last");
        assert_eq!(field_of(parse(Some(1), Some(1))), "bad last");
    }

    #[test]
    fn search_is_trimmed_lowercased_and_blank_means_none() {
        assert_eq!(SearchText::parse("  ÉVE ").ok().flatten().map(|s| s.0), Some("éve".into()));
        assert_eq!(SearchText::parse("   ").ok(), Some(None));
        assert_eq!(field_of(SearchText::parse(&"x".repeat(101))), "bad search");
    }

    #[test]
    fn like_wildcards_in_search_text_match_only_themselves() {
        let search = SearchText::parse(r"50%_off\now").ok().flatten();
        assert_eq!(search.map(|s| s.like_pattern()), Some(r"%50\%\_off\\now%".into()));
    }
}
