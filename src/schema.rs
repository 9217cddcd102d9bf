//! The schema: every feature's Query and Mutation roots merged into one of each, built with the
//! limits every request runs under and the services as schema data. The only module that
//! names every feature's GraphQL roots; `http` serves what it builds.

use async_graphql::{EmptySubscription, MergedObject, Schema};

use crate::{
    accounts::graphql::{AccountsMutation, AccountsQuery},
    admin::graphql::{AdminMutation, AdminQuery},
    audit::graphql::AuditQuery,
    auth::graphql::{AuthMutation, AuthQuery},
    config::Settings,
    graphql::{limits::DepthLimits, scalars},
    media::graphql::MediaMutation,
    services::Services,
    social::graphql::{SocialMutation, SocialQuery},
};

#[derive(MergedObject, Default)]
pub struct Query(AccountsQuery, AdminQuery, AuthQuery, AuditQuery, SocialQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(AccountsMutation, AdminMutation, AuthMutation, MediaMutation, SocialMutation);

pub type IdgateSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema with its limits and the services as schema data.
pub fn build_schema(services: Services, settings: &Settings) -> IdgateSchema {
    let mut builder = scalars::describe(Schema::build(Query::default(), Mutation::default(), EmptySubscription))
        .data(services)
        // The transport enforces the depth limits with introspection counted apart
        // (`limits::check_depth`); this is the backstop for any other way in.
        .limit_depth(DepthLimits::from_settings(settings).introspection)
        .limit_complexity(settings.query_complexity_limit)
        .limit_recursive_depth(32)
        .limit_directives(10);
    if !settings.introspection_enabled() {
        builder = builder.disable_introspection();
    }
    if !settings.suggestions_enabled() {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    scalars::describe(Schema::build(Query::default(), Mutation::default(), EmptySubscription)).finish().sdl()
}
