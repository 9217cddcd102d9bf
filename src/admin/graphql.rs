//! GraphQL face of user administration: the `users` directory (a Relay connection, admins
//! only) and `user(id)`. Users are `User` objects built with [`UserView::seen`], so the field
//! guards of that type apply here as everywhere.

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject,
    connection::{Connection, DefaultConnectionName, DefaultEdgeName, DisableNodesField, Edge, EmptyFields},
};
use chrono::{DateTime, Utc};

use super::{
    lifecycle::{AccountChanges, NewAccount},
    model::{OrderDirection, PageRequest, SearchText, UserFilter, UserOrder, UserOrderField, UserPage},
};
use crate::{
    client::ClientInfo,
    domain::{Email, Role, UserId},
    error::AppResult,
    graphql::{
        AUTH_MUTATION_COST,
        guards::{AtLeast, SignedIn},
        user::{ProfileFields, RegisterInput, UserView},
        viewer::Viewer,
    },
    services::Services,
};

/// `UserConnection { edges { cursor node } pageInfo totalCount }`, with `UserEdge`.
pub type UserConnection =
    Connection<String, UserView, UserTotals, EmptyFields, DefaultConnectionName, DefaultEdgeName, DisableNodesField>;

/// Which users to list; every condition given must hold.
#[derive(InputObject, Default)]
#[graphql(name = "UserFilter")]
pub struct UserFilterInput {
    /// Case-insensitive substring of the email, username, first or last name (at most 100
    /// characters; `%` and `_` match only themselves).
    pub search: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_verified: Option<bool>,
    /// Created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

impl UserFilterInput {
    fn parse(self) -> AppResult<UserFilter> {
        Ok(UserFilter {
            search: self.search.as_deref().map(SearchText::parse).transpose()?.flatten(),
            role: self.role,
            is_active: self.is_active,
            email_verified: self.email_verified,
            created_after: self.created_after,
            created_before: self.created_before,
        })
    }
}

/// How to order users; the id breaks ties. Empty values (no email, never logged in) come last
/// in both directions.
#[derive(InputObject)]
#[graphql(name = "UserOrder")]
pub struct UserOrderInput {
    pub field: UserOrderField,
    pub direction: OrderDirection,
}

/// The connection's own fields besides edges and pageInfo.
pub struct UserTotals {
    caller: crate::domain::Principal,
    filter: UserFilter,
}

#[Object]
impl UserTotals {
    /// Users matching the filter across all pages. Counted only when selected: with a search
    /// it reads the whole table.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(ctx.data::<Services>()?.admin.count_users(&self.caller, &self.filter).await?)
    }
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// The user directory, newest first unless `orderBy` says otherwise. Page with `first`
    /// (default 20, at most 100) and `after`, or `last` and `before`; cursors stay valid when
    /// users are added or removed. Admins only.
    /// Errors: UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT (`first`, `last`, `after`, `before`,
    /// `search`).
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<UserFilterInput>,
        order_by: Option<UserOrderInput>,
    ) -> Result<UserConnection> {
        let caller = ctx.data::<Viewer>()?.require()?;
        let order = order_by.map(|o| UserOrder { field: o.field, direction: o.direction }).unwrap_or_default();
        let filter = filter.unwrap_or_default().parse()?;
        let page = PageRequest::parse(first, after.as_deref(), last, before.as_deref(), order.field)?;
        let found = ctx.data::<Services>()?.admin.list_users(&caller, &filter, order, &page).await?;
        Ok(connection(found, UserTotals { caller, filter }))
    }

    /// A user: the caller themselves, or anyone for an admin.
    /// Errors: UNAUTHENTICATED, BAD_USER_INPUT (`id`), FORBIDDEN (another user's id, whether or
    /// not it exists, for non-admins), NOT_FOUND (admins only).
    #[graphql(guard = "SignedIn")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<UserView>> {
        let caller = ctx.data::<Viewer>()?.require()?;
        let id = UserId::parse(&id, "id")?;
        let user = ctx.data::<Services>()?.admin.get_user(&caller, id).await?;
        Ok(Some(UserView::seen(user)))
    }
}

fn connection(page: UserPage, totals: UserTotals) -> UserConnection {
    let mut connection = Connection::with_additional_fields(page.has_previous_page, page.has_next_page, totals);
    connection
        .edges
        .extend(page.edges.into_iter().map(|edge| Edge::new(edge.cursor.encode(), UserView::seen(edge.user))));
    connection
}

/// A new account: the registration fields plus what only an admin sets.
#[derive(InputObject)]
pub struct CreateUserInput {
    #[graphql(flatten)]
    pub account: RegisterInput,
    /// USER unless a superuser says otherwise.
    pub role: Option<Role>,
    /// Whether the address counts as verified already (default false).
    pub email_verified: Option<bool>,
}

/// Changes to an account. An absent field stays as it is; `null` clears it.
#[derive(InputObject)]
pub struct UpdateUserInput {
    #[graphql(flatten)]
    pub profile: ProfileFields,
    /// Set directly (no verification mail); `emailVerified` says whether it counts as verified.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

#[derive(SimpleObject)]
pub struct AdminUserPayload {
    pub user: UserView,
}

fn target_id(id: &ID) -> AppResult<UserId> {
    UserId::parse(id.as_str(), "id")
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Creates an account (admins: USER only; superusers: any role).
    /// Errors: FORBIDDEN, BAD_USER_INPUT, CONFLICT.
    #[graphql(guard = "AtLeast::ADMIN", complexity = "AUTH_MUTATION_COST")]
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let services = ctx.data::<Services>()?;
        let user = input.account.parse(services.clock.now().date_naive())?;
        let account = NewAccount {
            user,
            role: input.role.unwrap_or(Role::User),
            email_verified: input.email_verified.unwrap_or(false),
        };
        let user = services.admin.create_user(&actor, account, ctx.data::<ClientInfo>()?).await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }

    /// Edits an account. Errors: FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let services = ctx.data::<Services>()?;
        let profile = input.profile.parse(services.clock.now().date_naive())?;
        let changes = AccountChanges {
            profile,
            email: input.email.as_deref().map(Email::parse).transpose()?,
            email_verified: input.email_verified,
        };
        let user = services.admin.update_user(&actor, target_id(&id)?, changes, ctx.data::<ClientInfo>()?).await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }

    /// Reactivates an account. Errors: FORBIDDEN, NOT_FOUND.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn activate_user(&self, ctx: &Context<'_>, id: ID) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let user =
            ctx.data::<Services>()?.admin.activate_user(&actor, target_id(&id)?, ctx.data::<ClientInfo>()?).await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }

    /// Ends a lock set by repeated failed logins and forgets the failed attempts, so the owner
    /// can sign in at once. Errors: FORBIDDEN, NOT_FOUND.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn unlock_user(&self, ctx: &Context<'_>, id: ID) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let user =
            ctx.data::<Services>()?.admin.unlock_user(&actor, target_id(&id)?, ctx.data::<ClientInfo>()?).await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }

    /// Deactivates an account; its sessions end at once. Errors: FORBIDDEN, NOT_FOUND.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let user =
            ctx.data::<Services>()?.admin.deactivate_user(&actor, target_id(&id)?, ctx.data::<ClientInfo>()?).await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }

    /// Deletes a deactivated account (its sessions and avatar go; the audit trail keeps its id).
    /// Errors: FORBIDDEN (you may not act on this account), CONFLICT (the account is still
    /// active: deactivate it first), NOT_FOUND.
    #[graphql(guard = "AtLeast::ADMIN")]
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.data::<Viewer>()?.require()?;
        ctx.data::<Services>()?.admin.delete_user(&actor, target_id(&id)?, ctx.data::<ClientInfo>()?).await?;
        Ok(true)
    }

    /// Changes an account's role (superusers). Errors: FORBIDDEN, NOT_FOUND.
    #[graphql(guard = "AtLeast::SUPERUSER")]
    async fn set_user_role(&self, ctx: &Context<'_>, id: ID, role: Role) -> Result<AdminUserPayload> {
        let actor = ctx.data::<Viewer>()?.require()?;
        let user = ctx
            .data::<Services>()?
            .admin
            .set_user_role(&actor, target_id(&id)?, role, ctx.data::<ClientInfo>()?)
            .await?;
        Ok(AdminUserPayload { user: UserView::seen(user) })
    }
}
