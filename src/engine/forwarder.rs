//! The mesh forwarder's image: the static Linux binary that `build.rs` compiles from
//! `forwarder/` and embeds here (or the file `SANDBOX_FORWARDER` names), packaged into a local
//! `FROM scratch` image at first use, so no registry is needed. The tag comes from the binary's
//! content (`sandbox-forwarder:<12 hex of its sha256>`): every project of one sandbox build
//! shares one image, a new build gets its own, and two sandboxes building it at once both end
//! with the same tag. `sandbox prune` removes the images no container uses.
//!
//! The forwarder containers themselves are the engine wiring's; this module only makes sure the
//! image is there.

use std::borrow::Cow;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::docker::Docker;
use super::error::EngineError;

/// The repository every forwarder image is tagged in.
pub const REPOSITORY: &str = "sandbox-forwarder";
/// On every forwarder image (`=true`); `prune` finds them by it.
pub const IMAGE_LABEL: &str = "dev.sandbox.forwarder";
/// The same mark under the short name the mesh design gives it, for `docker images --filter`.
const SHORT_LABEL: &str = "sandbox.forwarder";
/// A path to a static Linux forwarder binary, used instead of the embedded one.
pub const BINARY_VARIABLE: &str = "SANDBOX_FORWARDER";
/// Where the binary sits in the image (its entrypoint).
const PATH_IN_IMAGE: &str = "sandbox-forwarder";

/// The forwarder `build.rs` compiled for this target; empty when the target is not Linux.
static EMBEDDED: &[u8] = include_bytes!(env!("SANDBOX_FORWARDER_BIN"));

/// Makes sure the forwarder image is on the engine, building it when absent; returns its
/// reference (`sandbox-forwarder:0123456789ab`).
pub async fn ensure_image(docker: &Docker) -> Result<String, EngineError> {
    let binary = binary().await?;
    ensure_image_of(docker, &binary).await
}

/// [`ensure_image`] for a given forwarder binary.
pub async fn ensure_image_of(docker: &Docker, binary: &[u8]) -> Result<String, EngineError> {
    let tag = image_tag(binary);
    if docker.image_id(&tag).await?.is_some() {
        return Ok(tag);
    }
    let failed = |message: String| EngineError::Api {
        action: format!("building the mesh forwarder image `{tag}`"),
        message,
    };
    let context = context_tar(binary)
        .map_err(|error| failed(format!("writing its build context: {error}")))?;
    let labels = HashMap::from([
        (IMAGE_LABEL.to_string(), "true".to_string()),
        (SHORT_LABEL.to_string(), "true".to_string()),
    ]);
    docker
        .build_labelled_image(&tag, &labels, context)
        .await
        .map_err(|output| failed(output.join("\n  | ")))?;
    match docker.image_id(&tag).await? {
        Some(_) => Ok(tag),
        None => Err(failed(
            "the engine does not list the image after building it".to_string(),
        )),
    }
}

/// The image reference for `binary`.
pub fn image_tag(binary: &[u8]) -> String {
    let digest = Sha256::digest(binary);
    let hex: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{REPOSITORY}:{hex}")
}

/// The forwarder binary: the file `SANDBOX_FORWARDER` names, else the embedded one.
pub async fn binary() -> Result<Cow<'static, [u8]>, EngineError> {
    let failed = |message: String| EngineError::Api {
        action: "preparing the mesh forwarder".to_string(),
        message,
    };
    let binary = match std::env::var_os(BINARY_VARIABLE).filter(|path| !path.is_empty()) {
        Some(path) => {
            let shown = std::path::Path::new(&path).display().to_string();
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|error| failed(format!("{BINARY_VARIABLE}={shown}: {error}")))?;
            if !bytes.starts_with(b"\x7fELF") {
                return Err(failed(format!(
                    "{BINARY_VARIABLE}={shown} is not a Linux executable (ELF)\n  hint: point it at a static Linux build of `sandbox-forwarder`"
                )));
            }
            Cow::Owned(bytes)
        }
        None if EMBEDDED.is_empty() => {
            return Err(failed(format!(
                "this sandbox was built without the forwarder (it embeds one only when built for Linux)\n  hint: set {BINARY_VARIABLE}=/path/to/static/linux/sandbox-forwarder (on Linux: `RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release -p sandbox-forwarder --target x86_64-unknown-linux-gnu`), or turn the mesh off with `mesh: false`"
            )))
        }
        None => Cow::Borrowed(EMBEDDED),
    };
    Ok(binary)
}

/// Removes the forwarder images no container uses and returns their names. `keep_current`
/// keeps this sandbox's own image even when unused (a prune limited to some projects must not
/// take the image the other projects are about to use).
pub async fn remove_unused_images(
    docker: &Docker,
    keep_current: bool,
) -> Result<Vec<String>, EngineError> {
    let current = match keep_current {
        true => binary().await.ok().map(|binary| image_tag(&binary)),
        false => None,
    };
    let mut removed = Vec::new();
    for image in docker
        .labelled_images(&format!("{IMAGE_LABEL}=true"))
        .await?
    {
        if current.as_ref().is_some_and(|tag| image.tags.contains(tag)) {
            continue;
        }
        if docker.remove_unused_image(&image.id).await? {
            removed.push(image.tags.first().cloned().unwrap_or_else(|| {
                let id = image.id.trim_start_matches("sha256:");
                format!("{REPOSITORY} (untagged {})", &id[..id.len().min(12)])
            }));
        }
    }
    Ok(removed)
}

/// The build context: a Dockerfile and the binary (mode 0755), with fixed times so equal
/// binaries give equal contexts.
fn context_tar(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let dockerfile = format!(
        "FROM scratch\nCOPY {PATH_IN_IMAGE} /{PATH_IN_IMAGE}\nENTRYPOINT [\"/{PATH_IN_IMAGE}\"]\n"
    );
    let mut builder = tar::Builder::new(Vec::new());
    for (name, mode, bytes) in [
        ("Dockerfile", 0o644, dockerfile.as_bytes()),
        (PATH_IN_IMAGE, 0o755, binary),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_binary() {
        let tag = image_tag(b"forwarder");
        assert!(tag.starts_with("sandbox-forwarder:"));
        assert_eq!(tag.len(), "sandbox-forwarder:".len() + 12);
        assert_eq!(tag, image_tag(b"forwarder"));
        assert_ne!(tag, image_tag(b"forwarder, another build"));
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_executable() {
        let tar = context_tar(b"\x7fELF...").unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries: Vec<(String, u32, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mode = entry.header().mode().unwrap();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                (name, mode, bytes)
            })
            .collect();
        entries.sort();
        assert_eq!(entries[0].0, "Dockerfile");
        let dockerfile = String::from_utf8(entries[0].2.clone()).unwrap();
        assert!(dockerfile.starts_with("FROM scratch\n"), "{dockerfile}");
        assert!(dockerfile.contains("ENTRYPOINT [\"/sandbox-forwarder\"]"));
        assert_eq!(
            entries[1],
            (
                "sandbox-forwarder".to_string(),
                0o755,
                b"\x7fELF...".to_vec()
            )
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_static_linux_forwarder_is_embedded() {
        assert!(
            EMBEDDED.starts_with(b"\x7fELF"),
            "build.rs embeds the binary"
        );
        // A static executable asks for no program interpreter (ld.so): it runs FROM scratch.
        let interpreter = b"/lib64/ld-linux";
        assert!(
            !EMBEDDED
                .windows(interpreter.len())
                .any(|window| window == interpreter),
            "the embedded forwarder is dynamically linked"
        );
    }
}
