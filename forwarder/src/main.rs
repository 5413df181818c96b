//! `sandbox-forwarder`: reads its environment (see [`sandbox_forwarder::config`]), listens and
//! forwards until it is stopped. Exit codes: 2 for a bad or missing variable, 1 when a port
//! cannot be listened on.

use sandbox_forwarder::config::Config;
use sandbox_forwarder::forward::{Forwarder, Limits};

fn main() {
    sandbox_forwarder::os::exit_on_terminate();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sandbox-forwarder: {error}");
            std::process::exit(2);
        }
    };
    match Forwarder::bind(config, Limits::default()) {
        Ok(forwarder) => forwarder.serve(),
        Err(error) => {
            eprintln!("sandbox-forwarder: {error}");
            std::process::exit(1);
        }
    }
}
