//! The texts of outgoing messages, rendered with minijinja from `templates/<locale>/<name>.<ext>`:
//! `.subject` and `.txt` in plain text, `.html` autoescaped. Every `.html` extends its locale's
//! `layout.html` (the document, its styles and the "not you" footer), filling the blocks `title`,
//! `heading`, `content` and `footer`. The defaults are compiled into the binary; an operator may
//! replace any of them, the layouts included, from an override directory holding the same tree.
//! Overrides are read, compiled and test-rendered once at start, so a broken template stops the
//! server with the file's name instead of failing a login later.
//!
//! Locales: English (`en`, the fallback) and Spanish (`es`). Every mail says which product sent
//! it, gives the code and/or link with its expiry, and says what to do if it wasn't the reader.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};

use super::mail::OutgoingMail;
use crate::{
    error::{AppError, AppResult},
    telemetry,
};

/// A message to render; each variant has its own template name. Holds codes: no `Debug`, so it
/// cannot end up in a log by accident.
#[derive(Clone, Copy)]
pub enum Message<'a> {
    /// The code that completes a login (`login_code`).
    LoginCode { product: &'a str, code: &'a str, minutes: u64 },
    /// Sent to an existing account when someone registers with its address
    /// (`registration_attempt`), instead of telling the registrant the address is taken.
    RegistrationAttempt { product: &'a str },
    /// Confirms an email address by code or link (`verify_email`).
    VerifyEmail { product: &'a str, code: &'a str, link: &'a str, minutes: u64 },
    /// Tells the old address that a change to `new_email` (already masked) was requested
    /// (`email_change_requested`).
    EmailChangeRequested { product: &'a str, new_email: &'a str },
    /// A password reset by code or link (`password_reset`).
    PasswordReset { product: &'a str, code: &'a str, link: &'a str, minutes: u64 },
    /// The password was changed (`password_changed`).
    PasswordChanged { product: &'a str },
    /// The account locked after repeated failed logins, until `until` (`account_locked`); the
    /// link resets the password, which also unlocks.
    AccountLocked { product: &'a str, until: &'a str, link: &'a str, minutes: u64 },
    /// Someone proved this address through `provider` and so took over an account whose address
    /// was never verified; the password, phone and other sign-ins set up on it were removed
    /// (`account_claimed`).
    AccountClaimed { product: &'a str, provider: &'a str },
    /// A phone verification code; SMS only, so it has just a `.txt` template (`phone_code`).
    PhoneCode { product: &'a str, code: &'a str, minutes: u64 },
}

impl Message<'_> {
    /// Whether the message carries a one-time code (counted as sent when rendered for sending).
    fn carries_code(&self) -> bool {
        matches!(
            self,
            Self::LoginCode { .. } | Self::VerifyEmail { .. } | Self::PasswordReset { .. } | Self::PhoneCode { .. }
        )
    }

    /// The template name: `templates/<locale>/<name>.<ext>`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LoginCode { .. } => "login_code",
            Self::RegistrationAttempt { .. } => "registration_attempt",
            Self::VerifyEmail { .. } => "verify_email",
            Self::EmailChangeRequested { .. } => "email_change_requested",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged { .. } => "password_changed",
            Self::PhoneCode { .. } => "phone_code",
            Self::AccountLocked { .. } => "account_locked",
            Self::AccountClaimed { .. } => "account_claimed",
        }
    }

    fn context(&self) -> Value {
        match *self {
            Self::LoginCode { product, code, minutes } | Self::PhoneCode { product, code, minutes } => {
                context! { product, code, minutes }
            }
            Self::RegistrationAttempt { product } | Self::PasswordChanged { product } => context! { product },
            Self::VerifyEmail { product, code, link, minutes }
            | Self::PasswordReset { product, code, link, minutes } => context! { product, code, link, minutes },
            Self::EmailChangeRequested { product, new_email } => context! { product, new_email },
            Self::AccountLocked { product, until, link, minutes } => context! { product, until, link, minutes },
            Self::AccountClaimed { product, provider } => context! { product, provider },
        }
    }
}

/// One message of each kind, rendered at construction to catch templates that compile but
/// cannot render (an unknown variable or filter).
const SAMPLES: [Message<'static>; 9] = [
    Message::LoginCode { product: "idgate", code: "123456", minutes: 10 },
    Message::RegistrationAttempt { product: "idgate" },
    Message::VerifyEmail { product: "idgate", code: "123456", link: "https://example.com/v?a=1&b=2", minutes: 10 },
    Message::EmailChangeRequested { product: "idgate", new_email: "n***@example.com" },
    Message::PasswordReset { product: "idgate", code: "123456", link: "https://example.com/r?a=1&b=2", minutes: 10 },
    Message::PasswordChanged { product: "idgate" },
    Message::PhoneCode { product: "idgate", code: "123456", minutes: 10 },
    Message::AccountLocked {
        product: "idgate",
        until: "2026-11-29 10:00 UTC",
        link: "https://example.com/r?a=1&b=2",
        minutes: 30,
    },
    Message::AccountClaimed { product: "idgate", provider: "GitHub" },
];

/// `("<locale>/<name>.<ext>", source)` for one built-in template file.
macro_rules! builtin {
    ($locale:literal, $name:literal, $ext:literal) => {
        (
            concat!($locale, "/", $name, ".", $ext),
            include_str!(concat!("../../templates/", $locale, "/", $name, ".", $ext)),
        )
    };
}

/// Every built-in template: the HTML layout of each locale, then the messages. Mail messages
/// have a subject, a text and an HTML part in each locale; SMS messages only a text.
macro_rules! builtins {
    (mail: [$($mail:literal),*], sms: [$($sms:literal),*]) => {
        &[
            builtin!("en", "layout", "html"), builtin!("es", "layout", "html"),
            $(
                builtin!("en", $mail, "subject"), builtin!("en", $mail, "txt"), builtin!("en", $mail, "html"),
                builtin!("es", $mail, "subject"), builtin!("es", $mail, "txt"), builtin!("es", $mail, "html"),
            )*
            $( builtin!("en", $sms, "txt"), builtin!("es", $sms, "txt"), )*
        ]
    };
}

const BUILTIN: &[(&str, &str)] = builtins!(
    mail: [
        "login_code",
        "registration_attempt",
        "verify_email",
        "email_change_requested",
        "password_reset",
        "password_changed",
        "account_locked",
        "account_claimed"
    ],
    sms: ["phone_code"]
);

/// The locales with templates; the first is the fallback.
const LOCALES: [&str; 2] = ["en", "es"];

/// The name of the HTML layout that every `<locale>/<name>.html` extends (`<locale>/layout.html`);
/// it is no message of its own.
const LAYOUT: &str = "layout";

/// The compiled templates. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Templates {
    /// Compiles the built-in templates, each replaced by `<dir>/<locale>/<name>.<ext>` when
    /// `override_dir` holds that file (`<dir>/<locale>/layout.html` replaces the layout of every
    /// HTML part that extends it). Unknown files there are logged and ignored.
    ///
    /// Errors: INTERNAL naming the file when an override cannot be read, compiled or rendered
    /// (a layout must render with every message's values).
    pub fn new(override_dir: Option<PathBuf>) -> AppResult<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        let mut origins = Vec::with_capacity(BUILTIN.len());
        for &(key, source) in BUILTIN {
            let file = override_dir.as_deref().map(|dir| dir.join(key)).filter(|path| path.is_file());
            match file {
                Some(path) => {
                    let source = std::fs::read_to_string(&path).map_err(|e| broken(&path, e))?;
                    env.add_template_owned(key, source).map_err(|e| broken(&path, e))?;
                    origins.push((key, Some(path)));
                }
                None => {
                    env.add_template(key, source).map_err(|e| AppError::internal(format!("template {key}: {e}")))?;
                    origins.push((key, None));
                }
            }
        }
        for &(key, _) in &origins {
            trial_render(&env, key).map_err(|e| blame(&origins, key, e))?;
        }
        if let Some(dir) = &override_dir {
            warn_about_unknown_files(dir)?;
        }
        Ok(Self { env: Arc::new(env) })
    }

    /// Renders a mail (subject, text and HTML) for `to` in the locale closest to `locale`.
    ///
    /// Errors: INTERNAL when the message has no mail templates (an SMS-only message) or fails to
    /// render.
    pub fn render(&self, message: Message<'_>, locale: Option<&str>, to: &str) -> AppResult<OutgoingMail> {
        if message.carries_code() {
            telemetry::metrics().code_sent("email");
        }
        let locale = pick_locale(locale);
        let context = message.context();
        let subject = self.render_one(locale, message.name(), "subject", &context)?;
        Ok(OutgoingMail {
            to: to.to_owned(),
            // One line, whatever an override does: headers cannot carry newlines.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.render_one(locale, message.name(), "txt", &context)?,
            html: self.render_one(locale, message.name(), "html", &context)?,
        })
    }

    /// Renders the text of an SMS (the message's `.txt` template) in the locale closest to
    /// `locale`. [`Message::PhoneCode`] is the one written for SMS (one line, for any code sent
    /// to a phone); any other message gives its mail text.
    ///
    /// Errors: INTERNAL when the template fails to render.
    pub fn render_sms(&self, message: Message<'_>, locale: Option<&str>) -> AppResult<String> {
        if message.carries_code() {
            telemetry::metrics().code_sent("sms");
        }
        let text = self.render_one(pick_locale(locale), message.name(), "txt", &message.context())?;
        Ok(text.trim().to_owned())
    }

    fn render_one(&self, locale: &str, name: &str, ext: &str, context: &Value) -> AppResult<String> {
        let key = format!("{locale}/{name}.{ext}");
        let template = self.env.get_template(&key).map_err(AppError::internal)?;
        template.render(context).map_err(AppError::internal)
    }
}

/// `es` for any Spanish tag (`es`, `es-MX`, `es_AR`), else `en`.
fn pick_locale(tag: Option<&str>) -> &'static str {
    let primary = tag.and_then(|tag| tag.split(['-', '_']).next()).unwrap_or_default();
    LOCALES.into_iter().find(|locale| primary.eq_ignore_ascii_case(locale)).unwrap_or(LOCALES[0])
}

fn broken(path: &Path, error: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("mail template {}: {error}", path.display()))
}

/// The error of a trial render of `key`, naming the file at fault: the override the error arose
/// in (a layout, when `key` extends it), else `key`'s own override, else the built-in `key`.
fn blame(origins: &[(&str, Option<PathBuf>)], key: &str, error: minijinja::Error) -> AppError {
    let override_of =
        |name: &str| origins.iter().find(|(known, _)| *known == name).and_then(|(_, path)| path.as_deref());
    match error.name().and_then(override_of).or_else(|| override_of(key)) {
        Some(path) => broken(path, error),
        None => AppError::internal(format!("template {key}: {error}")),
    }
}

/// Renders the template `key` with the sample of its message, or a layout with every sample.
fn trial_render(env: &Environment<'static>, key: &str) -> Result<(), minijinja::Error> {
    let name = key.split(['/', '.']).nth(1).unwrap_or_default();
    let template = env.get_template(key)?;
    for sample in SAMPLES.iter().filter(|sample| name == LAYOUT || sample.name() == name) {
        template.render(sample.context())?;
    }
    Ok(())
}

/// Logs every file in the override directory that replaces no template (a typo in a name would
/// otherwise go unnoticed).
fn warn_about_unknown_files(dir: &Path) -> AppResult<()> {
    let known: HashSet<&str> = BUILTIN.iter().map(|(key, _)| *key).collect();
    let entries = std::fs::read_dir(dir).map_err(|e| broken(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| broken(dir, e))?.path();
        let locale = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !path.is_dir() || !LOCALES.contains(&locale.as_str()) {
            tracing::warn!(path = %path.display(), "ignored in the template directory: not a locale folder (en, es)");
            continue;
        }
        for file in std::fs::read_dir(&path).map_err(|e| broken(&path, e))? {
            let file = file.map_err(|e| broken(&path, e))?.path();
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !known.contains(format!("{locale}/{name}").as_str()) {
                tracing::warn!(path = %file.display(), "ignored in the template directory: no template has this name");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://id.example.com/verify?token=abc&next=/home";

    fn templates() -> Templates {
        Templates::new(None).expect("built-in templates compile")
    }

    fn with_code(name: &str) -> Message<'static> {
        match name {
            "login_code" => Message::LoginCode { product: "Acme", code: "482913", minutes: 10 },
            "verify_email" => Message::VerifyEmail { product: "Acme", code: "482913", link: LINK, minutes: 30 },
            "password_reset" => Message::PasswordReset { product: "Acme", code: "482913", link: LINK, minutes: 15 },
            _ => Message::PhoneCode { product: "Acme", code: "482913", minutes: 5 },
        }
    }

    fn all_mail() -> Vec<Message<'static>> {
        vec![
            with_code("login_code"),
            Message::RegistrationAttempt { product: "Acme" },
            with_code("verify_email"),
            Message::EmailChangeRequested { product: "Acme", new_email: "b***@example.org" },
            with_code("password_reset"),
            Message::PasswordChanged { product: "Acme" },
            Message::AccountLocked { product: "Acme", until: "2026-11-29 10:00 UTC", link: LINK, minutes: 30 },
        ]
    }

    #[test]
    fn every_mail_renders_in_both_locales_with_product_and_a_what_if_not_you_line() {
        let templates = templates();
        for message in all_mail() {
            for (locale, not_you) in [("en", "you"), ("es-MX", "no ")] {
                let mail = templates.render(message, Some(locale), "a@example.com").expect("renders");
                assert_eq!(mail.to, "a@example.com");
                assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'), "{}", mail.subject);
                for part in [&mail.text, &mail.html] {
                    assert!(part.contains("Acme"), "{} {locale}: {part}", message.name());
                    assert!(part.contains(not_you), "{} {locale}: {part}", message.name());
                }
                assert!(mail.html.starts_with("<!DOCTYPE html>"), "{}", message.name());
            }
        }
    }

    #[test]
    fn code_messages_carry_the_code_and_expiry_in_text_and_html() {
        let templates = templates();
        for name in ["login_code", "verify_email", "password_reset"] {
            for locale in ["en", "es"] {
                let mail = templates.render(with_code(name), Some(locale), "a@example.com").expect("renders");
                assert!(mail.text.contains("482913") && mail.html.contains("482913"), "{name} {locale}");
                let minutes = match name {
                    "login_code" => "10 minut",
                    "verify_email" => "30 minut",
                    _ => "15 minut",
                };
                assert!(mail.text.contains(minutes) && mail.html.contains(minutes), "{name} {locale}");
            }
            let en = templates.render(with_code(name), None, "a@example.com").expect("renders");
            assert!(en.text.contains("code is 482913"), "{name}: {}", en.text);
        }
    }

    #[test]
    fn the_english_login_code_reads_as_tests_and_people_expect() {
        let mail = templates().render(with_code("login_code"), Some("en"), "a@example.com").expect("renders");
        assert_eq!(mail.subject, "Your Acme sign-in code");
        assert!(mail.text.starts_with("Your Acme sign-in code is 482913\n"), "{}", mail.text);
    }

    /// English lines keep to 72 characters, under the 76 past which a part must be
    /// quoted-printable, so these mails travel as they read (encoding them cost a login as much
    /// as its SQL did), with room for a longer product name.
    /// Links are as long as their tokens make them: the mails that carry one may be encoded.
    #[test]
    fn english_mails_without_a_link_go_out_as_plain_seven_bit_text() {
        let templates = templates();
        let from: lettre::message::Mailbox = "idgate <no-reply@example.com>".parse().expect("mailbox");
        let without_link = [
            with_code("login_code"),
            Message::RegistrationAttempt { product: "Acme" },
            Message::EmailChangeRequested { product: "Acme", new_email: "b***@example.org" },
            Message::PasswordChanged { product: "Acme" },
            Message::AccountClaimed { product: "Acme", provider: "GitHub" },
        ];
        for message in without_link {
            let mail = templates.render(message, Some("en"), "a@example.com").expect("renders");
            for part in [&mail.text, &mail.html] {
                let long = part.lines().find(|line| line.len() > 72);
                assert_eq!(long, None, "{}", message.name());
            }
            let raw = String::from_utf8(crate::notify::mail::render(&from, &mail).expect("builds")).expect("ascii");
            assert_eq!(raw.matches("Content-Transfer-Encoding: 7bit").count(), 2, "{}: {raw}", message.name());
            assert!(raw.contains("Your Acme sign-in code is 482913") || message.name() != "login_code", "{raw}");
        }
    }

    #[test]
    fn the_spanish_login_code_has_the_sentence_and_the_bare_code() {
        let mail = templates().render(with_code("login_code"), Some("es"), "a@example.com").expect("renders");
        assert!(mail.text.contains("Tu código de acceso a Acme es 482913"), "{}", mail.text);
        assert!(mail.text.lines().any(|line| line.trim() == "482913"), "{}", mail.text);
    }

    #[test]
    fn links_are_escaped_in_html_and_verbatim_in_text() {
        let templates = templates();
        for name in ["verify_email", "password_reset"] {
            for locale in ["en", "es"] {
                let mail = templates.render(with_code(name), Some(locale), "a@example.com").expect("renders");
                assert!(mail.text.contains(LINK), "{name} {locale}: {}", mail.text);
                assert!(mail.html.contains("token=abc&amp;next="), "{name} {locale}: {}", mail.html);
                assert!(!mail.html.contains("token=abc&next="), "{name} {locale}");
            }
        }
    }

    #[test]
    fn values_are_html_escaped_only_in_html() {
        let message = Message::EmailChangeRequested { product: "A<b>", new_email: "x<y>@example.com" };
        let mail = templates().render(message, None, "a@example.com").expect("renders");
        assert!(mail.html.contains("A&lt;b&gt;") && !mail.html.contains("A<b>"));
        assert!(mail.html.contains("x&lt;y&gt;@example.com"));
        assert!(mail.text.contains("A<b>") && mail.subject.contains("A<b>"));
    }

    #[test]
    fn the_registration_attempt_subject_names_the_product() {
        let mail = templates().render(Message::RegistrationAttempt { product: "Acme" }, None, "a@example.com");
        let mail = mail.expect("renders");
        assert_eq!(mail.subject, "Someone tried to create a Acme account with your address");
    }

    #[test]
    fn the_email_change_notice_names_the_masked_new_address() {
        let message = Message::EmailChangeRequested { product: "Acme", new_email: "b***@example.org" };
        for locale in ["en", "es"] {
            let mail = templates().render(message, Some(locale), "old@example.com").expect("renders");
            assert!(mail.text.contains("b***@example.org") && mail.html.contains("b***@example.org"));
        }
    }

    #[test]
    fn the_phone_code_is_a_one_line_sms_in_both_locales() {
        let templates = templates();
        let en = templates.render_sms(with_code("phone_code"), Some("en-US")).expect("renders");
        assert_eq!(en, "Your Acme code is 482913. It expires in 5 minutes.");
        let es = templates.render_sms(with_code("phone_code"), Some("es")).expect("renders");
        assert_eq!(es, "Tu código de Acme es 482913. Caduca en 5 minutos.");
    }

    #[test]
    fn the_phone_code_has_no_mail_form() {
        assert!(templates().render(with_code("phone_code"), None, "a@example.com").is_err());
    }

    #[test]
    fn one_minute_is_singular() {
        let message = Message::PhoneCode { product: "Acme", code: "482913", minutes: 1 };
        let sms = templates().render_sms(message, None).expect("renders");
        assert!(sms.ends_with("in 1 minute."), "{sms}");
    }

    #[test]
    fn spanish_is_picked_for_any_spanish_tag_and_english_otherwise() {
        assert_eq!(pick_locale(Some("es")), "es");
        assert_eq!(pick_locale(Some("es-MX")), "es");
        assert_eq!(pick_locale(Some("ES_ar")), "es");
        assert_eq!(pick_locale(Some("en-GB")), "en");
        assert_eq!(pick_locale(Some("fr")), "en");
        assert_eq!(pick_locale(Some("esu")), "en");
        assert_eq!(pick_locale(Some("")), "en");
        assert_eq!(pick_locale(None), "en");
    }

    #[test]
    fn an_override_replaces_only_its_own_template() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("es")).expect("mkdir");
        std::fs::write(dir.path().join("es/login_code.subject"), "Código de {{ product }}: ¡úsalo ya!\n")
            .expect("write");
        let templates = Templates::new(Some(dir.path().to_path_buf())).expect("compiles");
        let es = templates.render(with_code("login_code"), Some("es"), "a@example.com").expect("renders");
        assert_eq!(es.subject, "Código de Acme: ¡úsalo ya!");
        assert!(es.text.contains("Tu código de acceso a Acme es 482913"));
        let en = templates.render(with_code("login_code"), Some("en"), "a@example.com").expect("renders");
        assert_eq!(en.subject, "Your Acme sign-in code");
    }

    #[test]
    fn an_html_override_is_autoescaped_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("en")).expect("mkdir");
        std::fs::write(dir.path().join("en/password_changed.html"), "<p>{{ product }}</p>").expect("write");
        let templates = Templates::new(Some(dir.path().to_path_buf())).expect("compiles");
        let mail = templates.render(Message::PasswordChanged { product: "A&B" }, None, "a@example.com");
        assert_eq!(mail.expect("renders").html, "<p>A&amp;B</p>");
    }

    #[test]
    fn a_broken_override_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("en")).expect("mkdir");
        std::fs::write(dir.path().join("en/verify_email.html"), "<p>{{ code </p>").expect("write");
        let error = Templates::new(Some(dir.path().to_path_buf())).err().expect("refused");
        let detail = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        assert!(detail.contains("verify_email.html"), "{detail}");
    }

    #[test]
    fn an_override_using_an_unknown_variable_is_refused_at_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("en")).expect("mkdir");
        std::fs::write(dir.path().join("en/phone_code.txt"), "{{ product }} {{ cod }}").expect("write");
        let error = Templates::new(Some(dir.path().to_path_buf())).err().expect("refused");
        let detail = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        assert!(detail.contains("phone_code.txt"), "{detail}");
    }

    #[test]
    fn every_message_kind_has_a_sample_for_the_trial_render() {
        for (key, _) in BUILTIN {
            let name = key.split(['/', '.']).nth(1).unwrap_or_default();
            assert!(name == LAYOUT || SAMPLES.iter().any(|s| s.name() == name), "{key}");
        }
    }

    #[test]
    fn every_html_mail_is_wrapped_in_its_locale_layout() {
        let templates = templates();
        for message in all_mail() {
            for locale in ["en", "es"] {
                let html = templates.render(message, Some(locale), "a@example.com").expect("renders").html;
                assert!(html.starts_with(&format!("<!DOCTYPE html>\n<html lang=\"{locale}\">\n")), "{html}");
                assert!(
                    html.contains("<title>Acme</title>") && html.ends_with("</p>\n</div>\n</body>\n</html>"),
                    "{html}"
                );
                assert!(html.contains("font-weight:bold;\">Acme</p>\n<p style=\"margin:0 0 16px;"), "{html}");
                assert!(html.contains("border-top:1px solid #e4e4e7; font-size:14px; color:#52525b;\">\n"), "{html}");
                assert!(!html.contains("{%") && !html.contains("\n\n"), "{html}");
            }
        }
    }

    /// An override directory holding `files`, as `(path under it, contents)`.
    fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, contents) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("in a locale")).expect("mkdir");
            std::fs::write(path, contents).expect("write");
        }
        dir
    }

    #[test]
    fn a_layout_override_applies_to_every_message_of_its_locale() {
        let layout = "<main><h1>{{ product }}</h1>{% block content %}{% endblock %}\
            <footer>{% block footer %}{% endblock %}</footer></main>";
        let dir = override_dir(&[("en/layout.html", layout)]);
        let templates = Templates::new(Some(dir.path().to_path_buf())).expect("compiles");
        for message in all_mail() {
            let en = templates.render(message, Some("en"), "a@example.com").expect("renders");
            assert!(en.html.starts_with("<main><h1>Acme</h1><p style="), "{}: {}", message.name(), en.html);
            assert!(en.html.ends_with("</footer></main>") && en.html.contains("<footer>If "), "{}", en.html);
            assert!(!en.html.contains("<!DOCTYPE"), "{}", message.name());
            let es = templates.render(message, Some("es"), "a@example.com").expect("renders");
            assert!(es.html.starts_with("<!DOCTYPE html>"), "{}", message.name());
        }
        let mail = templates.render(with_code("login_code"), None, "a@example.com").expect("renders");
        assert!(mail.html.contains("482913"), "{}", mail.html);
        let mail = templates.render(Message::PasswordChanged { product: "A&B" }, None, "a@example.com");
        assert!(mail.expect("renders").html.starts_with("<main><h1>A&amp;B</h1>"));
    }

    #[test]
    fn a_message_override_may_extend_the_layout() {
        let page = r#"{% extends "es/layout.html" %}{% block content %}<p>{{ code }}</p>{% endblock %}"#;
        let dir = override_dir(&[("es/login_code.html", page)]);
        let templates = Templates::new(Some(dir.path().to_path_buf())).expect("compiles");
        let html = templates.render(with_code("login_code"), Some("es"), "a@example.com").expect("renders").html;
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"es\">") && html.contains("\n<p>482913</p>\n"),
            "{html}"
        );
    }

    #[test]
    fn an_error_raised_in_the_layout_blames_the_layout_file() {
        let mut env = Environment::new();
        env.add_template("en/layout.html", "<p>{{ product }} {{ cod }}</p>").expect("compiles");
        env.add_template("en/login_code.html", r#"{% extends "en/layout.html" %}"#).expect("compiles");
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let error = trial_render(&env, "en/login_code.html").expect_err("fails");
        let origins = [("en/layout.html", Some(PathBuf::from("/o/en/layout.html"))), ("en/login_code.html", None)];
        let error = blame(&origins, "en/login_code.html", error);
        let detail = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        assert!(detail.contains("/o/en/layout.html"), "{detail}");
    }

    #[test]
    fn a_broken_layout_override_is_an_error_naming_the_layout() {
        let unclosed = "<p>{% block content %}</p>";
        let unknown_variable = "<p>{{ product }} {{ code }}</p>{% block content %}{% endblock %}";
        for layout in [unclosed, unknown_variable] {
            let dir = override_dir(&[("es/login_code.html", "<p>{{ code }}</p>"), ("es/layout.html", layout)]);
            let error = Templates::new(Some(dir.path().to_path_buf())).err().expect("refused");
            let detail = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
            assert!(detail.contains("es/layout.html"), "{detail}");
        }
    }
}
