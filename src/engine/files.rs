//! Secrets and configs as a container sees them, the way docker compose gives them on one engine.
//!
//! A `file` source is a read-only bind mount (its `uid`/`gid`/`mode` are ignored, as compose
//! ignores them). An `environment` or `content` source is a [`ContainerFile`]: written into the
//! created container before each start, as a tar archive ([`archive`]) whose entry carries the
//! mode (default `0444`), uid and gid. The content takes part in the container's config hash only
//! as a digest, so a changed secret recreates the container without being stored anywhere.
//! Pure: no engine calls here.

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::manifest::{
    FileGrant, FileObject, FileSource, Manifest, SecretText, Service, VolumeMount,
};

/// Mode of a written secret or config when the grant sets none (compose's default).
pub const DEFAULT_MODE: u32 = 0o444;

/// A file written into a container before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerFile {
    /// Absolute path in the container.
    pub path: String,
    /// Serialised (for the config hash) as its SHA-256, never as itself.
    #[serde(rename = "sha256", serialize_with = "digest")]
    pub content: SecretText,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A read-only bind mount of a `file` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    pub source: std::path::PathBuf,
    pub target: String,
}

/// The bind mounts and written files of `service`'s secrets, then configs, in manifest order.
/// Grants of undeclared or external objects cannot reach here (loading refuses them).
pub fn resolve(manifest: &Manifest, service: &Service) -> (Vec<FileMount>, Vec<ContainerFile>) {
    let mut mounts = Vec::new();
    let mut files = Vec::new();
    let grants = service
        .secrets
        .iter()
        .map(|grant| (grant, manifest.secrets.get(&grant.source)))
        .chain(
            service
                .configs
                .iter()
                .map(|grant| (grant, manifest.configs.get(&grant.source))),
        );
    for (grant, object) in grants {
        let Some(FileObject { source, .. }) = object else {
            continue;
        };
        match source {
            FileSource::File(path) => mounts.push(FileMount {
                source: path.clone(),
                target: grant.target.clone(),
            }),
            FileSource::Environment { value, .. } => files.push(file(grant, value.clone())),
            FileSource::Content(content) => files.push(file(grant, SecretText::new(content))),
            FileSource::External => {}
        }
    }
    (mounts, files)
}

fn file(grant: &FileGrant, content: SecretText) -> ContainerFile {
    let id = |id: &Option<String>| id.as_deref().and_then(|id| id.parse().ok()).unwrap_or(0);
    ContainerFile {
        path: grant.target.clone(),
        content,
        mode: grant.mode.unwrap_or(DEFAULT_MODE),
        uid: id(&grant.uid),
        gid: id(&grant.gid),
    }
}

/// `volumes` plus the read-only bind mounts of `file` secrets and configs; a volume already at a
/// mount's target wins, as in compose.
pub fn with_file_mounts(mut volumes: Vec<VolumeMount>, mounts: Vec<FileMount>) -> Vec<VolumeMount> {
    for mount in mounts {
        if volumes.iter().any(|volume| volume.target() == mount.target) {
            continue;
        }
        volumes.push(VolumeMount::Bind {
            source: mount.source,
            target: mount.target,
            read_only: true,
            create_host_path: false,
            propagation: None,
            selinux: None,
        });
    }
    volumes
}

/// A tar archive of `files`, to extract at `/` (entry names are the paths without the leading
/// `/`; the engine creates missing parent folders).
pub fn archive(files: &[ContainerFile]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let bytes = file.content.expose().as_bytes();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(file.uid);
        header.set_gid(file.gid);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(modified_now());
        builder.append_data(&mut header, file.path.trim_start_matches('/'), bytes)?;
    }
    builder.into_inner()
}

fn modified_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn digest<S: Serializer>(content: &SecretText, serializer: S) -> Result<S::Ok, S::Error> {
    let digest = Sha256::digest(content.expose().as_bytes());
    let text: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    serializer.serialize_str(&text)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn token(content: &str) -> ContainerFile {
        ContainerFile {
            path: "/run/secrets/token".into(),
            content: SecretText::new(content),
            mode: 0o440,
            uid: 1000,
            gid: 1001,
        }
    }

    #[test]
    fn the_archive_carries_path_mode_owner_and_content() {
        let bytes = archive(&[token("hunter2")]).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("run/secrets/token"));
        assert_eq!(entry.header().mode().unwrap(), 0o440);
        assert_eq!(entry.header().uid().unwrap(), 1000);
        assert_eq!(entry.header().gid().unwrap(), 1001);
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        assert_eq!(content, "hunter2");
        assert!(entries.next().is_none());
    }

    #[test]
    fn file_sources_become_read_only_binds_unless_a_volume_has_the_target() {
        let volume = VolumeMount::Anonymous {
            target: "/run/secrets/taken".into(),
            read_only: false,
            nocopy: false,
        };
        let mount = |target: &str| FileMount {
            source: "/project/token.txt".into(),
            target: target.into(),
        };
        let volumes = with_file_mounts(
            vec![volume.clone()],
            vec![mount("/run/secrets/taken"), mount("/run/secrets/token")],
        );
        assert_eq!(volumes.len(), 2, "{volumes:#?}");
        assert_eq!(volumes[0], volume);
        assert!(matches!(
            &volumes[1],
            VolumeMount::Bind { target, read_only: true, create_host_path: false, .. }
                if target == "/run/secrets/token"
        ));
    }

    #[test]
    fn serialised_files_show_a_digest_not_the_content() {
        let json = serde_json::to_string(&token("hunter2")).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        let other = serde_json::to_string(&token("hunter3")).unwrap();
        assert_ne!(json, other, "a changed secret must change the hash input");
    }
}
