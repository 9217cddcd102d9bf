//! Reading a Django users export into records, one per user: the JSON of
//! `manage.py dumpdata auth.user` (a list of `{"model": "<app>.<model>", "pk": .., "fields":
//! {..}}`, so custom user models with the same fields too) or a CSV whose header names the
//! columns of [`COLUMNS`]. A record that cannot be read is kept as a bad row at its position
//! (CSV line, or JSON entry index from 0); only a file that is not of the format at all fails.

use std::fmt;

use serde_json::Value;

use crate::error::{AppError, AppResult};

/// The columns a CSV export must have (in any order; other columns are ignored).
pub const COLUMNS: [&str; 10] = [
    "email",
    "username",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
    "password",
];

/// The two shapes of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The format a file name's extension says (`.json`, `.csv`, any case).
    pub fn from_file_name(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Where a record sits in its file, as the operator finds it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A CSV line, from 1 (the header is line 1).
    Line(u64),
    /// A JSON list index, from 0 (as `jq '.[3]'`).
    Entry(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "line {line}"),
            Self::Entry(index) => write!(f, "entry {index}"),
        }
    }
}

/// A user's fields as Django stored them; text fields Django left empty are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoUser {
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Empty when absent.
    pub date_joined: String,
    /// Empty when the user never logged in.
    pub last_login: String,
    /// The encoded hash (`pbkdf2_sha256$...`), `!...` for an unusable password.
    pub password: String,
}

/// One record of the file: a user, or why it is not one.
#[derive(Debug, Clone)]
pub struct Row {
    pub position: Position,
    pub user: Result<DjangoUser, String>,
}

/// Reads every record of `text`.
///
/// Errors: BAD_USER_INPUT (`file`) when `text` is not a JSON list, or a CSV without the header
/// of [`COLUMNS`].
pub fn read(text: &str, format: Format) -> AppResult<Vec<Row>> {
    // Spreadsheet programs start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => read_json(text),
        Format::Csv => read_csv(text),
    }
}

fn read_json(text: &str) -> AppResult<Vec<Row>> {
    let entries: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| AppError::bad_input("file", format!("is not a JSON list of dumpdata entries ({e})")))?;
    Ok(entries
        .iter()
        .enumerate()
        .map(|(index, entry)| Row { position: Position::Entry(index), user: json_user(entry) })
        .collect())
}

fn json_user(entry: &Value) -> Result<DjangoUser, String> {
    let model = entry.get("model").and_then(Value::as_str).ok_or("has no model name")?;
    let named = model.split_once('.').is_some_and(|(app, name)| !app.is_empty() && !name.is_empty());
    if !named {
        return Err(format!("model {model:?} is not an <app>.<model> name"));
    }
    let fields = entry.get("fields").and_then(Value::as_object).ok_or("has no fields")?;
    let text = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(format!("{name} is not a string")),
    };
    // An absent flag takes Django's default: custom user models may leave some out.
    let flag = |name: &str, default: bool| match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(format!("{name} is not true or false")),
    };
    Ok(DjangoUser {
        email: text("email")?,
        username: text("username")?,
        first_name: text("first_name")?,
        last_name: text("last_name")?,
        is_active: flag("is_active", true)?,
        is_staff: flag("is_staff", false)?,
        is_superuser: flag("is_superuser", false)?,
        date_joined: text("date_joined")?,
        last_login: text("last_login")?,
        password: text("password")?,
    })
}

fn read_csv(text: &str) -> AppResult<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers =
        reader.headers().map_err(|e| AppError::bad_input("file", format!("has no readable CSV header ({e})")))?.clone();
    let mut columns = [0usize; COLUMNS.len()];
    for (slot, name) in columns.iter_mut().zip(COLUMNS) {
        *slot = headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            AppError::bad_input("file", format!("has no {name} column (the header names {})", COLUMNS.join(",")))
        })?;
    }
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(text);
    for record in reader.records() {
        let (start, user) = match record {
            Ok(record) => {
                let value = |i: usize| record.get(columns[i]).unwrap_or_default().to_owned();
                (record.position().map(csv::Position::byte), csv_user(&value))
            }
            Err(e) => {
                (e.position().map(csv::Position::byte), Err(format!("is not a CSV record like the header ({e})")))
            }
        };
        let line = start.map_or(0, |byte| lines.line_at(byte));
        rows.push(Row { position: Position::Line(line), user });
    }
    Ok(rows)
}

/// Line numbers from byte offsets, counted here because the csv crate counts no blank lines
/// (and a record's offset is where the blank lines before it start). Offsets must come in
/// increasing order.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self { text: text.as_bytes(), offset: 0, line: 1 }
    }

    /// The line (from 1) of the byte at `byte`.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut target = usize::try_from(byte).unwrap_or(usize::MAX).min(self.text.len()).max(self.offset);
        while matches!(self.text.get(target), Some(b'\n' | b'\r')) {
            target += 1;
        }
        self.line += self.text[self.offset..target].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = target;
        self.line
    }
}

/// `value(i)` is the field of column `COLUMNS[i]`.
fn csv_user(value: &dyn Fn(usize) -> String) -> Result<DjangoUser, String> {
    let flag = |i: usize| parse_flag(COLUMNS[i], &value(i));
    Ok(DjangoUser {
        email: value(0),
        username: value(1),
        first_name: value(2),
        last_name: value(3),
        is_active: flag(4)?,
        is_staff: flag(5)?,
        is_superuser: flag(6)?,
        date_joined: value(7),
        last_login: value(8),
        password: value(9),
    })
}

/// A boolean as Python (`True`), JSON (`true`) or PostgreSQL's COPY (`t`) writes it.
fn parse_flag(name: &str, raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" => Ok(true),
        "false" | "f" | "0" | "no" => Ok(false),
        _ => Err(format!("{name} is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(rows: &[Row]) -> Vec<Result<String, String>> {
        rows.iter().map(|r| r.user.clone().map(|u| u.email)).collect()
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::from_file_name("users.JSON"), Some(Format::Json));
        assert_eq!(Format::from_file_name("/tmp/export.csv"), Some(Format::Csv));
        assert_eq!(Format::from_file_name("users.txt"), None);
        assert_eq!(Format::from_file_name("users"), None);
    }

    #[test]
    fn dumpdata_entries_of_any_user_model_are_read_with_their_index() {
        let text = r#"[
            {"model": "auth.user", "pk": 1, "fields": {"email": "a@example.com", "is_staff": true,
             "password": "x", "last_login": null, "groups": []}},
            {"model": "accounts.customuser", "pk": 2, "fields": {"email": "b@example.com"}},
            {"model": "user", "fields": {"email": "c@example.com"}},
            {"model": "auth.user", "fields": {"email": "d@example.com", "is_active": "yes"}},
            {"model": "auth.user"}
        ]"#;
        let rows = read(text, Format::Json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.iter().map(|r| r.position.to_string()).collect::<Vec<_>>()[4], "entry 4");
        let first = rows[0].user.clone().unwrap_or_else(|e| panic!("{e}"));
        assert!(first.is_staff && first.is_active && !first.is_superuser && first.last_login.is_empty());
        assert_eq!(
            users(&rows),
            [
                Ok("a@example.com".to_owned()),
                Ok("b@example.com".to_owned()),
                Err("model \"user\" is not an <app>.<model> name".to_owned()),
                Err("is_active is not true or false".to_owned()),
                Err("has no fields".to_owned()),
            ]
        );
    }

    #[test]
    fn json_that_is_not_a_list_refuses_the_file() {
        for text in ["{}", "[1,", "not json"] {
            assert!(matches!(read(text, Format::Json), Err(AppError::BadUserInput { field: "file", .. })), "{text}");
        }
    }

    #[test]
    fn csv_records_carry_their_line_and_quoted_fields_keep_commas() {
        let text = "\u{feff}password,email,username,first_name,last_name,is_active,is_staff,is_superuser,\
                    date_joined,last_login,id\n\
                    x,a@example.com,al,Al,\"O'Brien, Jr.\",True,t,0,2021-01-01 00:00:00+00:00,,7\n\
                    \n\
                    x,b@example.com,bo,,,maybe,False,False,,,8\n\
                    x,c@example.com\n";
        let rows = read(text, Format::Csv).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<String> = rows.iter().map(|r| r.position.to_string()).collect();
        assert_eq!(lines, ["line 2", "line 4", "line 5"]);
        let first = rows[0].user.clone().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.last_name, "O'Brien, Jr.");
        assert!(first.is_active && first.is_staff && !first.is_superuser);
        assert_eq!(rows[1].user, Err("is_active is not true or false".to_owned()));
        assert!(rows[2].user.as_ref().is_err_and(|e| e.starts_with("is not a CSV record")), "{:?}", rows[2].user);
    }

    #[test]
    fn a_quoted_field_over_two_lines_moves_the_next_record_down_two() {
        let header = COLUMNS.join(",");
        let text = format!("{header}\r\nan@example.com,an,\"An\nNe\",,1,0,0,,,x\r\nbo@example.com,bo,,,1,0,0,,,x\r\n");
        let rows = read(&text, Format::Csv).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<String> = rows.iter().map(|r| r.position.to_string()).collect();
        assert_eq!(lines, ["line 2", "line 4"]);
    }

    #[test]
    fn csv_without_a_needed_column_refuses_the_file() {
        let text = "email,username\na@example.com,al\n";
        let refused = read(text, Format::Csv);
        assert!(
            matches!(&refused, Err(AppError::BadUserInput { field: "file", message }) if message.starts_with("has no first_name column")),
            "{refused:?}"
        );
    }
}
