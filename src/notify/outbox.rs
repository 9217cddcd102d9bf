//! The outbox directories of the embedded backends: one file per message, named so that a
//! listing sorts oldest first, and written under a hidden temporary name then renamed, so a
//! reader never sees half a message.

use std::path::Path;

use crate::error::{AppError, AppResult};

/// Writes `bytes` into `dir` as `<time>-<uuid>.<ext>` and returns that file name.
pub(crate) async fn write(dir: &Path, ext: &str, bytes: &[u8]) -> AppResult<String> {
    let name = format!("{}-{}.{ext}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4());
    let partial = dir.join(format!(".{name}.part"));
    tokio::fs::write(&partial, bytes).await.map_err(AppError::internal)?;
    tokio::fs::rename(&partial, dir.join(&name)).await.map_err(AppError::internal)?;
    Ok(name)
}
