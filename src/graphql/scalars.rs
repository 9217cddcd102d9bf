//! Scalars named for clients, not for Rust: generated clients see `Date`, never `NaiveDate`.
//! The built-in `DateTime`, `JSON` and `Upload` keep their names and get descriptions in
//! [`describe`].

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SchemaBuilder, Upload, Value};
use chrono::{DateTime, NaiveDate, Utc};

/// A calendar date as a client writes it: `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

/// A calendar date with no time or zone, written `YYYY-MM-DD` (ISO 8601 calendar date, the
/// `full-date` of RFC 3339), for example `1994-11-13`.
#[Scalar(name = "Date", specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date written YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Gives the built-in scalars descriptions a client can act on.
pub fn describe<Q, M, S>(builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S> {
    builder
        .override_output_type_description::<DateTime<Utc>>(
            "An instant in UTC, written as an RFC 3339 date-time with offset, for example \
             `2026-11-29T08:44:32.123Z`.",
        )
        .override_output_type_description::<async_graphql::Json<serde_json::Value>>(
            "Any JSON value (object, array, string, number, boolean or null), as it is.",
        )
        .override_input_type_description::<Upload>(
            "A file sent with the request as a part of a `multipart/form-data` body, following the \
             GraphQL multipart request specification; the variable's value is `null` and the \
             `map` part points it at the file.",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_reads_and_writes_as_yyyy_mm_dd() {
        let date = Date::parse(Value::String("1994-11-13".into()))
            .unwrap_or_else(|e| panic!("{}", e.into_server_error(Default::default()).message));
        assert_eq!(date.to_value(), Value::String("1994-11-13".into()));
    }

    #[test]
    fn a_date_with_a_time_or_another_format_is_refused() {
        for text in ["1994-11-13T00:00:00Z", "13/11/1994", "1994-13-01", ""] {
            assert!(Date::parse(Value::String(text.into())).is_err(), "{text}");
        }
        assert!(Date::parse(Value::Number(19941113.into())).is_err());
    }
}
