/// The committed schema.graphql is what clients generate code from: it must be the code's SDL.
#[test]
fn schema_graphql_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap_or_default();
    let generated = idgate::schema::sdl();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`"
    );
}
