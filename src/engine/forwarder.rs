//! The mesh forwarder's image. Placeholder until the image built from the embedded forwarder
//! binary lands: every call says the image is not available.

use super::docker::Docker;
use super::error::EngineError;

/// The forwarder image's reference, once it is on the engine.
pub async fn ensure_image(_docker: &Docker) -> Result<String, EngineError> {
    Err(EngineError::Api {
        action: "preparing the mesh forwarder image".to_string(),
        message: "this build of sandbox has no forwarder image\n  hint: write `mesh: false` at the top of the manifest to run without the transparent mesh".to_string(),
    })
}
