//! The project's mesh token: 32 random bytes (hex) that every forwarder of the project sends in
//! its connection headers and the mesh intake checks. Made once per project and kept, mode 0600,
//! in `mesh/<project>.token` in sandbox's data folder (beside the CA; `SANDBOX_DATA_DIR` moves
//! it), so a re-up and a detached control plane read the same token and forwarders are not
//! recreated for nothing. `down` removes it. The token is never printed. Beside it, the folder of
//! the project's handoff socket ([`handoff_folder`]), also removed by `down`.

use std::path::{Path, PathBuf};

use crate::ca::folder::{create_private_dir, data_dir, write_file};
use crate::ca::CaError;

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Why the project's mesh token could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum MeshTokenError {
    #[error(transparent)]
    Folder(#[from] CaError),
    #[error("cannot read the mesh token `{path}`: {source}\n  hint: it must belong to you (`chmod 600 {path}`), or remove it: `sandbox up` makes a new one", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a mesh token\n  hint: remove it: `sandbox up` makes a new one (and recreates the project's forwarders)", path = path.display())]
    Damaged { path: PathBuf },
    #[error(
        "`{project}` cannot name a mesh token: a project name has only `a-z`, `0-9`, `_` and `-`"
    )]
    Project { project: String },
}

/// The token of `project`, made and stored on first use.
pub fn mesh_token(project: &str) -> Result<String, MeshTokenError> {
    token_in(&folder()?, project)
}

/// Forgets the token of `project` (its forwarders are gone); nothing when it has none.
pub fn remove_mesh_token(project: &str) -> Result<(), MeshTokenError> {
    let path = token_path(&folder()?, project)?;
    removed(std::fs::remove_file(&path), path)
}

/// A removal's outcome: done, or nothing there to remove; else the error, naming `path`.
fn removed(outcome: std::io::Result<()>, path: PathBuf) -> Result<(), MeshTokenError> {
    match outcome {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(MeshTokenError::Folder(CaError::Write {
                path,
                source: error,
            }))
        }
        _ => Ok(()),
    }
}

/// The folder of `project`'s mesh handoff socket (`proxy::handoff`): `mesh/handoff/<project>` in
/// sandbox's data folder. The control plane makes it (private to the user) and binds the socket
/// there; forwarders get the folder mounted. Not made here.
pub fn handoff_folder(project: &str) -> Result<PathBuf, MeshTokenError> {
    let folder = folder()?;
    // The same check of the project's name as its token's path.
    token_path(&folder, project)?;
    Ok(folder.join("handoff").join(project))
}

/// Removes `project`'s handoff folder (its forwarders are gone); nothing when it has none.
pub fn remove_handoff_folder(project: &str) -> Result<(), MeshTokenError> {
    let path = handoff_folder(project)?;
    removed(std::fs::remove_dir_all(&path), path)
}

/// `mesh` in sandbox's data folder.
fn folder() -> Result<PathBuf, MeshTokenError> {
    Ok(data_dir()?.join("mesh"))
}

fn token_path(folder: &Path, project: &str) -> Result<PathBuf, MeshTokenError> {
    let usable = !project.is_empty()
        && project.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || matches!(character, '_' | '-')
        });
    if !usable {
        return Err(MeshTokenError::Project {
            project: project.to_string(),
        });
    }
    Ok(folder.join(format!("{project}.token")))
}

/// The token of `project` in `folder`: read, or made there. Written whole under a temporary name
/// and linked into place, which fails when another process got there first; its token is read.
fn token_in(folder: &Path, project: &str) -> Result<String, MeshTokenError> {
    let path = token_path(folder, project)?;
    if let Some(token) = read(&path)? {
        return Ok(token);
    }
    create_private_dir(folder, true)?;
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let staging = folder.join(format!(
        ".{project}.token.{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    write_file(&staging, token.as_bytes(), 0o600)?;
    let linked = std::fs::hard_link(&staging, &path);
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(token),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or(MeshTokenError::Damaged { path })
        }
        Err(source) => Err(MeshTokenError::Folder(CaError::Write { path, source })),
    }
}

/// The token at `path`; `None` when there is no file.
fn read(path: &Path) -> Result<Option<String>, MeshTokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MeshTokenError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let token = text.trim();
    let valid = token.len() == TOKEN_BYTES * 2
        && token
            .chars()
            .all(|character| character.is_ascii_digit() || ('a'..='f').contains(&character));
    if !valid {
        return Err(MeshTokenError::Damaged {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_and_read_back() {
        let directory = tempfile::tempdir().unwrap();
        let folder = directory.path().join("mesh");
        let first = token_in(&folder, "shop").unwrap();
        assert_eq!(first.len(), 64);
        assert!(first.chars().all(|character| character.is_ascii_hexdigit()));
        assert_eq!(token_in(&folder, "shop").unwrap(), first);
        assert_ne!(
            token_in(&folder, "other").unwrap(),
            first,
            "one per project"
        );
        let names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no staging files left: {names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn only_its_owner_may_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let folder = directory.path().join("mesh");
        token_in(&folder, "shop").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder.join("shop.token")), 0o600);
        assert_eq!(mode(&folder), 0o700);
    }

    #[test]
    fn a_damaged_token_is_reported_not_replaced() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("shop.token"), "not a token").unwrap();
        let error = token_in(directory.path(), "shop").unwrap_err();
        assert!(matches!(error, MeshTokenError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains("hint: remove it"), "{error}");
    }

    #[test]
    fn a_project_name_cannot_leave_the_folder() {
        let directory = tempfile::tempdir().unwrap();
        for project in ["../escape", "", "a/b"] {
            assert!(
                matches!(
                    token_in(directory.path(), project),
                    Err(MeshTokenError::Project { .. })
                ),
                "{project}"
            );
        }
    }

    #[test]
    fn concurrent_first_uses_agree() {
        let directory = tempfile::tempdir().unwrap();
        let folder = directory.path().join("mesh");
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| token_in(&folder, "shop").unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        assert!(tokens.iter().all(|token| token == &tokens[0]), "{tokens:?}");
    }
}
