//! Secrets at rest: the credentials of definitions made over the API are kept in `catalog.db` sealed
//! with ChaCha20-Poly1305, so the database file (a backup, a copy) holds no usable secret. The key is
//! `SYNCLINE_SECRET_KEY` (any text, stretched by blake3), or else a random key in `secret.key` in the
//! state directory (mode 0600), made on first use.

use std::path::Path;

use base64::Engine;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use crate::secrets::{self, Spot};

const PREFIX: &str = "enc:v1:";
const KEY_FILE: &str = "secret.key";

/// Why the vault cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the secret key file {path}: {source}")]
    Key { path: String, source: std::io::Error },
    #[error("a sealed secret in the catalog does not open with this key (was SYNCLINE_SECRET_KEY changed?)")]
    Open,
}

pub struct Vault {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Vault {
    /// The vault of the state directory at `root`.
    pub fn open(root: &Path) -> Result<Vault, VaultError> {
        let material = match std::env::var("SYNCLINE_SECRET_KEY") {
            Ok(text) if !text.is_empty() => blake3::derive_key("syncline catalog secrets v1", text.as_bytes()),
            _ => key_file(&root.join(KEY_FILE))?,
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &material).map_err(|_| VaultError::Open)?;
        Ok(Vault { key: LessSafeKey::new(key), random: SystemRandom::new() })
    }

    /// `body` as it is stored: each secret (by [`secrets::spots`]) sealed.
    pub fn seal(&self, body: &Value) -> Value {
        let mut out = body.clone();
        for spot in secrets::spots(body) {
            let Some(slot) = out.pointer_mut(spot.pointer()) else { continue };
            let plain = match (&spot, &*slot) {
                (_, Value::String(s)) => s.clone(),
                (Spot::Value(_), Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            *slot = Value::String(self.seal_text(&plain));
        }
        out
    }

    fn seal_text(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system's random source does not fail on a working system.
        let _ = self.random.fill(&mut nonce);
        let mut data = plain.as_bytes().to_vec();
        // Sealing in memory with a valid key cannot fail.
        let _ = self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data);
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed))
    }

    /// A stored body with its secrets opened (and remembered, so no message can carry them).
    pub fn open_body(&self, mut body: Value) -> Result<Value, VaultError> {
        let mut stack = vec![&mut body];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) if text.starts_with(PREFIX) => {
                    let plain = self.open_text(text)?;
                    secrets::remember(&plain);
                    *text = plain;
                }
                Value::Object(map) => stack.extend(map.values_mut()),
                Value::Array(items) => stack.extend(items.iter_mut()),
                _ => {}
            }
        }
        Ok(body)
    }

    fn open_text(&self, text: &str) -> Result<String, VaultError> {
        let sealed = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&text[PREFIX.len()..]).map_err(|_| VaultError::Open)?;
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Open)?;
        let mut data = data.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut data).map_err(|_| VaultError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Open)
    }
}

/// The key in `path`, made (random, readable by the owner alone) when there is none.
fn key_file(path: &Path) -> Result<[u8; 32], VaultError> {
    let io = |source| VaultError::Key { path: path.display().to_string(), source };
    match std::fs::read(path) {
        Ok(bytes) => return bytes.try_into().map_err(|_| io(std::io::Error::other("not a 32-byte key"))),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(error)),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    SystemRandom::new().fill(&mut key).map_err(|_| io(std::io::Error::other("no random source")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => std::io::Write::write_all(&mut file, &key).map_err(io)?,
        // Another process made it first: use that one.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return key_file(path),
        Err(error) => return Err(io(error)),
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_sealed_and_open_again() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        let body = json!({"location": "http://h", "auth": {"type": "bearer", "token": "vault-marker-1"}, "headers": {"Accept": "json"}});
        let sealed = vault.seal(&body);
        let text = sealed.to_string();
        assert!(!text.contains("vault-marker-1") && text.contains(PREFIX), "{text}");
        assert_eq!(sealed["headers"]["Accept"], "json");
        let again = Vault::open(dir.path()).unwrap();
        assert_eq!(again.open_body(sealed).unwrap(), body);
        let other = tempfile::tempdir().unwrap();
        assert!(Vault::open(other.path()).unwrap().open_body(vault.seal(&body)).is_err());
    }
}
