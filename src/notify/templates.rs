//! The texts of outgoing messages. Plain text for now; HTML and per-locale templates arrive with
//! the verification work.

use super::mail::OutgoingMail;

/// The code that completes a login.
pub fn login_code(product: &str, to: &str, code: &str, valid_minutes: u64) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: format!("Your {product} sign-in code"),
        text: format!(
            "Your {product} sign-in code is {code}\n\n\
             It expires in {valid_minutes} minutes and works once.\n\n\
             If you did not try to sign in, someone knows your password: change it now.\n"
        ),
    }
}

/// Sent to an existing account when someone registers with its address, instead of telling
/// the registrant that the address is taken.
pub fn registration_attempt(product: &str, to: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: format!("Someone tried to create a {product} account with your address"),
        text: format!(
            "Someone tried to register a new {product} account with this email address, \
             which already has an account.\n\n\
             If it was you, sign in instead (or reset your password if you forgot it).\n\
             If it wasn't you, you can ignore this message: your account is unchanged.\n"
        ),
    }
}
