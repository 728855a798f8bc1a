//! Sealing secrets at rest: AES-256-GCM under a named key, with associated
//! data binding each ciphertext to its table, row and field, so a sealed value
//! copied into another row or column fails to open.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD as B64};
use std::fmt;

use crate::{domain::Sealed, secret::Secret};

/// Version tag of the sealed format: `v1.<key id>.<base64(nonce || ciphertext)>`.
const FORMAT: &str = "v1";
const NONCE_LEN: usize = 12;

/// Where a sealed value lives; it is authenticated along with the ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// Table name.
    pub table: &'static str,
    /// Primary key of the row.
    pub row: &'a str,
    /// Column name.
    pub field: &'static str,
}

impl Slot<'_> {
    fn aad(&self) -> Vec<u8> {
        format!("authbroker/{}/{}/{}", self.table, self.row, self.field).into_bytes()
    }
}

/// Why a sealed value could not be opened. Carries no secret.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not in the `v1.<key>.<data>` format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Sealed under a key this process does not have.
    #[error("sealed under unknown key id {0:?}")]
    UnknownKey(String),
    /// Wrong key, tampered data, or moved to another row or field.
    #[error("sealed value failed authentication")]
    Authentication,
}

/// A 256-bit key with its id, loaded from config or a key file.
pub struct SealingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Builds a key from its id and 32 raw bytes.
    pub fn new(id: &str, key: &[u8]) -> Result<Self, String> {
        if id.is_empty() || id.contains('.') || id.len() > 64 {
            return Err("key id must be 1 to 64 characters without '.'".into());
        }
        let cipher = Aes256Gcm::new_from_slice(key)
            .map_err(|_| format!("key must be 32 bytes, got {}", key.len()))?;
        Ok(Self {
            id: id.to_owned(),
            cipher,
        })
    }

    /// Parses the base64 text form of a key (as in config or a key file).
    pub fn from_base64(id: &str, text: &str) -> Result<Self, String> {
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "key is not valid base64".to_owned())?,
        );
        Self::new(id, &bytes)
    }

    /// A fresh random key in its base64 text form.
    pub fn generate_base64() -> String {
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    }

    /// The key id written into every sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext` for `slot`. A random nonce per call.
    pub fn seal(&self, plaintext: &str, slot: Slot<'_>) -> Sealed {
        let nonce_bytes = rand::random::<[u8; NONCE_LEN]>();
        let aad = slot.aad();
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: &aad,
        };
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce_bytes), payload)
            .unwrap_or_default();
        let mut data = nonce_bytes.to_vec();
        data.extend_from_slice(&ciphertext);
        Sealed::from_stored(format!("{FORMAT}.{}.{}", self.id, B64.encode(data)))
    }

    /// Opens a value sealed by [`SealingKey::seal`] for the same slot.
    pub fn open(&self, sealed: &Sealed, slot: Slot<'_>) -> Result<Secret, OpenError> {
        let mut parts = sealed.as_str().splitn(3, '.');
        let (Some(FORMAT), Some(key_id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        if key_id != self.id {
            return Err(OpenError::UnknownKey(key_id.to_owned()));
        }
        let data = B64.decode(data).map_err(|_| OpenError::Malformed)?;
        if data.len() < NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let aad = slot.aad();
        let plaintext = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Authentication)?;
        String::from_utf8(plaintext)
            .map(Secret::new)
            .map_err(|_| OpenError::Malformed)
    }
}

/// The key id a sealed value names, if it is in the sealed format.
pub fn key_id_of(sealed: &Sealed) -> Option<&str> {
    let mut parts = sealed.as_str().splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(FORMAT), Some(id)) => Some(id),
        _ => None,
    }
}

/// Every key the service knows: new values are sealed with the active one;
/// a value opens with the key whose id it names. Rotating a key is adding a
/// new active one, re-sealing (`authbroker reseal`), then dropping the old.
pub struct KeyRing {
    active: SealingKey,
    others: Vec<SealingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active.id)
            .field(
                "others",
                &self.others.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// A ring of one.
    pub fn single(key: SealingKey) -> Self {
        Self {
            active: key,
            others: Vec::new(),
        }
    }

    /// The ring of `keys`, sealing with the one named `active`.
    pub fn new(active: &str, keys: Vec<SealingKey>) -> Result<Self, String> {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = keys.iter().find(|k| !seen.insert(k.id.clone())) {
            return Err(format!("key id {:?} is in the ring twice", twice.id));
        }
        let (mut actives, others): (Vec<_>, Vec<_>) =
            keys.into_iter().partition(|k| k.id == active);
        let active = actives
            .pop()
            .ok_or_else(|| format!("the active key id {active:?} is not in the ring"))?;
        Ok(Self { active, others })
    }

    /// The key new values are sealed with.
    pub fn active(&self) -> &SealingKey {
        &self.active
    }

    /// Whether the ring holds a key with this id.
    pub fn has(&self, id: &str) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: &str) -> Option<&SealingKey> {
        std::iter::once(&self.active)
            .chain(&self.others)
            .find(|k| k.id == id)
    }

    /// Seals with the active key.
    pub fn seal(&self, plaintext: &str, slot: Slot<'_>) -> Sealed {
        self.active.seal(plaintext, slot)
    }

    /// Opens with the key the value names.
    pub fn open(&self, sealed: &Sealed, slot: Slot<'_>) -> Result<Secret, OpenError> {
        let id = key_id_of(sealed).ok_or(OpenError::Malformed)?;
        self.key(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?
            .open(sealed, slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealingKey {
        SealingKey::new("k1", &[7u8; 32]).expect("valid key")
    }

    const SLOT: Slot<'static> = Slot {
        table: "connections",
        row: "row-1",
        field: "access_token",
    };

    #[test]
    fn a_ring_seals_with_the_active_key_and_opens_with_any() {
        let old = SealingKey::new("k1", &[7u8; 32]).expect("key");
        let sealed_old = old.seal("old-secret", SLOT);
        let ring = KeyRing::new(
            "k2",
            vec![
                SealingKey::new("k1", &[7u8; 32]).expect("key"),
                SealingKey::new("k2", &[9u8; 32]).expect("key"),
            ],
        )
        .expect("ring");
        let sealed_new = ring.seal("new-secret", SLOT);
        assert_eq!(key_id_of(&sealed_new), Some("k2"));
        assert_eq!(
            ring.open(&sealed_old, SLOT).expect("old").expose(),
            "old-secret"
        );
        assert_eq!(
            ring.open(&sealed_new, SLOT).expect("new").expose(),
            "new-secret"
        );
        let without_k1 = KeyRing::single(SealingKey::new("k2", &[9u8; 32]).expect("key"));
        assert!(matches!(
            without_k1.open(&sealed_old, SLOT),
            Err(OpenError::UnknownKey(id)) if id == "k1"
        ));
        assert!(KeyRing::new("k3", vec![key()]).is_err());
        assert!(KeyRing::new("k1", vec![key(), key()]).is_err());
        assert!(!format!("{ring:?}").contains("[9"));
    }

    #[test]
    fn round_trip_and_no_plaintext_in_output() {
        let sealed = key().seal("tok-secret", SLOT);
        assert!(sealed.as_str().starts_with("v1.k1."));
        assert!(!sealed.as_str().contains("tok-secret"));
        assert_eq!(
            key().open(&sealed, SLOT).expect("opens").expose(),
            "tok-secret"
        );
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(key().seal("x", SLOT), key().seal("x", SLOT));
    }

    #[test]
    fn bound_to_row_and_field() {
        let sealed = key().seal("tok", SLOT);
        let other_row = Slot {
            row: "row-2",
            ..SLOT
        };
        let other_field = Slot {
            field: "refresh_token",
            ..SLOT
        };
        assert!(matches!(
            key().open(&sealed, other_row),
            Err(OpenError::Authentication)
        ));
        assert!(matches!(
            key().open(&sealed, other_field),
            Err(OpenError::Authentication)
        ));
    }

    #[test]
    fn wrong_key_or_garbage_is_an_error() {
        let sealed = key().seal("tok", SLOT);
        let other = SealingKey::new("k1", &[8u8; 32]).expect("valid key");
        assert!(matches!(
            other.open(&sealed, SLOT),
            Err(OpenError::Authentication)
        ));
        let renamed = SealingKey::new("k2", &[7u8; 32]).expect("valid key");
        assert!(matches!(
            renamed.open(&sealed, SLOT),
            Err(OpenError::UnknownKey(_))
        ));
        assert!(matches!(
            key().open(&Sealed::from_stored("nonsense".into()), SLOT),
            Err(OpenError::Malformed)
        ));
        assert!(matches!(
            key().open(&Sealed::from_stored("v1.k1.!!".into()), SLOT),
            Err(OpenError::Malformed)
        ));
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(SealingKey::new("k1", &[0u8; 16]).is_err());
        assert!(SealingKey::new("a.b", &[0u8; 32]).is_err());
        assert!(SealingKey::from_base64("k1", "not base64!").is_err());
        assert!(SealingKey::from_base64("k1", &SealingKey::generate_base64()).is_ok());
    }
}
