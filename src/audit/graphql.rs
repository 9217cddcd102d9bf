//! `auditEvents`: the audit log for admins, newest first, as a Relay connection.

use async_graphql::{
    Context, ID, InputObject, Json, Object, Result, SimpleObject,
    connection::{Connection, Edge},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{AuditEvent, AuditFilter, AuditKind};
use crate::{domain::UserId, error::AppError, graphql::guards::AtLeast, services::Services};

/// A recorded event.
#[derive(SimpleObject)]
#[graphql(name = "AuditEvent")]
pub struct AuditEventView {
    pub id: ID,
    /// Null only for a kind this server version does not know.
    pub kind: Option<AuditKind>,
    /// The account the event is about (kept after the account is deleted).
    pub user_id: Option<ID>,
    /// Who caused it: the user, an admin, or null for the system.
    pub actor_id: Option<ID>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Small JSON with no secrets.
    pub detail: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: ID(event.id.to_string()),
            kind: event.kind,
            user_id: event.user.map(|u| ID(u.to_string())),
            actor_id: event.actor.map(|u| ID(u.to_string())),
            ip: event.ip,
            user_agent: event.user_agent,
            detail: Json(event.detail),
            created_at: event.at,
        }
    }
}

#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    pub user_id: Option<ID>,
    pub actor_id: Option<ID>,
    pub kind: Option<AuditKind>,
    /// Events at or after this time.
    pub after: Option<DateTime<Utc>>,
    /// Events before this time.
    pub before: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct AuditTotals {
    /// Events matching the filter.
    pub total_count: u64,
}

fn parse_id(id: &ID, field: &'static str) -> Result<UserId, AppError> {
    UserId::parse(id.as_str(), field)
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit log, newest first (admins). Errors: FORBIDDEN, BAD_USER_INPUT.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> Result<Connection<String, AuditEventView, AuditTotals>> {
        let filter = filter.unwrap_or_default();
        let filter = AuditFilter {
            user: filter.user_id.as_ref().map(|id| parse_id(id, "userId")).transpose()?,
            actor: filter.actor_id.as_ref().map(|id| parse_id(id, "actorId")).transpose()?,
            kind: filter.kind,
            after: filter.after,
            before: filter.before,
        };
        let after = after
            .map(|cursor| Uuid::try_parse(&cursor).map_err(|_| AppError::bad_input("after", "is not a cursor")))
            .transpose()?;
        let (events, more, total) = ctx.data::<Services>()?.audit.list(&filter, first, after).await?;
        let mut connection =
            Connection::with_additional_fields(after.is_some(), more, AuditTotals { total_count: total });
        connection.edges.extend(events.into_iter().map(|event| Edge::new(event.id.to_string(), event.into())));
        Ok(connection)
    }
}
