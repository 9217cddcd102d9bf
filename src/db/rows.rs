//! Rows of the reads on every request's path (`db::Reader`) decoded as sea-orm models, for a
//! SQLite connection of rusqlite's (`InlineSqlite`), where sea-orm has no decoder.
//!
//! Each column takes the `sea_query::Value` variant of the type sea-orm gives it (the entity's
//! own column definitions, or the caller's for an extra column), and the model is assembled
//! through its active model, so its fields are set exactly as sea-orm would set them. The
//! stored forms are sqlx's, since sqlx writes every row: a UUID as its 16 bytes, a time as RFC
//! 3339 text, a date as `YYYY-MM-DD`, a boolean as 0 or 1. A column of a type not listed here,
//! or stored in another form, is an error, never a guess.

use std::{marker::PhantomData, sync::Arc};

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{
    Connection, Error,
    types::{ToSqlOutput, Value as SqlValue, ValueRef},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, DbErr, EntityTrait, IdenStatic, Iterable, QueryResult, TryIntoModel,
    Value,
};
use uuid::Uuid;

/// A column of a result: its name and the type its value is read as.
pub type Typed = (&'static str, ColumnType);

/// The columns a read of `E`'s models returns: `E`'s own, typed as the entity declares them and
/// in its order, then the caller's extra ones. Built once per query and kept in a static by its
/// caller: the entity's column definitions are built anew on every call, and these reads run
/// on every request.
pub struct ModelColumns<E> {
    columns: Arc<[Typed]>,
    /// How many of `columns` are `E`'s.
    width: usize,
    entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> ModelColumns<E> {
    /// `E`'s columns followed by `extra` (named in the statement, with the types to read them as).
    pub fn with(extra: &[Typed]) -> Self {
        let own = E::Column::iter().map(|column| (column.as_str(), column.def().get_column_type().clone()));
        let columns: Vec<Typed> = own.chain(extra.iter().cloned()).collect();
        Self { width: columns.len() - extra.len(), columns: columns.into(), entity: PhantomData }
    }

    /// Every column, `E`'s first.
    pub fn all(&self) -> &Arc<[Typed]> {
        &self.columns
    }

    /// The caller's extra columns.
    pub fn extra(&self) -> &[Typed] {
        self.columns.get(self.width..).unwrap_or_default()
    }

    /// `E`'s model and the extra columns from a row of [`ModelColumns::all`]'s values.
    pub fn split(&self, mut values: Vec<Value>) -> Result<(E::Model, Vec<Value>), DbErr>
    where
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        let extra = values.split_off(self.width.min(values.len()));
        let mut active = E::ActiveModel::default();
        for (column, value) in E::Column::iter().zip(values) {
            active.try_set(column, value)?;
        }
        Ok((active.try_into_model()?, extra))
    }
}

/// Runs the query `sql` with `values` bound to its `?` placeholders, and reads each row's
/// `columns` (by name) as the types they give.
pub(super) fn query(
    connection: &Connection,
    sql: &str,
    values: &[Value],
    columns: &[Typed],
) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut statement = connection.prepare_cached(sql)?;
    for (index, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, bound(value)?)?;
    }
    let indexes = columns.iter().map(|(name, _)| statement.column_index(name)).collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = statement.raw_query();
    let mut results = Vec::new();
    while let Some(row) = rows.next()? {
        let values = indexes.iter().zip(columns).map(|(&index, (_, ty))| read(index, row.get_ref(index)?, ty));
        results.push(values.collect::<rusqlite::Result<_>>()?);
    }
    Ok(results)
}

/// `value` as sqlx binds it on SQLite.
fn bound(value: &Value) -> rusqlite::Result<ToSqlOutput<'_>> {
    let null = ToSqlOutput::Owned(SqlValue::Null);
    let integer = |number: i64| ToSqlOutput::Owned(SqlValue::Integer(number));
    Ok(match value {
        Value::Bool(v) => v.map_or(null, |v| integer(v.into())),
        Value::Int(v) => v.map_or(null, |v| integer(v.into())),
        Value::BigInt(v) => v.map_or(null, integer),
        Value::String(v) => v.as_deref().map_or(null, |v| ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))),
        Value::Uuid(v) => v.as_ref().map_or(null, |v| ToSqlOutput::Borrowed(ValueRef::Blob(v.as_bytes()))),
        Value::ChronoDateTimeUtc(v) => {
            v.map_or(null, |v| ToSqlOutput::Owned(SqlValue::Text(v.to_rfc3339_opts(SecondsFormat::AutoSi, false))))
        }
        other => return Err(Error::ToSqlConversionFailure(format!("a value not bound inline: {other:?}").into())),
    })
}

/// Column `index`'s `value` as the `sea_query::Value` variant of `ty`.
fn read(index: usize, value: ValueRef<'_>, ty: &ColumnType) -> rusqlite::Result<Value> {
    let wrong = |why: String| Error::FromSqlConversionFailure(index, value.data_type(), why.into());
    let text = match value {
        ValueRef::Text(bytes) => Some(std::str::from_utf8(bytes).map_err(|e| wrong(e.to_string()))?),
        _ => None,
    };
    let null = matches!(value, ValueRef::Null);
    Ok(match (ty, value, text) {
        (ColumnType::Uuid, _, _) if null => Value::Uuid(None),
        (ColumnType::Uuid, ValueRef::Blob(bytes), _) => {
            Value::Uuid(Some(Uuid::from_slice(bytes).map_err(|e| wrong(e.to_string()))?))
        }
        (ColumnType::Uuid, _, Some(text)) => {
            Value::Uuid(Some(Uuid::parse_str(text).map_err(|e| wrong(e.to_string()))?))
        }
        (ColumnType::TimestampWithTimeZone, _, _) if null => Value::ChronoDateTimeUtc(None),
        (ColumnType::TimestampWithTimeZone, _, Some(text)) => {
            Value::ChronoDateTimeUtc(Some(time(text).ok_or_else(|| wrong("not a time".into()))?))
        }
        (ColumnType::Date, _, _) if null => Value::ChronoDate(None),
        (ColumnType::Date, _, Some(text)) => {
            Value::ChronoDate(Some(NaiveDate::parse_from_str(text, "%F").map_err(|e| wrong(e.to_string()))?))
        }
        (ColumnType::Boolean, _, _) if null => Value::Bool(None),
        (ColumnType::Boolean, ValueRef::Integer(number), _) => Value::Bool(Some(number != 0)),
        (ColumnType::Integer, _, _) if null => Value::Int(None),
        (ColumnType::Integer, ValueRef::Integer(number), _) => {
            Value::Int(Some(i32::try_from(number).map_err(|e| wrong(e.to_string()))?))
        }
        (ColumnType::BigInteger, _, _) if null => Value::BigInt(None),
        (ColumnType::BigInteger, ValueRef::Integer(number), _) => Value::BigInt(Some(number)),
        (ColumnType::String(_) | ColumnType::Text, _, _) if null => Value::String(None),
        (ColumnType::String(_) | ColumnType::Text, _, Some(text)) => Value::String(Some(text.to_owned())),
        (ty, _, _) => return Err(wrong(format!("a {ty:?} column held as {:?} is not read inline", value.data_type()))),
    })
}

/// `columns` of a PostgreSQL row, each as the `sea_query::Value` variant of its type.
pub(super) fn read_postgres(row: &QueryResult, columns: &[Typed]) -> Result<Vec<Value>, DbErr> {
    columns
        .iter()
        .map(|(name, ty)| {
            Ok(match ty {
                ColumnType::Uuid => Value::Uuid(row.try_get("", name)?),
                ColumnType::TimestampWithTimeZone => Value::ChronoDateTimeUtc(row.try_get("", name)?),
                ColumnType::Date => Value::ChronoDate(row.try_get("", name)?),
                ColumnType::Boolean => Value::Bool(row.try_get("", name)?),
                ColumnType::Integer => Value::Int(row.try_get("", name)?),
                ColumnType::BigInteger => Value::BigInt(row.try_get("", name)?),
                ColumnType::String(_) | ColumnType::Text => Value::String(row.try_get("", name)?),
                ty => return Err(DbErr::Type(format!("a {ty:?} column ({name}) is not read by the reader"))),
            })
        })
        .collect()
}

/// A time as sqlx writes it (RFC 3339), or as SQLite's own functions do (UTC, no zone).
fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%F %T%.f").map(|time| time.and_utc()))
        .ok()
}

#[cfg(test)]
mod tests {
    use rusqlite::types::Type;

    use super::*;

    #[test]
    fn a_column_held_in_another_form_is_an_error_not_a_guess() {
        let error = read(0, ValueRef::Text(b"{}"), &ColumnType::Json).err();
        assert!(matches!(error, Some(Error::FromSqlConversionFailure(0, Type::Text, _))), "{error:?}");
        assert!(read(0, ValueRef::Text(b"yes"), &ColumnType::Boolean).is_err(), "a boolean stored as text");
        assert!(read(0, ValueRef::Blob(&[1, 2, 3]), &ColumnType::Uuid).is_err(), "three bytes are no UUID");
        assert!(read(0, ValueRef::Integer(1 << 40), &ColumnType::Integer).is_err(), "too large for an i32");
        assert!(bound(&Value::Double(Some(1.5))).is_err());
    }

    #[test]
    fn times_read_back_as_sqlx_writes_them() {
        let now = Utc::now();
        let written = now.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        let read = read(0, ValueRef::Text(written.as_bytes()), &ColumnType::TimestampWithTimeZone);
        assert_eq!(read.ok(), Some(Value::ChronoDateTimeUtc(Some(now))));
        assert_eq!(time("2026-12-01 10:00:00").map(|t| t.to_rfc3339()), Some("2026-12-01T10:00:00+00:00".into()));
        assert_eq!(time("yesterday"), None);
    }
}
