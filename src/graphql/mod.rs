//! The GraphQL schema: feature roots merged into one Query and one Mutation, the limits every
//! request runs under, the Viewer and guards, and the mapping of errors to `extensions.code`.

pub mod errors;
pub mod guards;
pub mod limits;
pub mod scalars;
pub mod viewer;

use async_graphql::{EmptySubscription, MergedObject, Schema};

use crate::{
    accounts::graphql::{AccountsMutation, AccountsQuery},
    admin::graphql::{AdminMutation, AdminQuery},
    app::Services,
    audit::graphql::AuditQuery,
    auth::graphql::{AuthMutation, AuthQuery},
    config::Settings,
    media::graphql::MediaMutation,
};

/// Complexity charged for each mutation that hashes a password, sends a message or checks a
/// guessable secret. With the default limit of 1000, one document holds at most two of them,
/// however they are aliased: the rest is refused before any resolver runs.
pub const AUTH_MUTATION_COST: usize = 400;

#[derive(MergedObject, Default)]
pub struct Query(AccountsQuery, AdminQuery, AuthQuery, AuditQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(AccountsMutation, AdminMutation, AuthMutation, MediaMutation);

pub type IdgateSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema with its limits and the services as schema data.
pub fn build_schema(services: Services, settings: &Settings) -> IdgateSchema {
    let mut builder = scalars::describe(Schema::build(Query::default(), Mutation::default(), EmptySubscription))
        .data(services)
        // The transport enforces the depth limits with introspection counted apart
        // (`limits::check_depth`); this is the backstop for any other way in.
        .limit_depth(depth_limits(settings).introspection)
        .limit_complexity(settings.query_complexity_limit)
        .limit_recursive_depth(32)
        .limit_directives(10);
    if !settings.introspection {
        builder = builder.disable_introspection();
    }
    if !settings.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The field-depth limits: the configured one for data, and room for the standard
/// introspection query (graphql-js nests `ofType` up to nine levels below `__schema`).
pub fn depth_limits(settings: &Settings) -> limits::DepthLimits {
    limits::DepthLimits { data: settings.query_depth_limit, introspection: settings.query_depth_limit.max(20) }
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    scalars::describe(Schema::build(Query::default(), Mutation::default(), EmptySubscription)).finish().sdl()
}
