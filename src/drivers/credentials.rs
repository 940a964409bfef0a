//! Device credentials, read from a Secret (keys `username` and `password`), a file or the
//! environment. The password never appears in Debug output, logs, status or Events.

use std::fmt;

use k8s_openapi::api::core::v1::Secret;

/// A username and password for a device's management interface.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the one place that sends it (the HTTP client's basic auth).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Reads `username` and `password` from a Secret's `data` (or `stringData`).
    pub fn from_secret(secret: &Secret) -> Result<Self, CredentialsError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let value = |key: &'static str| -> Result<String, CredentialsError> {
            if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
                return String::from_utf8(bytes.0.clone()).map_err(|_| CredentialsError::NotText {
                    secret: name.clone(),
                    key,
                });
            }
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| CredentialsError::MissingKey {
                    secret: name.clone(),
                    key,
                })
        };
        Ok(Self::new(value("username")?, value("password")?))
    }

    /// Reads `username:password` (one line) from a file's content.
    pub fn from_line(text: &str) -> Result<Self, CredentialsError> {
        let line = text.lines().next().unwrap_or_default().trim_end();
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Self::new(user, password)),
            _ => Err(CredentialsError::BadLine),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials that cannot be read. Messages name the Secret and key, never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A key is missing.
    #[error("Secret {secret} has no key {key:?}; it needs username and password")]
    MissingKey {
        /// The Secret.
        secret: String,
        /// The key.
        key: &'static str,
    },
    /// A value is not UTF-8 text.
    #[error("Secret {secret} key {key:?} is not text")]
    NotText {
        /// The Secret.
        secret: String,
        /// The key.
        key: &'static str,
    },
    /// A credentials file is not `username:password`.
    #[error("the credentials file must hold one line username:password")]
    BadLine,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn reads_a_secret_and_never_prints_the_password() {
        let mut secret = Secret::default();
        secret.metadata.name = Some("dp-credentials".into());
        secret.data = Some(BTreeMap::from([
            ("username".into(), ByteString(b"admin".to_vec())),
            ("password".into(), ByteString(b"s3cr3t".to_vec())),
        ]));
        let creds = Credentials::from_secret(&secret).unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password()),
            ("admin", "s3cr3t")
        );
        assert!(!format!("{creds:?}").contains("s3cr3t"));

        secret.data = Some(BTreeMap::from([(
            "username".into(),
            ByteString(b"admin".to_vec()),
        )]));
        let err = Credentials::from_secret(&secret).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret dp-credentials has no key \"password\"; it needs username and password"
        );
    }

    #[test]
    fn reads_a_credentials_line() {
        let creds = Credentials::from_line("admin:pa:ss\n").unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password()),
            ("admin", "pa:ss")
        );
        assert_eq!(
            Credentials::from_line("nocolon"),
            Err(CredentialsError::BadLine)
        );
    }
}
