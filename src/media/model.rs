//! Avatar images and the names they are stored under.
//!
//! [`AvatarImage::parse`] is the only way bytes from a client become an avatar: the format is
//! decided by the file's magic bytes (never its name or declared content type), the decoder
//! refuses declared dimensions and allocations over fixed limits before it allocates the pixel
//! buffer (decompression bombs), and what is kept is a fresh PNG encoded from the pixels alone,
//! at most [`AVATAR_MAX_SIDE`] on a side. Nothing of the upload survives but its pixels: no
//! EXIF (GPS position, camera serial), no ICC or text chunks, no trailing bytes, so a polyglot
//! file (an image that is also HTML or a ZIP) comes out as only an image.

use std::io::Cursor;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits,
    codecs::png::{CompressionType, FilterType, PngEncoder},
};

use crate::{
    error::{AppError, AppResult},
    security::crypto::random_bytes,
};

/// Longest side of a stored avatar, in pixels; larger uploads are scaled down to fit.
pub const AVATAR_MAX_SIDE: u32 = 512;
/// Longest side an upload may declare, in pixels (checked before decoding).
pub const MAX_INPUT_SIDE: u32 = 8192;
/// Most memory the decoder may allocate for one upload, in bytes (checked before decoding):
/// 128 MiB holds a 44-megapixel RGB photo.
pub const MAX_DECODED_BYTES: u64 = 128 * 1024 * 1024;

/// The field errors name: the `file` argument of `uploadAvatar`.
const FIELD: &str = "file";
/// Random bytes in a stored name: 256 bits, so names cannot be guessed or enumerated.
const NAME_RANDOM_BYTES: usize = 32;
/// Base64url length of [`NAME_RANDOM_BYTES`] without padding.
const NAME_STEM_CHARS: usize = 43;

/// An avatar ready to store: PNG bytes re-encoded from decoded pixels, at most
/// [`AVATAR_MAX_SIDE`]×[`AVATAR_MAX_SIDE`].
#[derive(Debug, Clone)]
pub struct AvatarImage {
    png: Vec<u8>,
    width: u32,
    height: u32,
}

impl AvatarImage {
    /// Validates and re-encodes an upload of at most `max_bytes` bytes. CPU-heavy: call it
    /// on the blocking pool.
    ///
    /// Errors: BAD_USER_INPUT (`file`) when the upload is empty or too large, is not a PNG, JPEG
    /// or WebP image by its content, declares more than [`MAX_INPUT_SIDE`] pixels on a side or
    /// more than [`MAX_DECODED_BYTES`] of pixels, or does not decode.
    pub fn parse(bytes: &[u8], max_bytes: usize) -> AppResult<Self> {
        if bytes.is_empty() {
            return Err(AppError::bad_input(FIELD, "is empty"));
        }
        if bytes.len() > max_bytes {
            return Err(AppError::bad_input(FIELD, format!("must be at most {max_bytes} bytes")));
        }
        let format = match image::guess_format(bytes) {
            Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => format,
            _ => return Err(AppError::bad_input(FIELD, "must be a PNG, JPEG or WebP image")),
        };
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_INPUT_SIDE);
        limits.max_image_height = Some(MAX_INPUT_SIDE);
        limits.max_alloc = Some(MAX_DECODED_BYTES);
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        reader.limits(limits);
        // Building the decoder reads only the headers and checks the declared size against
        // the limits; the pixel buffer is allocated by `from_decoder`, after the checks.
        let mut decoder = reader.into_decoder().map_err(refusal)?;
        if decoder.total_bytes() > MAX_DECODED_BYTES {
            return Err(too_large());
        }
        let orientation = decoder.orientation().map_err(refusal)?;
        let decoded = DynamicImage::from_decoder(decoder).map_err(refusal)?;
        let mut image = if decoded.width() > AVATAR_MAX_SIDE || decoded.height() > AVATAR_MAX_SIDE {
            decoded.thumbnail(AVATAR_MAX_SIDE, AVATAR_MAX_SIDE)
        } else {
            decoded
        };
        // The EXIF orientation goes with the metadata, so it is applied to the pixels first
        // (after scaling, which is cheaper; the bounds are square, so they still hold).
        image.apply_orientation(orientation);
        // 8 bits per channel, RGB or RGBA: what every client renders.
        let image = if image.color().has_alpha() {
            DynamicImage::ImageRgba8(image.into_rgba8())
        } else {
            DynamicImage::ImageRgb8(image.into_rgb8())
        };
        let mut png = Vec::new();
        let encoder = PngEncoder::new_with_quality(&mut png, CompressionType::Default, FilterType::Adaptive);
        image.write_with_encoder(encoder).map_err(AppError::internal)?;
        Ok(Self { png, width: image.width(), height: image.height() })
    }

    /// The encoded file.
    pub fn bytes(&self) -> &[u8] {
        &self.png
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }
}

fn too_large() -> AppError {
    AppError::bad_input(
        FIELD,
        format!("must be at most {MAX_INPUT_SIDE}×{MAX_INPUT_SIDE} pixels and {} MiB decoded", MAX_DECODED_BYTES >> 20),
    )
}

/// A decoder failure as the client sees it: limits are "too large", anything else "not an image".
fn refusal(error: ImageError) -> AppError {
    match error {
        ImageError::Limits(_) => too_large(),
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::OutOfMemory => too_large(),
        _ => AppError::bad_input(FIELD, "is not a valid PNG, JPEG or WebP image"),
    }
}

/// The name a stored avatar goes by, on disk and in its URL: 256 random bits in base64url and
/// the `.png` extension. Only names of this shape are ever written, read or deleted, so a name
/// from a URL or the database cannot reach outside the media directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarName(String);

impl AvatarName {
    /// A fresh, unguessable name.
    pub fn generate() -> Self {
        Self(format!("{}.png", URL_SAFE_NO_PAD.encode(random_bytes(NAME_RANDOM_BYTES))))
    }

    /// The name, if `raw` has the shape [`generate`](Self::generate) produces; None otherwise
    /// (path separators, dots, other extensions, other lengths).
    pub fn parse(raw: &str) -> Option<Self> {
        let stem = raw.strip_suffix(".png")?;
        let shaped =
            stem.len() == NAME_STEM_CHARS && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The media type the file is served with.
    pub fn content_type(&self) -> &'static str {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage, codecs::jpeg::JpegEncoder};

    use super::*;

    const CAP: usize = 2 * 1024 * 1024;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255]));
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(image).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    /// A PNG whose header declares `width`×`height` but whose one IDAT chunk holds a few bytes.
    fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc32(&out[start..]).to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
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

    /// A 40×20 JPEG whose EXIF says "rotate 90° clockwise" and carries a telltale string.
    fn jpeg_with_exif() -> Vec<u8> {
        let image = RgbImage::from_pixel(40, 20, Rgb([200, 30, 30]));
        let mut exif = vec![0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0];
        exif.extend_from_slice(b"secret-gps-position");
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
        encoder.set_exif_metadata(exif).unwrap();
        encoder.write_image(image.as_raw(), 40, 20, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn field_error(result: AppResult<AvatarImage>) -> String {
        match result {
            Err(AppError::BadUserInput { field, message }) => format!("{field}: {message}"),
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn a_small_png_is_reencoded_at_its_size() {
        let avatar = AvatarImage::parse(&png(64, 48), CAP).unwrap();
        assert_eq!((avatar.width(), avatar.height()), (64, 48));
        assert_eq!(image::guess_format(avatar.bytes()).unwrap(), ImageFormat::Png);
    }

    #[test]
    fn a_large_image_is_scaled_to_fit_512_keeping_its_aspect_ratio() {
        let avatar = AvatarImage::parse(&png(2000, 1000), CAP).unwrap();
        assert_eq!((avatar.width(), avatar.height()), (512, 256));
        let decoded = image::load_from_memory(avatar.bytes()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (512, 256));
    }

    #[test]
    fn a_jpeg_loses_its_metadata_but_keeps_its_orientation() {
        let jpeg = jpeg_with_exif();
        assert!(contains(&jpeg, b"secret-gps-position"));
        let avatar = AvatarImage::parse(&jpeg, CAP).unwrap();
        assert!(!contains(avatar.bytes(), b"secret-gps-position"));
        assert!(!contains(avatar.bytes(), b"eXIf") && !contains(avatar.bytes(), b"Exif"));
        assert_eq!((avatar.width(), avatar.height()), (20, 40), "rotated upright");
        assert_eq!(image::guess_format(avatar.bytes()).unwrap(), ImageFormat::Png);
    }

    #[test]
    fn a_webp_is_accepted() {
        let mut webp = Vec::new();
        DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, Rgba([1, 2, 3, 255])))
            .write_to(&mut Cursor::new(&mut webp), ImageFormat::WebP)
            .unwrap();
        assert_eq!(AvatarImage::parse(&webp, CAP).unwrap().width(), 10);
    }

    #[test]
    fn bytes_after_the_image_do_not_survive() {
        let mut polyglot = png(8, 8);
        polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>");
        let avatar = AvatarImage::parse(&polyglot, CAP).unwrap();
        assert!(!contains(avatar.bytes(), b"<script>"));
    }

    #[test]
    fn text_is_not_an_image_whatever_it_is_called() {
        let error = field_error(AvatarImage::parse(b"hello, I am definitely a PNG", CAP));
        assert_eq!(error, "file: must be a PNG, JPEG or WebP image");
    }

    #[test]
    fn other_image_formats_are_refused() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(field_error(AvatarImage::parse(gif, CAP)).starts_with("file: must be a PNG"));
    }

    #[test]
    fn a_truncated_png_is_refused() {
        let whole = png(32, 32);
        let error = field_error(AvatarImage::parse(&whole[..whole.len() / 2], CAP));
        assert_eq!(error, "file: is not a valid PNG, JPEG or WebP image");
    }

    #[test]
    fn uploads_over_the_byte_cap_are_refused_before_decoding() {
        let error = field_error(AvatarImage::parse(&png(16, 16), 10));
        assert_eq!(error, "file: must be at most 10 bytes");
        assert_eq!(field_error(AvatarImage::parse(&[], CAP)), "file: is empty");
    }

    #[test]
    fn a_decompression_bomb_is_refused_by_its_declared_size() {
        let bomb = png_declaring(20_000, 20_000);
        assert!(bomb.len() < 100);
        assert!(field_error(AvatarImage::parse(&bomb, CAP)).starts_with("file: must be at most 8192×8192"));
        // Within the side limit, but 7000×7000 RGBA is 196 MB of pixels.
        let wide = png_declaring(7000, 7000);
        assert!(field_error(AvatarImage::parse(&wide, CAP)).starts_with("file: must be at most 8192×8192"));
    }

    #[test]
    fn generated_names_parse_and_nothing_else_does() {
        let name = AvatarName::generate();
        assert_eq!(name.as_str().len(), 47);
        assert_eq!(AvatarName::parse(name.as_str()), Some(name.clone()));
        assert_ne!(AvatarName::generate(), name);
        let stem = &name.as_str()[..43];
        for bad in [
            "../../etc/passwd",
            "..%2f..%2fetc%2fpasswd",
            &format!("{stem}.html"),
            &format!("{stem}.png.html"),
            &format!("../{}.png", &stem[3..]),
            &format!("{}/.png", &stem[..42]),
            &format!("{}.png", &stem[..42]),
            ".png",
            "",
        ] {
            assert_eq!(AvatarName::parse(bad), None, "{bad}");
        }
    }
}
