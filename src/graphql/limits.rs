//! Bounds on the shape of a GraphQL document, checked by the transport before the schema sees
//! it, so that no document can exhaust a stack or a CPU anywhere in the request path.
//!
//! - [`check_nesting`] reads the raw text: brackets (`{`, `[`, `(`) may nest at most
//!   [`MAX_NESTING`] deep. It runs before any parser, because the parser recurses once per level
//!   of a list or object value (`[[[[…]]]]`), and a few kilobytes of brackets would overflow its
//!   stack and abort the whole process.
//! - [`check_depth`] reads the parsed document: a path of data fields may be `data` deep, a path
//!   through introspection (`__schema`, `__type`) up to `introspection` deep, so the standard
//!   introspection query of graphql-js (and GraphiQL) works while deep data queries stay refused.
//!   Fragment spreads are followed with their depth memoised, so a document pays once per
//!   fragment however often it is spread, and chains of fragments count toward the nesting.

use std::collections::HashMap;

use async_graphql::{
    Name,
    parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet},
};

/// How deep brackets may nest in a document. A real query's deepest point (selection sets,
/// argument lists, input objects and lists) stays far below; the parser survives over ten
/// times more.
pub const MAX_NESTING: usize = 64;

/// How many fragment definitions a document may hold: each adds a level that the schema's
/// validation may recurse through, which the bracket count cannot see.
pub const MAX_FRAGMENTS: usize = 256;

/// How many aliased fields a document may run, counted through every fragment spread: only
/// aliases make one document run a field many times (`a: me b: me ...`), so they are what
/// multiplies its cost; real operations use a handful.
pub const MAX_ALIASES: usize = 30;

/// The fields named here start an introspection path.
const INTROSPECTION_ROOTS: [&str; 2] = ["__schema", "__type"];

/// Why a document was refused before parsing or execution. The texts are safe to show.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("the document nests brackets more than {MAX_NESTING} levels deep")]
    TooNested,
    #[error("the document defines more than {MAX_FRAGMENTS} fragments")]
    TooManyFragments,
    #[error("Query is nested too deep: {depth} levels of fields, at most {limit} allowed")]
    TooDeep { depth: usize, limit: usize },
    #[error("the document runs {0} aliased fields; at most {MAX_ALIASES} are allowed")]
    TooManyAliases(usize),
}

/// Refuses a document whose brackets nest deeper than [`MAX_NESTING`]. Brackets inside
/// strings, block strings and comments do not count. Runs in one pass with no allocation.
pub fn check_nesting(document: &str) -> Result<(), ShapeError> {
    let bytes = document.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ShapeError::TooNested);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The depth limits of [`check_depth`].
#[derive(Debug, Clone, Copy)]
pub struct DepthLimits {
    /// Fields on a path that does not pass through introspection.
    pub data: usize,
    /// Fields on a path that does.
    pub introspection: usize,
}

impl DepthLimits {
    /// The configured limit for data, and room for the standard introspection query
    /// (graphql-js nests `ofType` up to nine levels below `__schema`).
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self { data: settings.query_depth_limit, introspection: settings.query_depth_limit.max(20) }
    }
}

/// Refuses a document with a field path deeper than `limits` allow, or with more than
/// [`MAX_FRAGMENTS`] fragments. Unknown and cyclic fragment spreads count as empty here: the
/// schema's validation reports them.
pub fn check_depth(document: &ExecutableDocument, limits: DepthLimits) -> Result<(), ShapeError> {
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(ShapeError::TooManyFragments);
    }
    let mut walker = Walker { fragments: &document.fragments, memo: HashMap::new() };
    for (_, operation) in document.operations.iter() {
        let depth = walker.selection_set(&operation.node.selection_set.node);
        if depth.data > limits.data {
            return Err(ShapeError::TooDeep { depth: depth.data, limit: limits.data });
        }
        if depth.total > limits.introspection {
            return Err(ShapeError::TooDeep { depth: depth.total, limit: limits.introspection });
        }
        if depth.aliases > MAX_ALIASES {
            return Err(ShapeError::TooManyAliases(depth.aliases));
        }
    }
    Ok(())
}

/// The shape of a selection set: `data` counts fields until an introspection root (which
/// counts as one), `total` counts every field (both the deepest path), and `aliases` the
/// aliased fields it runs, fragments included as often as they are spread.
#[derive(Debug, Clone, Copy, Default)]
struct Depth {
    data: usize,
    total: usize,
    aliases: usize,
}

impl Depth {
    /// Two siblings: the deeper path, and the aliases of both.
    fn beside(self, other: Self) -> Self {
        Self {
            data: self.data.max(other.data),
            total: self.total.max(other.total),
            aliases: self.aliases.saturating_add(other.aliases),
        }
    }
}

struct Walker<'a> {
    fragments: &'a HashMap<Name, async_graphql::Positioned<FragmentDefinition>>,
    /// None while a fragment is being measured: a spread of it then is a cycle.
    memo: HashMap<&'a str, Option<Depth>>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Depth {
        set.items.iter().fold(Depth::default(), |deepest, item| {
            let depth = match &item.node {
                Selection::Field(field) => {
                    let below = self.selection_set(&field.node.selection_set.node);
                    let introspection = INTROSPECTION_ROOTS.contains(&field.node.name.node.as_str());
                    Depth {
                        data: if introspection { 1 } else { 1 + below.data },
                        total: 1 + below.total,
                        aliases: below.aliases.saturating_add(usize::from(field.node.alias.is_some())),
                    }
                }
                Selection::InlineFragment(fragment) => self.selection_set(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str()),
            };
            deepest.beside(depth)
        })
    }

    fn fragment(&mut self, name: &'a str) -> Depth {
        match self.memo.get(name) {
            Some(Some(depth)) => return *depth,
            Some(None) => return Depth::default(),
            None => {}
        }
        let Some(definition) = self.fragments.get(name) else { return Depth::default() };
        self.memo.insert(name, None);
        let depth = self.selection_set(&definition.node.selection_set.node);
        self.memo.insert(name, Some(depth));
        depth
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    const LIMITS: DepthLimits = DepthLimits { data: 3, introspection: 5 };

    fn depth_check(query: &str) -> Result<(), ShapeError> {
        check_depth(&parse_query(query).unwrap_or_else(|e| panic!("{e}")), LIMITS)
    }

    #[test]
    fn brackets_nested_past_the_limit_are_refused_before_parsing() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(check_nesting(&deep), Err(ShapeError::TooNested));
        let objects = format!("{{ a(x: {}1{}) }}", "{a:".repeat(10_000), "}".repeat(10_000));
        assert_eq!(check_nesting(&objects), Err(ShapeError::TooNested));
    }

    #[test]
    fn brackets_at_the_limit_are_accepted() {
        let at_limit = format!("{}{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(check_nesting(&at_limit), Ok(()));
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let brackets = "[".repeat(1000);
        assert_eq!(check_nesting(&format!("{{ a(x: \"{brackets}\") }}")), Ok(()));
        assert_eq!(check_nesting(&format!("{{ a(x: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") }}")), Ok(()));
        assert_eq!(check_nesting(&format!("# {brackets}\n{{ a }}")), Ok(()));
        assert_eq!(check_nesting(&format!("{{ a(x: \"\\\"{brackets}\") }}")), Ok(()));
    }

    #[test]
    fn an_unterminated_string_or_stray_closers_do_not_panic() {
        assert_eq!(check_nesting("{ a(x: \"unterminated"), Ok(()));
        assert_eq!(check_nesting("{ a(x: \"\"\"unterminated"), Ok(()));
        assert_eq!(check_nesting("}}}]]])))"), Ok(()));
        assert_eq!(check_nesting("\"\\"), Ok(()));
    }

    #[test]
    fn data_paths_deeper_than_the_limit_are_refused() {
        assert_eq!(depth_check("{ a { b { c } } }"), Ok(()));
        assert_eq!(depth_check("{ a { b { c { d } } } }"), Err(ShapeError::TooDeep { depth: 4, limit: 3 }));
    }

    #[test]
    fn depth_follows_fragments_and_inline_fragments() {
        let query = "{ a { ...F } } fragment F on T { b { ... on T { c { d } } } }";
        assert_eq!(depth_check(query), Err(ShapeError::TooDeep { depth: 4, limit: 3 }));
    }

    #[test]
    fn introspection_paths_have_their_own_limit() {
        assert_eq!(
            depth_check("{ __schema { types { fields { type { ofType { name } } } } } }"),
            Err(ShapeError::TooDeep { depth: 6, limit: 5 })
        );
        assert_eq!(depth_check("{ __schema { types { fields { type { name } } } } }"), Ok(()));
    }

    #[test]
    fn aliases_are_counted_through_every_spread() {
        let few = "{ a: me { id } b: me { id } }";
        assert_eq!(depth_check(few), Ok(()));
        let many: String = (0..31).map(|i| format!("a{i}: me ")).collect();
        assert_eq!(depth_check(&format!("{{ {many} }}")), Err(ShapeError::TooManyAliases(31)));
        // Eight aliases in a fragment spread four times: 32.
        let eight: String = (0..8).map(|i| format!("a{i}: me ")).collect();
        let spread = format!("{{ ...F ...F ... on Q {{ ...F ...F }} }} fragment F on Q {{ {eight} }}");
        assert_eq!(depth_check(&spread), Err(ShapeError::TooManyAliases(32)));
    }

    #[test]
    fn cyclic_and_unknown_fragments_are_left_to_validation() {
        assert_eq!(depth_check("{ ...A } fragment A on Q { a { ...B } } fragment B on Q { ...A }"), Ok(()));
        assert_eq!(depth_check("{ ...Missing }"), Ok(()));
    }

    #[test]
    fn a_fragment_spread_many_times_is_measured_once() {
        // Each level spreads the one below twice: 2^40 paths, one measurement per fragment.
        let mut query = String::from("{ ...F0 }");
        for i in 0..40 {
            query.push_str(&format!(" fragment F{i} on Q {{ ...F{} ...F{} }}", i + 1, i + 1));
        }
        query.push_str(" fragment F40 on Q { a }");
        assert_eq!(depth_check(&query), Ok(()));
    }
}
