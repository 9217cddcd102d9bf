//! The password policy of NIST SP 800-63B §5.1.1.2 and OWASP ASVS V2.1: a minimum length, a
//! maximum of 128 characters checked before any hashing, any Unicode, no truncation and no
//! composition rules; refused when guessable (zxcvbn, which bundles the common-password and
//! dictionary lists) or when it contains the user's own identifiers or the product name.

use crate::domain::MAX_PASSWORD_CHARS;

/// The configured policy.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub min_score: u8,
    pub product_name: String,
}

impl PasswordPolicy {
    /// The policy as configured.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            min_length: settings.password_min_length,
            min_score: settings.password_min_score,
            product_name: settings.product_name.clone(),
        }
    }

    /// Checks a new password; `personal` holds the user's own identifiers (email local part,
    /// username, names). The error is a reason fit to show the user.
    pub fn check(&self, password: &str, personal: &[&str]) -> Result<(), String> {
        let chars = password.chars().count();
        if chars < self.min_length {
            return Err(format!("must be at least {} characters long", self.min_length));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters long"));
        }
        let lowered = password.to_lowercase();
        let contains = |word: &str| word.chars().count() >= 3 && lowered.contains(&word.to_lowercase());
        if contains(&self.product_name) {
            return Err(format!("must not contain \"{}\"", self.product_name));
        }
        if personal.iter().any(|word| contains(word)) {
            return Err("must not contain your email address, username or name".into());
        }
        let mut inputs: Vec<&str> = personal.to_vec();
        inputs.push(&self.product_name);
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        if u8::from(estimate.score()) < self.min_score {
            let reason = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| w.to_string())
                .unwrap_or_else(|| "is too easy to guess".into());
            return Err(format!("is too weak: {}", reason.trim_end_matches('.').to_lowercase()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_length: 12, min_score: 3, product_name: "idgate".into() }
    }

    #[test]
    fn a_long_random_passphrase_is_accepted() {
        assert_eq!(policy().check("correct horse battery staple 93", &[]), Ok(()));
    }

    #[test]
    fn unicode_passphrases_count_characters_not_bytes() {
        assert!(policy().check("ñandú-żółw-猫咪-Ωμέγα", &[]).is_ok());
        assert!(policy().check("żółćżółćżó", &[]).is_err());
    }

    #[test]
    fn short_passwords_are_refused_with_the_minimum() {
        assert_eq!(policy().check("Xk9#qLp2", &[]), Err("must be at least 12 characters long".into()));
    }

    #[test]
    fn passwords_over_128_characters_are_refused() {
        assert!(policy().check(&"ab1$".repeat(33), &[]).is_err());
    }

    #[test]
    fn common_passwords_are_refused() {
        for common in ["password1234", "qwertyuiop123", "iloveyou1234"] {
            assert!(policy().check(common, &[]).is_err(), "{common}");
        }
    }

    #[test]
    fn passwords_containing_personal_words_or_the_product_are_refused() {
        assert!(policy().check("my-idgate-vault-Qx81", &[]).is_err());
        assert!(policy().check("zebra-alice.smith-Qx81", &["alice.smith"]).is_err());
    }
}
