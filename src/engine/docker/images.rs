//! Images sandbox makes for itself (the mesh forwarder's): built from a context tar with
//! labels, found again by label, removed when no container uses them.

use std::collections::HashMap;

use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{api_error, describe_error, status_of, Docker};
use crate::engine::error::EngineError;

/// An image found by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    pub id: String,
    /// `repository:tag` names; empty for an image a newer build of the same tag replaced.
    pub tags: Vec<String>,
}

impl Docker {
    /// Builds `tag` from `context_tar` (a `Dockerfile` at its root) with the classic builder,
    /// which works offline; `Err` carries the build's last output lines.
    pub async fn build_labelled_image(
        &self,
        tag: &str,
        labels: &HashMap<String, String>,
        context_tar: Vec<u8>,
    ) -> Result<(), Vec<String>> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(labels)
            .build();
        let mut stream =
            self.client
                .build_image(options, None, Some(bollard::body_full(context_tar.into())));
        let mut output = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        output.extend(
                            text.lines()
                                .filter(|line| !line.trim().is_empty())
                                .map(|line| line.trim_end().to_string()),
                        );
                    }
                    if let Some(detail) = info.error_detail {
                        output.push(format!("error: {}", detail.message.unwrap_or_default()));
                        return Err(output);
                    }
                }
                Err(error) => {
                    output.push(format!("error: {}", describe_error(&error)));
                    return Err(output);
                }
            }
        }
        Ok(())
    }

    /// The images carrying `label` (`key` or `key=value`).
    pub async fn labelled_images(&self, label: &str) -> Result<Vec<LabelledImage>, EngineError> {
        let filters = HashMap::from([("label", vec![label])]);
        let options = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let images = self
            .client
            .list_images(Some(options))
            .await
            .map_err(|error| api_error("listing images", error))?;
        Ok(images
            .into_iter()
            .map(|image| LabelledImage {
                id: image.id,
                tags: image
                    .repo_tags
                    .into_iter()
                    .filter(|tag| tag != "<none>:<none>")
                    .collect(),
            })
            .collect())
    }

    /// Removes an image unless a container (running or not) uses it: `Ok(true)` when removed,
    /// `Ok(false)` when in use or already gone.
    pub async fn remove_unused_image(&self, id: &str) -> Result<bool, EngineError> {
        let options = RemoveImageOptionsBuilder::default().force(false).build();
        match self.client.remove_image(id, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(error) if matches!(status_of(&error), Some(404 | 409)) => Ok(false),
            Err(error) => Err(api_error(&format!("removing image `{id}`"), error)),
        }
    }
}
