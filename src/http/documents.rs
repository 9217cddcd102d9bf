//! GraphQL documents already parsed, by their text. Clients send the same few documents over
//! and over (a generated client has one per operation), and parsing is the largest part of a
//! small request's cost: callgrind counts about 24,000 instructions to parse `{ __typename }`,
//! a third of everything that request costs, against a couple of thousand to copy the parsed
//! document out of the cache.
//!
//! Only documents without string literals are kept: a document that writes a password or a
//! code inline (rather than in variables) is never held, and whether such a text was sent
//! before cannot be timed. The cache is bounded by the total length of the texts it keeps.

use async_graphql::parser::{Result, parse_query, types::ExecutableDocument};
use quick_cache::{Weighter, sync::Cache};

/// Documents longer than this are parsed every time.
const MAX_CACHED_TEXT: usize = 4 * 1024;
/// The total length of the texts kept; their parsed documents take a few times as much.
const CACHED_TEXT_BYTES: u64 = 256 * 1024;

/// See the module documentation.
pub struct ParsedDocuments {
    cache: Cache<String, ExecutableDocument, TextLength>,
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self { cache: Cache::with_weighter(1024, CACHED_TEXT_BYTES, TextLength) }
    }
}

impl ParsedDocuments {
    /// The document `text` parses to; an error exactly as the parser gives it.
    pub fn parse(&self, text: &str) -> Result<ExecutableDocument> {
        if let Some(document) = self.cache.get(text) {
            return Ok(document);
        }
        let document = parse_query(text)?;
        if text.len() <= MAX_CACHED_TEXT && !text.contains('"') {
            self.cache.insert(text.to_owned(), document.clone());
        }
        Ok(document)
    }

    #[cfg(test)]
    fn holds(&self, text: &str) -> bool {
        self.cache.get(text).is_some()
    }
}

/// Weighs an entry by the length of its text.
#[derive(Clone)]
struct TextLength;

impl Weighter<String, ExecutableDocument> for TextLength {
    fn weight(&self, text: &String, _: &ExecutableDocument) -> u64 {
        text.len().max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_document_parses_to_the_same_tree_and_errors_stay_errors() {
        let documents = ParsedDocuments::default();
        let text = "query Me($first: Int) { me { id email } __typename }";
        let first = documents.parse(text).map(|d| format!("{d:?}")).unwrap_or_default();
        assert!(documents.holds(text));
        let again = documents.parse(text).map(|d| format!("{d:?}")).unwrap_or_default();
        assert!(!first.is_empty());
        assert_eq!(first, again);
        assert!(documents.parse("{ me { id ").is_err());
        assert!(documents.parse("{ me { id ").is_err(), "a failed parse is not kept");
    }

    #[test]
    fn documents_with_string_literals_or_of_great_length_are_not_kept() {
        let documents = ParsedDocuments::default();
        let inline =
            r#"mutation { login(input: {email: "a@example.com", password: "hunter2 hunter2"}) { __typename } }"#;
        assert!(documents.parse(inline).is_ok());
        assert!(!documents.holds(inline), "an inline password is never held");
        let long = format!("{{ {} }}", "__typename ".repeat(MAX_CACHED_TEXT / 10));
        assert!(documents.parse(&long).is_ok());
        assert!(!documents.holds(&long));
        let short = "{ __typename }";
        assert!(documents.parse(short).is_ok());
        assert!(documents.holds(short));
    }
}
