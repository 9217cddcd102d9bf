//! The outbox directories of the embedded backends: one file per message, named so that a
//! listing sorts oldest first, and written under a hidden temporary name then renamed, so a
//! reader never sees half a message.

use std::path::Path;

use crate::error::{AppError, AppResult};

/// Writes `bytes` into `dir` as `<time>-<uuid>.<ext>` and returns that file name. The write
/// and the rename are one job on the blocking pool: a mail is sent on the request path (a login
/// waits for its code to be out), and each hand-off to another thread costs that request.
pub(crate) async fn write(dir: &Path, ext: &str, bytes: Vec<u8>) -> AppResult<String> {
    let name = format!("{}-{}.{ext}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4());
    let (partial, done) = (dir.join(format!(".{name}.part")), dir.join(&name));
    tokio::task::spawn_blocking(move || {
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &done)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    Ok(name)
}
