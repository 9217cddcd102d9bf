//! Statements rendered once per backend and bound again with each request's values.
//!
//! sea-query builds a statement as a tree of expressions and then renders it as text; for the
//! point reads on every request's path (the token check, a login's account lookup) that cost
//! about as much as running them. A [`Template`] is built once per backend with marker values
//! where the request's values go, and each use puts the real values in the markers' places.

use std::sync::OnceLock;

use sea_orm::{DbBackend, Statement, Value};

use crate::error::{AppError, AppResult};

/// A statement of `N` values, rendered at first use on each backend. `build` must use each of
/// `markers`' values where a request's value goes; values it adds of its own are kept as built.
pub struct Template<const N: usize> {
    markers: fn() -> [Value; N],
    build: fn(DbBackend, [Value; N]) -> Statement,
    /// Per backend (SQLite, PostgreSQL, MySQL): the text and where each bound value comes from,
    /// or why the build cannot serve as a template.
    rendered: [OnceLock<Result<Rendered, String>>; 3],
}

struct Rendered {
    sql: String,
    slots: Vec<Slot>,
}

/// Where one of the rendered statement's bound values comes from.
enum Slot {
    /// The caller's value at this index.
    Given(usize),
    /// A value the build added of its own.
    Fixed(Value),
}

impl<const N: usize> Template<N> {
    /// A template whose statement `build` makes from `markers`' values. Markers must differ
    /// from each other and from any value `build` adds of its own.
    pub const fn new(markers: fn() -> [Value; N], build: fn(DbBackend, [Value; N]) -> Statement) -> Self {
        Self { markers, build, rendered: [const { OnceLock::new() }; 3] }
    }

    /// The statement for `backend` with `values` in the markers' places.
    ///
    /// Errors: INTERNAL when the build left a marker out (sea-query wrote it into the text, say).
    pub fn bind(&self, backend: DbBackend, values: [Value; N]) -> AppResult<Statement> {
        let per_backend = match backend {
            DbBackend::Sqlite => 0,
            DbBackend::Postgres => 1,
            _ => 2,
        };
        let rendered =
            self.rendered[per_backend].get_or_init(|| self.render(backend)).as_ref().map_err(AppError::internal_msg)?;
        let bound = rendered.slots.iter().map(|slot| match slot {
            Slot::Given(index) => values[*index].clone(),
            Slot::Fixed(value) => value.clone(),
        });
        Ok(Statement::from_sql_and_values(backend, rendered.sql.clone(), bound.collect::<Vec<_>>()))
    }

    fn render(&self, backend: DbBackend) -> Result<Rendered, String> {
        let markers = (self.markers)();
        let statement = (self.build)(backend, markers.clone());
        let values = statement.values.map(|values| values.0).unwrap_or_default();
        let slots: Vec<Slot> = values
            .into_iter()
            .map(|value| match markers.iter().position(|marker| *marker == value) {
                Some(index) => Slot::Given(index),
                None => Slot::Fixed(value),
            })
            .collect();
        let left_out = (0..N).find(|index| !slots.iter().any(|slot| matches!(slot, Slot::Given(i) if i == index)));
        match left_out {
            Some(index) => Err(format!("a statement template does not bind its value {index} on {backend:?}")),
            None => Ok(Rendered { sql: statement.sql, slots }),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
    use uuid::Uuid;

    use super::*;

    /// A value used twice, and one of the build's own (7).
    fn query([id, email]: [Value; 2]) -> SelectStatement {
        Query::select()
            .column("id")
            .from("users")
            .and_where(Expr::col("id").eq(id.clone()))
            .and_where(Expr::col("email").eq(email).or(Expr::col("id").eq(id)))
            .and_where(Expr::val(7).gt(Expr::col("generation")))
            .to_owned()
    }

    fn build(backend: DbBackend, values: [Value; 2]) -> Statement {
        backend.build(&query(values))
    }

    static TEMPLATE: Template<2> = Template::new(|| [Uuid::from_u128(1).into(), "\u{0}marker".into()], build);

    #[test]
    fn a_bound_template_is_the_statement_built_with_the_same_values() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let values = || [Uuid::new_v4().into(), "alice@example.com".into()];
            for values in [values(), values()] {
                let bound = TEMPLATE.bind(backend, values.clone()).expect("binds");
                assert_eq!(bound, build(backend, values));
            }
        }
    }

    #[test]
    fn a_build_that_leaves_a_value_out_is_an_error_not_a_wrong_statement() {
        static LEFT_OUT: Template<2> = Template::new(
            || [Uuid::from_u128(1).into(), Uuid::from_u128(2).into()],
            |backend, [id, _]| {
                backend.build(Query::select().column("id").from("users").and_where(Expr::col("id").eq(id)))
            },
        );
        assert!(LEFT_OUT.bind(DbBackend::Sqlite, [Uuid::new_v4().into(), Uuid::new_v4().into()]).is_err());
    }
}
