//! Secrets at rest: what must survive a restart but must not be readable
//! in the database (a Facebook sync's access token) is sealed with
//! AES-256-GCM (`ring`, already compiled for rustls) under a key kept
//! outside the database: `--secret-key` / `SIFT_SECRET_KEY` (64 hex
//! digits), or else `secret.key` in the data directory, created with mode
//! 0600 the first time a secret is stored. A copy of the database alone
//! reveals nothing; a wrong or missing key is reported, never guessed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";
const KEY_LEN: usize = 32;

/// A key as an operator gave it: 32 bytes. Its `Debug` is redacted.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// 64 hex digits (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let malformed = || {
            format!(
                "must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`; got {} characters",
                text.len()
            )
        };
        if text.len() != KEY_LEN * 2 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| malformed())?;
        }
        Ok(SecretKey(key))
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Seals and opens secrets under one key.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The configured key, else the data directory's key file; with
    /// `create`, a key file is made when there is none.
    pub fn load(
        configured: Option<&SecretKey>,
        data_dir: &Path,
        create: bool,
    ) -> Result<Sealer, String> {
        let key = match configured {
            Some(key) => key.clone(),
            None => key_file(data_dir, create)?,
        };
        let unbound = UnboundKey::new(&AES_256_GCM, &key.0)
            .map_err(|_| "the secret key was refused by AES-256-GCM".to_string())?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `nonce ‖ ciphertext ‖ tag`. `context` (e.g. the job's id) is
    /// authenticated, so a sealed value cannot be moved to another row.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing a secret failed".to_string())?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain text, or an error when the key (or context) is not the one
    /// it was sealed with.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let wrong = || {
            "the stored secret cannot be decrypted with this server's key (SIFT_SECRET_KEY, or secret.key in the data directory): it was stored under another key".to_string()
        };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Reads the key file, or creates it (0600, never replacing one).
fn key_file(data_dir: &Path, create: bool) -> Result<SecretKey, String> {
    let path = key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::parse(&text).map_err(|why| format!("{} {why}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
            create_key_file(data_dir, &path)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no secret key: neither SIFT_SECRET_KEY nor {} is there (was the key file lost or the key not passed?)",
            path.display()
        )),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Writes a new key whole under a name of its own, then links it into
/// place. A link never replaces a file, so when several syncs start at once
/// the first link wins and the others read its key; and the key file is
/// never seen empty or half-written, not even after a crash.
fn create_key_file(data_dir: &Path, path: &Path) -> Result<SecretKey, String> {
    let key = SecretKey(rand::random());
    let draft = data_dir.join(format!(".{KEY_FILE}.{:016x}", rand::random::<u64>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options
        .open(&draft)
        .and_then(|mut file| {
            file.write_all(format!("{}\n", key.hex()).as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(()) => {
            // The new name must survive a crash as the key's bytes do.
            if let Ok(dir) = std::fs::File::open(data_dir) {
                let _ = dir.sync_all();
            }
            tracing::info!(path = %path.display(), "created the key for secrets at rest; back it up with the data directory's backups, but apart from them");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            key_file(data_dir, false)
        }
        Err(error) => Err(format!("cannot create {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load(None, dir.path(), true).unwrap();
        let sealed = sealer.seal("fbx_1", b"EAAB-token").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"EAAB-token"));
        assert_eq!(sealer.open("fbx_1", &sealed).unwrap(), b"EAAB-token");
        assert!(sealer.open("fbx_2", &sealed).is_err());
        let again = Sealer::load(None, dir.path(), false).unwrap();
        assert_eq!(again.open("fbx_1", &sealed).unwrap(), b"EAAB-token");
        let other = SecretKey::parse(&"ab".repeat(32)).unwrap();
        let wrong = Sealer::load(Some(&other), dir.path(), false).unwrap();
        assert!(
            wrong
                .open("fbx_1", &sealed)
                .unwrap_err()
                .contains("cannot be decrypted")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// Two syncs started at once on a fresh data directory (two requests,
    /// two workspaces) both create the key: each must get the one key that
    /// ends up in the file, never an error or a key read half-written.
    #[test]
    fn syncs_starting_at_once_share_one_key_file() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let start = std::sync::Barrier::new(8);
            let keys: Vec<Result<SecretKey, String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            key_file(dir.path(), true)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let on_disk = key_file(dir.path(), false).unwrap();
            for key in keys {
                assert_eq!(key.map(|k| k.0), Ok(on_disk.0));
            }
        }
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(SecretKey::parse(&"0f".repeat(32)).is_ok());
        assert!(
            SecretKey::parse("abc")
                .unwrap_err()
                .contains("64 hex digits")
        );
        assert!(SecretKey::parse(&"zz".repeat(32)).is_err());
        assert!(!format!("{:?}", SecretKey::parse(&"0f".repeat(32)).unwrap()).contains("0f"));
        let empty = tempfile::tempdir().unwrap();
        let missing = Sealer::load(None, empty.path(), false).err().unwrap();
        assert!(missing.contains("no secret key"), "{missing}");
    }
}
