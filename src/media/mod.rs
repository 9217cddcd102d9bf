//! Avatars: `uploadAvatar` (a GraphQL multipart upload), `removeAvatar` and `User.avatarUrl`.
//!
//! An upload is accepted only as a PNG, JPEG or WebP image by its bytes, within a byte cap
//! (`IDGATE_AVATAR_MAX_BYTES`) and decoder limits that refuse decompression bombs before they
//! allocate; it is decoded, scaled to fit 512×512 and re-encoded as a PNG without metadata
//! (OWASP File Upload Cheat Sheet: "content validation", "image rewriting"). Files live in the
//! media directory (`IDGATE_MEDIA_DIR`) under unguessable names and are served read-only at
//! `/media/<name>`; the database keeps only the name.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
