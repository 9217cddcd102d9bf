//! Avatars: `uploadAvatar` over GraphQL multipart requests, `removeAvatar`, `User.avatarUrl`
//! and the files at /media. Test images are generated here with the `image` crate; the
//! decompression bomb is a hand-made PNG whose header declares 20000×20000 pixels.

use std::{io::Cursor, path::PathBuf};

use idgate::entity::audit_events;
use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage, codecs::jpeg::JpegEncoder};
use reqwest::{
    Response, StatusCode,
    multipart::{Form, Part},
};
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, error_code};

const UPLOAD: &str = "mutation($file: Upload!) { uploadAvatar(file: $file) { user { id avatarUrl } } }";
const REMOVE: &str = "mutation { removeAvatar { user { id avatarUrl } } }";

/// An app whose media directory (`<root>/media`) the test can look into.
struct AvatarApp {
    app: TestApp,
    root: TempDir,
}

impl AvatarApp {
    async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    async fn spawn_with(pairs: &[(&str, Value)]) -> Self {
        let root = TempDir::new().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut settings = vec![("media_dir", json!(root.path().join("media").display().to_string()))];
        settings.extend(pairs.iter().cloned());
        Self { app: TestApp::spawn_with(&settings).await, root }
    }

    /// The names of the files stored in the media directory.
    fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(""))
            .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join("media").join(name)
    }
}

/// Sends `bytes` as the `file` of `uploadAvatar` in a GraphQL multipart request.
async fn upload(app: &TestApp, token: Option<&str>, bytes: Vec<u8>, file_name: &str, content_type: &str) -> Response {
    let operations = json!({ "query": UPLOAD, "variables": { "file": null } });
    let part =
        Part::bytes(bytes).file_name(file_name.to_owned()).mime_str(content_type).unwrap_or_else(|e| panic!("{e}"));
    let form = Form::new()
        .text("operations", operations.to_string())
        .text("map", r#"{ "0": ["variables.file"] }"#)
        .part("0", part);
    let mut request = app.client.post(format!("{}/graphql", app.address)).multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap_or_else(|e| panic!("request failed: {e}"))
}

/// Uploads and returns the GraphQL answer, which must come with 200.
async fn upload_json(app: &TestApp, token: &str, bytes: Vec<u8>, file_name: &str, content_type: &str) -> Value {
    let response = upload(app, Some(token), bytes, file_name, content_type).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap_or_else(|e| panic!("not JSON: {e}"))
}

/// The stored file name an avatarUrl points at (served by this app: the public URL defaults to
/// the address it listens on).
fn file_of(app: &TestApp, url: &Value) -> String {
    let url = url.as_str().unwrap_or_else(|| panic!("no avatarUrl: {url}"));
    let public_media = format!("{}/media/", app.address);
    assert!(url.starts_with(&public_media), "{url}");
    url[public_media.len()..].to_owned()
}

async fn get_media(app: &TestApp, path: &str) -> Response {
    app.client.get(format!("{}/media/{path}", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"))
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255]));
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(image)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap_or_else(|e| panic!("encode: {e}"));
    out
}

/// A 300×200 JPEG whose EXIF block carries a telltale string (where a GPS position would be).
fn jpeg_with_metadata() -> Vec<u8> {
    let image = RgbImage::from_pixel(300, 200, Rgb([20, 120, 220]));
    let mut exif = vec![0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
    exif.extend_from_slice(b"telltale-gps-51.5007N-0.1246W");
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif).unwrap_or_else(|e| panic!("{e}"));
    encoder.write_image(image.as_raw(), 300, 200, image::ExtendedColorType::Rgb8).unwrap_or_else(|e| panic!("{e}"));
    out
}

/// A valid PNG structure whose header declares `width`×`height` RGBA pixels while its one
/// IDAT chunk holds eight bytes: a decoder that trusted the header would ask for
/// width × height × 4 bytes (1.6 GB for 20000×20000).
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&out[start..]).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_bad_file(answer: &Value) {
    assert_eq!(error_code(answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["field"], "file", "{answer}");
}

#[tokio::test]
async fn an_uploaded_png_is_reencoded_resized_and_served() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let answer = upload_json(app, &token, png(1024, 768), "me.png", "image/png").await;
    assert!(answer["errors"].is_null(), "{answer}");
    let name = file_of(app, &answer["data"]["uploadAvatar"]["user"]["avatarUrl"]);
    assert!(name.ends_with(".png") && name.len() == 47, "an unguessable generated name: {name}");
    assert_eq!(media.stored(), vec![name.clone()], "only the final file, no temporary one");

    let me = app.gql_as(&token, "{ me { avatarUrl } }", json!({})).await;
    assert_eq!(file_of(app, &me["data"]["me"]["avatarUrl"]), name);

    let response = get_media(app, &name).await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    let served = response.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    let image = image::load_from_memory_with_format(&served, ImageFormat::Png).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((image.width(), image.height()), (512, 384), "fits 512×512, aspect ratio kept");
    assert_eq!(served.as_ref(), std::fs::read(media.path(&name)).unwrap_or_default().as_slice());
}

#[tokio::test]
async fn a_jpeg_is_stored_as_a_png_without_its_metadata() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let jpeg = jpeg_with_metadata();
    assert!(contains(&jpeg, b"telltale-gps"));
    let answer = upload_json(app, &token, jpeg, "holiday.jpg", "image/jpeg").await;
    assert!(answer["errors"].is_null(), "{answer}");
    let name = file_of(app, &answer["data"]["uploadAvatar"]["user"]["avatarUrl"]);
    let response = get_media(app, &name).await;
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
    let served = response.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!contains(&served, b"telltale-gps"), "metadata must not survive");
    let image = image::load_from_memory(&served).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((image.width(), image.height()), (300, 200), "small images keep their size");
}

#[tokio::test]
async fn a_second_upload_replaces_the_first_and_deletes_its_file() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let first = upload_json(app, &token, png(64, 64), "a.png", "image/png").await;
    let first = file_of(app, &first["data"]["uploadAvatar"]["user"]["avatarUrl"]);
    let second = upload_json(app, &token, png(80, 80), "b.png", "image/png").await;
    let second = file_of(app, &second["data"]["uploadAvatar"]["user"]["avatarUrl"]);
    assert_ne!(first, second, "a new name for new content: cached copies never go stale");
    assert_eq!(media.stored(), vec![second.clone()]);
    assert_eq!(get_media(app, &first).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get_media(app, &second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_text_file_named_like_a_png_is_refused() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let answer =
        upload_json(app, &token, b"<html><script>alert(1)</script></html>".to_vec(), "avatar.png", "image/png").await;
    assert_bad_file(&answer);
    assert!(media.stored().is_empty(), "{:?}", media.stored());
    let me = app.gql_as(&token, "{ me { avatarUrl } }", json!({})).await;
    assert!(me["data"]["me"]["avatarUrl"].is_null(), "{me}");
}

#[tokio::test]
async fn a_file_over_the_size_cap_is_refused() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    // A valid PNG followed by junk, 3 MiB in all: over the default 2 MiB cap.
    let mut big = png(16, 16);
    big.resize(3 * 1024 * 1024, 0x42);
    let response = upload(app, Some(&token), big, "big.png", "image/png").await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(media.stored().is_empty());
}

#[tokio::test]
async fn the_size_cap_is_configurable() {
    let media = AvatarApp::spawn_with(&[("avatar_max_bytes", json!(1000))]).await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let small = png(4, 4);
    assert!(small.len() < 1000);
    let answer = upload_json(app, &token, small, "small.png", "image/png").await;
    assert!(answer["errors"].is_null(), "{answer}");
    let mut over = png(4, 4);
    over.resize(1001, 0);
    let response = upload(app, Some(&token), over, "over.png", "image/png").await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(media.stored().len(), 1);
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_by_its_declared_size() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let bomb = png_declaring(20_000, 20_000);
    assert!(bomb.len() < 100, "a tiny file declaring 1.6 GB of pixels");
    let answer = upload_json(app, &token, bomb, "bomb.png", "image/png").await;
    assert_bad_file(&answer);
    // Within the side limit, but 7000×7000 RGBA is 196 MB: over the decoder's allocation limit.
    let wide = upload_json(app, &token, png_declaring(7000, 7000), "wide.png", "image/png").await;
    assert_bad_file(&wide);
    assert!(media.stored().is_empty());
    // The server is still answering normally.
    let me = app.gql_as(&token, "{ me { avatarUrl } }", json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
}

#[tokio::test]
async fn remove_avatar_clears_the_url_and_deletes_the_file() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let answer = upload_json(app, &token, png(32, 32), "a.png", "image/png").await;
    let name = file_of(app, &answer["data"]["uploadAvatar"]["user"]["avatarUrl"]);
    let removed = app.gql_as(&token, REMOVE, json!({})).await;
    assert!(removed["errors"].is_null(), "{removed}");
    assert!(removed["data"]["removeAvatar"]["user"]["avatarUrl"].is_null(), "{removed}");
    assert!(media.stored().is_empty());
    assert_eq!(get_media(app, &name).await.status(), StatusCode::NOT_FOUND);
    let again = app.gql_as(&token, REMOVE, json!({})).await;
    assert!(again["errors"].is_null(), "removing no avatar is a no-op: {again}");
}

#[tokio::test]
async fn uploads_and_removals_are_audited() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let answer = upload_json(app, &token, png(32, 32), "a.png", "image/png").await;
    let user_id = answer["data"]["uploadAvatar"]["user"]["id"].as_str().unwrap_or_default().to_owned();
    app.gql_as(&token, REMOVE, json!({})).await;
    app.gql_as(&token, REMOVE, json!({})).await;
    let db = Database::connect(&app.database_url).await.unwrap_or_else(|e| panic!("connect: {e}"));
    let events = audit_events::Entity::find()
        .filter(audit_events::Column::Kind.eq("AVATAR_CHANGED"))
        .filter(audit_events::Column::UserId.eq(uuid::Uuid::parse_str(&user_id).unwrap_or_else(|e| panic!("{e}"))))
        .count(&db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events, 2, "one upload and one removal; removing nothing records nothing");
}

#[tokio::test]
async fn uploads_need_a_signed_in_caller() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let anonymous = upload(app, None, png(8, 8), "a.png", "image/png").await;
    assert_eq!(anonymous.status(), StatusCode::BAD_REQUEST, "a multipart request without a bearer header");
    let forged = upload(app, Some("not-a-token"), png(8, 8), "a.png", "image/png").await;
    assert_eq!(forged.status(), StatusCode::OK);
    let forged: Value = forged.json().await.unwrap_or_default();
    assert_eq!(error_code(&forged), "UNAUTHENTICATED", "{forged}");
    let removed = app.gql(REMOVE, json!({})).await;
    assert_eq!(error_code(&removed), "UNAUTHENTICATED", "{removed}");
    assert!(media.stored().is_empty());
}

#[tokio::test]
async fn a_multipart_request_carries_one_file_and_no_batch() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let url = format!("{}/graphql", app.address);
    let file = |name: &str| Part::bytes(png(8, 8)).file_name(name.to_owned());
    let two = Form::new()
        .text("operations", json!({ "query": UPLOAD, "variables": { "file": null, "other": null } }).to_string())
        .text("map", r#"{ "0": ["variables.file"], "1": ["variables.other"] }"#)
        .part("0", file("a.png"))
        .part("1", file("b.png"));
    let response =
        app.client.post(&url).bearer_auth(&token).multipart(two).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let batch = Form::new()
        .text("operations", json!([{ "query": UPLOAD, "variables": { "file": null } }]).to_string())
        .text("map", r#"{ "0": ["0.variables.file"] }"#)
        .part("0", file("a.png"));
    let response =
        app.client.post(&url).bearer_auth(&token).multipart(batch).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(media.stored().is_empty());
}

#[tokio::test]
async fn an_upload_value_that_names_no_sent_file_is_refused() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    let token = app.signed_in("alice@example.com").await.access;
    let url = format!("{}/graphql", app.address);
    // Placeholders only the multipart parser may write, forged in JSON variables and literals.
    for body in [
        json!({ "query": UPLOAD, "variables": { "file": "#__graphql_file__:0" } }),
        json!({ "query": UPLOAD, "variables": { "file": "#__graphql_file__:x" } }),
        json!({ "query": "mutation { uploadAvatar(file: \"#__graphql_file__:7\") { user { id } } }" }),
        json!({ "query": "mutation { uploadAvatar(file: \"\\u0023__graphql_file__:x\") { user { id } } }" }),
    ] {
        let response =
            app.client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let me = app.gql_as(&token, "{ me { avatarUrl } }", json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
}

/// Sends a request line as written, without the client normalising the path.
async fn raw_get(app: &TestApp, target: &str) -> String {
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap_or_else(|e| panic!("{e}"));
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap_or_else(|e| panic!("{e}"));
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn media_paths_other_than_stored_avatars_are_404() {
    let media = AvatarApp::spawn().await;
    let app = &media.app;
    // Files in the media directory that idgate did not name, and files beside it, stay unreachable.
    std::fs::create_dir_all(media.path("")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(media.path("notes.txt"), "secret").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(media.path(&format!(".upload-{}", "C".repeat(43))), "partial").unwrap_or_else(|e| panic!("{e}"));
    let sibling = format!("{}.png", "A".repeat(43));
    std::fs::write(media.root.path().join(&sibling), "not in the media dir").unwrap_or_else(|e| panic!("{e}"));
    for path in [
        "notes.txt",
        &format!(".upload-{}", "C".repeat(43)),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fetc%2Fpasswd",
        &format!("..%2F{sibling}"),
        &format!("%2e%2e/{sibling}"),
        &format!("{}.png", "B".repeat(43)),
        &format!("{}.PNG", "B".repeat(43)),
        "",
    ] {
        assert_eq!(get_media(app, path).await.status(), StatusCode::NOT_FOUND, "/media/{path}");
    }
    for target in ["/media/../../etc/passwd", "/media/../Cargo.toml", "/media/..%2f..%2fetc%2fpasswd"] {
        let status = raw_get(app, target).await;
        assert!(status.contains(" 404 "), "{target}: {status}");
    }
}
