//! GraphQL face of avatars: `uploadAvatar` and `removeAvatar`.

use async_graphql::{Context, Object, Result, SimpleObject, Upload};

use crate::{
    client::ClientInfo,
    error::AppError,
    graphql::user::UserView,
    graphql::{AUTH_MUTATION_COST, guards::SignedIn, viewer::Viewer},
    services::Services,
};

#[derive(SimpleObject)]
pub struct UploadAvatarPayload {
    pub user: UserView,
}

#[derive(SimpleObject)]
pub struct RemoveAvatarPayload {
    pub user: UserView,
}

#[derive(Default)]
pub struct MediaMutation;

#[Object]
impl MediaMutation {
    /// Sets the caller's avatar from a file sent as a GraphQL multipart request
    /// (https://github.com/jaydenseric/graphql-multipart-request-spec) with an
    /// `Authorization: Bearer` header: a PNG, JPEG or WebP image of at most
    /// `IDGATE_AVATAR_MAX_BYTES`, stored re-encoded as a PNG of at most 512×512 without its
    /// metadata. The previous avatar is deleted. Errors: UNAUTHENTICATED, BAD_USER_INPUT (`file`).
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn upload_avatar(&self, ctx: &Context<'_>, file: Upload) -> Result<UploadAvatarPayload> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let upload = file.value(ctx).map_err(|_| AppError::bad_input("file", "could not be read"))?;
        let media = &ctx.data::<Services>()?.media;
        let user = media.set_avatar(principal.user_id, upload.content.into(), ctx.data::<ClientInfo>()?).await?;
        Ok(UploadAvatarPayload { user: UserView::owner(user) })
    }

    /// Removes the caller's avatar and deletes its file (a no-op without one).
    /// Errors: UNAUTHENTICATED.
    #[graphql(guard = "SignedIn")]
    async fn remove_avatar(&self, ctx: &Context<'_>) -> Result<RemoveAvatarPayload> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let media = &ctx.data::<Services>()?.media;
        let user = media.remove_avatar(principal.user_id, ctx.data::<ClientInfo>()?).await?;
        Ok(RemoveAvatarPayload { user: UserView::owner(user) })
    }
}
