//! `sandbox-demo probe URL`: an exec health check for images without a shell.

use std::time::Duration;

use crate::http::client::{self, Url};
use crate::http::Headers;

/// GETs `url`: 0 on 2xx/3xx, 1 otherwise (with the reason on stderr).
pub fn run(url: &str, timeout: Duration) -> i32 {
    let result = Url::parse(url).and_then(|url| client::get(&url, &Headers::default(), timeout));
    match result {
        Ok(response) if (200..400).contains(&response.status) => 0,
        Ok(response) => {
            eprintln!("probe: {url} answered {}", response.status);
            1
        }
        Err(error) => {
            eprintln!("probe: {url}: {error}");
            1
        }
    }
}
