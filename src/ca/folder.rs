//! Where the CA lives, and putting a new one there safely: the files are written in a private
//! temporary folder beside the final one (key mode 0600, folder 0700), which is then renamed into
//! place whole. A rename onto a folder that already holds a CA fails, so of two first runs at once
//! one wins and the other reads the winner's CA.

use std::path::{Path, PathBuf};

use super::CaError;

/// The CA certificate's file name in the CA folder.
pub const CERT_FILE: &str = "ca-cert.pem";
/// The CA key's file name in the CA folder (mode 0600).
pub const KEY_FILE: &str = "ca-key.pem";

/// sandbox's data folder: `SANDBOX_DATA_DIR` when set; else `%LOCALAPPDATA%\sandbox` on Windows,
/// `~/Library/Application Support/sandbox` on macOS, `$XDG_DATA_HOME/sandbox` or
/// `~/.local/share/sandbox` elsewhere.
pub fn data_dir() -> Result<PathBuf, CaError> {
    let variable = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = variable("SANDBOX_DATA_DIR") {
        return Ok(dir);
    }
    if cfg!(windows) {
        return variable("LOCALAPPDATA")
            .map(|dir| dir.join("sandbox"))
            .ok_or(CaError::NoDataDir);
    }
    if cfg!(target_os = "macos") {
        return variable("HOME")
            .map(|home| home.join("Library/Application Support/sandbox"))
            .ok_or(CaError::NoDataDir);
    }
    variable("XDG_DATA_HOME")
        .map(|dir| dir.join("sandbox"))
        .or_else(|| variable("HOME").map(|home| home.join(".local/share/sandbox")))
        .ok_or(CaError::NoDataDir)
}

/// The CA's folder: `ca` in [`data_dir`].
pub fn ca_folder() -> Result<PathBuf, CaError> {
    Ok(data_dir()?.join("ca"))
}

/// Puts a CA made of `cert_pem` and `key_pem` at `folder`, unless one got there first; `true`
/// when this call's CA is the one in place.
pub(super) fn install(folder: &Path, cert_pem: &str, key_pem: &str) -> Result<bool, CaError> {
    let parent = folder.parent().unwrap_or(Path::new("."));
    create_private_dir(parent, true)?;
    let staging = parent.join(format!(
        ".ca-new-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    create_private_dir(&staging, false)?;
    let written = write_file(&staging.join(KEY_FILE), key_pem.as_bytes(), 0o600)
        .and_then(|()| write_file(&staging.join(CERT_FILE), cert_pem.as_bytes(), 0o644));
    if let Err(error) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    // An empty folder (made by hand, or left by a crash) is replaced; one with files is not.
    if folder.exists() && is_empty_dir(folder) {
        let _ = std::fs::remove_dir(folder);
    }
    match std::fs::rename(&staging, folder) {
        Ok(()) => Ok(true),
        Err(source) => {
            let _ = std::fs::remove_dir_all(&staging);
            if folder.join(CERT_FILE).exists() && folder.join(KEY_FILE).exists() {
                Ok(false)
            } else {
                Err(CaError::Write {
                    path: folder.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// On Unix, an error when the key's mode lets anyone but its owner read or write it.
pub(super) fn check_key_mode(key: &Path) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(key) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CaError::KeyReadableByOthers {
                    path: key.to_path_buf(),
                    mode,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = key;
    Ok(())
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Creates `path` with mode 0700; with `parents`, its missing parents too (also 0700).
pub(crate) fn create_private_dir(path: &Path, parents: bool) -> Result<(), CaError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .map_err(|source| CaError::CreateFolder {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a new file with `mode` (on Unix) from its creation, so the key is never readable by
/// others, even for a moment.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let error = |source| CaError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)
}
