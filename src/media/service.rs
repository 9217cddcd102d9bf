//! Avatar rules: validate and re-encode off the async threads, store under a fresh name, point
//! the user at it, and only then delete the file it replaced.
//!
//! Invariants: every file in the media directory was written by [`MediaService::set_avatar`]
//! under an [`AvatarName`], complete (written to a temporary name, synced, then renamed); a
//! user's `avatar` column names a file that exists (the new file is stored before the column
//! changes, the old one removed after). A crash in between leaves at worst an orphaned file,
//! never a user pointing at nothing.

use std::{path::PathBuf, sync::Arc};

use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use tokio::{fs, io::AsyncWriteExt, sync::Semaphore};

use super::{
    model::{AvatarImage, AvatarName},
    repo,
};
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    clock::Clock,
    domain::{User, UserId},
    error::{AppError, AppResult},
    security::crypto::random_token,
};

/// Stores, replaces, removes and reads avatar images.
#[derive(Clone)]
pub struct MediaService {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    dir: Arc<PathBuf>,
    public_url: Arc<str>,
    max_bytes: usize,
    /// One decode per core at a time: each may hold up to `MAX_DECODED_BYTES` of pixels.
    decoding: Arc<Semaphore>,
}

impl MediaService {
    /// A service storing files under `dir` (created at the first upload) and linking them
    /// under `{public_url}/media/`; uploads larger than `max_bytes` are refused.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        dir: PathBuf,
        public_url: &str,
        max_bytes: usize,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            db,
            clock,
            dir: Arc::new(dir),
            public_url: public_url.trim_end_matches('/').into(),
            max_bytes,
            decoding: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The largest upload accepted, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The public URL of the user's avatar, if they have one.
    pub fn avatar_url(&self, user: &User) -> Option<String> {
        let name = AvatarName::parse(user.avatar.as_deref()?)?;
        Some(format!("{}/media/{}", self.public_url, name.as_str()))
    }

    /// Makes `bytes` the user's avatar (validated and re-encoded, see [`AvatarImage::parse`]),
    /// then deletes the file it replaces. Audited as AVATAR_CHANGED.
    ///
    /// Errors: BAD_USER_INPUT (`file`), NOT_FOUND (`user`).
    pub async fn set_avatar(&self, user: UserId, bytes: Vec<u8>, client: &ClientInfo) -> AppResult<User> {
        // The permit moves into the blocking task: a request that gives up waiting does not
        // free a slot while its decode still runs.
        let permit = Arc::clone(&self.decoding).acquire_owned().await.map_err(AppError::internal)?;
        let max_bytes = self.max_bytes;
        let image = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            AvatarImage::parse(&bytes, max_bytes)
        })
        .await
        .map_err(AppError::internal)??;
        let name = AvatarName::generate();
        self.store(&name, image.bytes()).await?;
        match self.point_at(user, Some(&name), client).await {
            Ok(user) => Ok(user),
            Err(e) => {
                self.delete(name.as_str()).await;
                Err(e)
            }
        }
    }

    /// Removes the user's avatar, if any, and deletes its file. Audited as AVATAR_CHANGED when
    /// there was one.
    ///
    /// Errors: NOT_FOUND (`user`).
    pub async fn remove_avatar(&self, user: UserId, client: &ClientInfo) -> AppResult<User> {
        self.point_at(user, None, client).await
    }

    /// The stored file called `name`, or None when there is none.
    pub async fn read(&self, name: &AvatarName) -> AppResult<Option<Vec<u8>>> {
        match fs::read(self.dir.join(name.as_str())).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AppError::internal(e)),
        }
    }

    /// Sets the user's avatar column to `name` and records the change in one transaction, then
    /// deletes the file the column named before.
    async fn point_at(&self, user: UserId, name: Option<&AvatarName>, client: &ClientInfo) -> AppResult<User> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        repo::lock_user(&txn, user, now).await?;
        let (updated, previous) = repo::replace_avatar(&txn, user, name.map(AvatarName::as_str), now).await?;
        if name.is_some() || previous.is_some() {
            let action = if name.is_some() { "uploaded" } else { "removed" };
            let event = NewAuditEvent::new(AuditKind::AvatarChanged, now)
                .user(user)
                .actor(Some(user))
                .client(client)
                .detail(json!({ "action": action }));
            audit::record(&txn, event).await?;
        }
        txn.commit().await.map_err(AppError::internal)?;
        if let Some(previous) = previous.filter(|p| name.is_none_or(|n| n.as_str() != p)) {
            self.delete(&previous).await;
        }
        Ok(updated)
    }

    /// Writes `bytes` under `name`: to a temporary file first, synced, then renamed, so the
    /// name never refers to a partial file.
    async fn store(&self, name: &AvatarName, bytes: &[u8]) -> AppResult<()> {
        let temporary = self.dir.join(format!(".upload-{}", random_token()));
        let written = async {
            fs::create_dir_all(self.dir.as_path()).await?;
            let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temporary).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            fs::rename(&temporary, self.dir.join(name.as_str())).await
        }
        .await;
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary).await;
            return Err(AppError::internal(format!("cannot store an avatar in {}: {e}", self.dir.display())));
        }
        Ok(())
    }

    /// Deletes a stored file, logging (not failing) when it cannot: the change it follows has
    /// already been committed. Names not of our making are left alone.
    pub async fn delete(&self, name: &str) {
        let Some(name) = AvatarName::parse(name) else {
            tracing::warn!("an avatar column held a name idgate does not generate; no file deleted");
            return;
        };
        match fs::remove_file(self.dir.join(name.as_str())).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, file = name.as_str(), "could not delete a replaced avatar"),
        }
    }
}
