//! Progress events.
