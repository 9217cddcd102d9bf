//! The user directory's queries: keyset pagination over `users`. `DbErr` never leaves this file.
//!
//! An ordering is a list of *segments* read one after the other: rows with a value in the
//! ordered column, sorted by (value, id), then, for a column that can be empty, rows without
//! one, sorted by id. Splitting on emptiness instead of writing `NULLS LAST` keeps every query a
//! plain range over one index, `(column, id)`, which SQLite and PostgreSQL both walk in either
//! direction (their `NULL` placements differ, so neither default is used). A cursor bound becomes
//! a row-value comparison `(column, id) > (value, id)` inside its own segment and skips the
//! segments on its other side; that comparison is an index range on both databases, so a page
//! deep in the list costs what the first page costs.
//!
//! Emails are compared byte-wise (`COLLATE "C"` on PostgreSQL, SQLite's default), so the order
//! does not depend on the database's locale and matches SQLite's.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use super::model::{
    Cursor, OrderDirection, PageRequest, SortKey, Take, UserEdge, UserFilter, UserOrder, UserOrderField, UserPage,
};
use crate::{
    domain::{User, UserId},
    entity::users,
    error::{AppError, AppResult},
    users::repo::to_user,
};

/// One user by id.
pub async fn find_by_id(db: &impl ConnectionTrait, id: UserId) -> AppResult<Option<User>> {
    let row = users::Entity::find_by_id(id.0).one(db).await.map_err(AppError::internal)?;
    Ok(row.map(to_user))
}

/// Users matching `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &UserFilter) -> AppResult<u64> {
    let condition = filter_condition(filter, db.get_database_backend());
    users::Entity::find().filter(condition).count(db).await.map_err(AppError::internal)
}

/// One page of users matching `filter` in `order`, with Relay's page flags: a flag is true when
/// the page was cut short on that side, or when a row matching the filter lies beyond the
/// cursor on that side (found with one indexed `LIMIT 1` probe).
pub async fn page(
    db: &impl ConnectionTrait,
    filter: &UserFilter,
    order: UserOrder,
    request: &PageRequest,
) -> AppResult<UserPage> {
    let walk = Walk { db, filter: filter_condition(filter, db.get_database_backend()), order };
    let after = request.after.as_ref().map(|cursor| Bound { cursor, inclusive: false });
    let before = request.before.as_ref().map(|cursor| Bound { cursor, inclusive: false });
    let (rows, cut_before, cut_after) = match request.take {
        Take::First(n) => {
            let mut rows = walk.rows(after, before, Towards::End, n + 1).await?;
            let more = truncate(&mut rows, n);
            (rows, false, more)
        }
        Take::Last(n) => {
            let mut rows = walk.rows(after, before, Towards::Start, n + 1).await?;
            let more = truncate(&mut rows, n);
            rows.reverse();
            (rows, more, false)
        }
    };
    let has_previous_page = cut_before || walk.any_at_or_before(request.after.as_ref()).await?;
    let has_next_page = cut_after || walk.any_at_or_after(request.before.as_ref()).await?;
    let field = order.field;
    let edges = rows
        .into_iter()
        .map(|row| {
            let user = to_user(row);
            UserEdge { cursor: Cursor::of(&user, field), user }
        })
        .collect();
    Ok(UserPage { edges, has_previous_page, has_next_page })
}

/// Keeps the first `n` rows; whether there were more.
fn truncate(rows: &mut Vec<users::Model>, n: u64) -> bool {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let more = rows.len() > n;
    rows.truncate(n);
    more
}

fn filter_condition(filter: &UserFilter, backend: DatabaseBackend) -> Condition {
    let mut all = Condition::all();
    if let Some(search) = &filter.search {
        // The pattern is lowercase; the column is lowercased on PostgreSQL, where LIKE is
        // case-sensitive. SQLite's LIKE already ignores the case of ASCII letters, the only ones
        // its lower() folds, so there lower() would change nothing but double the cost of a scan.
        let pattern = search.like_pattern();
        let mut any = Condition::any();
        for column in [users::Column::Email, users::Column::Username, users::Column::FirstName, users::Column::LastName]
        {
            let column = Expr::col((users::Entity, column));
            let folded = match backend {
                DatabaseBackend::Postgres => Expr::expr(Func::lower(column)),
                _ => column,
            };
            any = any.add(folded.like(LikeExpr::new(pattern.clone()).escape('\\')));
        }
        all = all.add(any);
    }
    if let Some(role) = filter.role {
        all = all.add(users::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = filter.is_active {
        all = all.add(users::Column::IsActive.eq(active));
    }
    match filter.email_verified {
        Some(true) => all = all.add(users::Column::EmailVerifiedAt.is_not_null()),
        Some(false) => all = all.add(users::Column::EmailVerifiedAt.is_null()),
        None => {}
    }
    if let Some(after) = filter.created_after {
        all = all.add(users::Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        all = all.add(users::Column::CreatedAt.lt(before));
    }
    all
}

/// The ordered column's value in a sort key, as an SQL value; `None` when the row has none.
fn sort_value(key: &SortKey) -> Option<Expr> {
    match key {
        SortKey::CreatedAt(at) | SortKey::LastLoginAt(Some(at)) => Some(Expr::val(*at)),
        SortKey::Email(Some(email)) => Some(Expr::val(email.clone())),
        SortKey::Email(None) | SortKey::LastLoginAt(None) => None,
    }
}

/// A cursor bounding a walk; `inclusive` also admits the cursor's own position.
#[derive(Clone, Copy)]
struct Bound<'a> {
    cursor: &'a Cursor,
    inclusive: bool,
}

/// Which way a walk reads the ordering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Towards {
    /// In list order.
    End,
    /// Against list order.
    Start,
}

/// A part of an ordering, read as one indexed range query.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    /// Rows with a value in the ordered column, by (value, id).
    Valued,
    /// Rows without one, by id; after the valued rows in both directions.
    Empty,
}

impl Segment {
    /// The segments of an ordering, in list order.
    fn all(field: UserOrderField) -> &'static [Segment] {
        match field {
            UserOrderField::CreatedAt => &[Segment::Valued],
            UserOrderField::Email | UserOrderField::LastLoginAt => &[Segment::Valued, Segment::Empty],
        }
    }

    fn of(cursor: &Cursor) -> Segment {
        match cursor.key {
            SortKey::CreatedAt(_) | SortKey::Email(Some(_)) | SortKey::LastLoginAt(Some(_)) => Segment::Valued,
            SortKey::Email(None) | SortKey::LastLoginAt(None) => Segment::Empty,
        }
    }
}

struct Walk<'a, C> {
    db: &'a C,
    filter: Condition,
    order: UserOrder,
}

impl<C: ConnectionTrait> Walk<'_, C> {
    /// Up to `limit` rows strictly between `lower` and `upper` (each bound optional), read from
    /// the end `towards` says, segment by segment until the limit is reached.
    async fn rows(
        &self,
        lower: Option<Bound<'_>>,
        upper: Option<Bound<'_>>,
        towards: Towards,
        limit: u64,
    ) -> AppResult<Vec<users::Model>> {
        let mut rows = Vec::new();
        let segments = Segment::all(self.order.field);
        let ordered: Vec<Segment> = match towards {
            Towards::End => segments.to_vec(),
            Towards::Start => segments.iter().rev().copied().collect(),
        };
        for segment in ordered {
            let wanted = limit.saturating_sub(rows.len() as u64);
            if wanted == 0 {
                break;
            }
            let mut condition = self.filter.clone().add(self.segment_condition(segment));
            if let Some(bound) = lower {
                match segment.cmp(&Segment::of(bound.cursor)) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => condition = condition.add(self.beyond(segment, bound, Towards::End)),
                    std::cmp::Ordering::Greater => {}
                }
            }
            if let Some(bound) = upper {
                match segment.cmp(&Segment::of(bound.cursor)) {
                    std::cmp::Ordering::Greater => continue,
                    std::cmp::Ordering::Equal => condition = condition.add(self.beyond(segment, bound, Towards::Start)),
                    std::cmp::Ordering::Less => {}
                }
            }
            let mut query = users::Entity::find().filter(condition).limit(wanted);
            let order = self.sql_order(towards);
            if segment == Segment::Valued {
                query = query.order_by(self.column(), order.clone());
            }
            query = query.order_by(users::Column::Id, order);
            rows.extend(query.all(self.db).await.map_err(AppError::internal)?);
        }
        Ok(rows)
    }

    /// Whether a row matching the filter sits at or before `cursor` (none without one).
    async fn any_at_or_before(&self, cursor: Option<&Cursor>) -> AppResult<bool> {
        let Some(cursor) = cursor else { return Ok(false) };
        let bound = Bound { cursor, inclusive: true };
        Ok(!self.rows(None, Some(bound), Towards::Start, 1).await?.is_empty())
    }

    /// Whether a row matching the filter sits at or after `cursor` (none without one).
    async fn any_at_or_after(&self, cursor: Option<&Cursor>) -> AppResult<bool> {
        let Some(cursor) = cursor else { return Ok(false) };
        let bound = Bound { cursor, inclusive: true };
        Ok(!self.rows(Some(bound), None, Towards::End, 1).await?.is_empty())
    }

    /// Rows of `segment` past `bound` in the direction `towards` (within the segment).
    fn beyond(&self, segment: Segment, bound: Bound<'_>, towards: Towards) -> Expr {
        let ascending = self.order.direction == OrderDirection::Asc;
        // "Further along the list" means larger keys when ascending, smaller when descending.
        let larger = ascending == (towards == Towards::End);
        let id = Expr::col((users::Entity, users::Column::Id));
        let cursor_id = Expr::val(bound.cursor.id.0);
        let (left, right) = match (segment, sort_value(&bound.cursor.key)) {
            (Segment::Valued, Some(value)) => (Expr::tuple([self.column(), id]), Expr::tuple([value, cursor_id])),
            // The empty segment (the only one a key without a value belongs to) is ordered by id.
            _ => (id, cursor_id),
        };
        match (larger, bound.inclusive) {
            (true, false) => left.gt(right),
            (true, true) => left.gte(right),
            (false, false) => left.lt(right),
            (false, true) => left.lte(right),
        }
    }

    fn segment_condition(&self, segment: Segment) -> Condition {
        let column = match self.order.field {
            UserOrderField::CreatedAt => return Condition::all(),
            UserOrderField::Email => users::Column::Email,
            UserOrderField::LastLoginAt => users::Column::LastLoginAt,
        };
        match segment {
            Segment::Valued => Condition::all().add(column.is_not_null()),
            Segment::Empty => Condition::all().add(column.is_null()),
        }
    }

    /// The ordered column as compared and sorted: emails byte-wise on every database.
    fn column(&self) -> Expr {
        match self.order.field {
            UserOrderField::CreatedAt => Expr::col((users::Entity, users::Column::CreatedAt)),
            UserOrderField::LastLoginAt => Expr::col((users::Entity, users::Column::LastLoginAt)),
            UserOrderField::Email => match self.db.get_database_backend() {
                DatabaseBackend::Postgres => Expr::cust(r#""users"."email" COLLATE "C""#),
                _ => Expr::col((users::Entity, users::Column::Email)),
            },
        }
    }

    fn sql_order(&self, towards: Towards) -> Order {
        match (self.order.direction, towards) {
            (OrderDirection::Asc, Towards::End) | (OrderDirection::Desc, Towards::Start) => Order::Asc,
            (OrderDirection::Asc, Towards::Start) | (OrderDirection::Desc, Towards::End) => Order::Desc,
        }
    }
}
