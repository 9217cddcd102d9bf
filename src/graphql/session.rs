//! The `Session` object: one logged-in device, as the user and admins see it.

use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use crate::domain::Session;

/// A logged-in device.
pub struct SessionView {
    session: Session,
    current: bool,
}

impl SessionView {
    /// `current_session` is the session of the request's access token, if any.
    pub fn new(session: Session, current_session: Option<uuid::Uuid>) -> Self {
        Self { current: Some(session.id) == current_session, session }
    }

    /// The session the request itself just opened or refreshed.
    pub fn of_this_request(session: Session) -> Self {
        Self { session, current: true }
    }
}

#[Object(name = "Session")]
impl SessionView {
    async fn id(&self) -> ID {
        ID(self.session.id.to_string())
    }

    async fn device_name(&self) -> Option<&str> {
        self.session.device_name.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.session.user_agent.as_deref()
    }

    async fn ip(&self) -> Option<&str> {
        self.session.ip.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.session.created_at
    }

    async fn last_used_at(&self) -> DateTime<Utc> {
        self.session.last_used_at
    }

    async fn expires_at(&self) -> DateTime<Utc> {
        self.session.expires_at
    }

    /// Whether this is the session of the access token making the request.
    async fn current(&self) -> bool {
        self.current
    }
}
