//! The outbox directories of the embedded backends: one file per message, named so that a
//! listing sorts oldest first, and written under a hidden temporary name then renamed, so a
//! reader never sees half a message.

use std::path::Path;

use crate::error::{AppError, AppResult};

/// Writes `bytes` into `dir` as `<time>-<uuid>.<ext>` and returns that file name, on the
/// request's own thread: a few kilobytes into the page cache, not synced, as the inline SQLite
/// statements write theirs. A mail is sent on the request path (a login waits for its code to
/// be out), and a job on the blocking pool took two thread wake-ups a mail, each a core taken
/// from hashing (0.06-0.1 ms of the machine a login, measured under a login flood).
pub(crate) fn write(dir: &Path, ext: &str, bytes: Vec<u8>) -> AppResult<String> {
    let name = format!("{}-{}.{ext}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4());
    let (partial, done) = (dir.join(format!(".{name}.part")), dir.join(&name));
    std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, &done)).map_err(AppError::internal)?;
    Ok(name)
}
