//! Command-line arguments → [`Command`]. Owns the usage text; does no work itself.

use std::time::Duration;

/// The usage text of `--help`.
pub const USAGE: &str = "\
sandbox-demo: a small HTTP service for sandbox examples and tests

Usage:
  sandbox-demo [--listen-after MS]   serve HTTP (configured by environment, see demo/README.md)
  sandbox-demo --exit CODE           print a line to stderr and exit with CODE at once
  sandbox-demo probe URL [--timeout-ms MS]
                                     GET URL; exit 0 on 2xx/3xx, else 1 (an exec health check)
  sandbox-demo --help

Environment: PORT, SERVICE_NAME, OTEL_SERVICE_NAME, ROUTES, HEALTH_STATUS, ZIPKIN_ENDPOINT,
CALL_TIMEOUT_MS, MAX_CONNECTIONS.";

/// What the process was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Serve HTTP, after waiting `listen_after`.
    Serve {
        /// Delay before listening.
        listen_after: Duration,
    },
    /// Exit at once with this code.
    Exit(i32),
    /// GET a URL and report health by exit code.
    Probe {
        /// The URL to GET.
        url: String,
        /// Connect and read timeout.
        timeout: Duration,
    },
    /// Print usage.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter().map(String::as_str);
    let mut listen_after = Duration::ZERO;
    let mut exit = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .or_else(|| args.next())
                .ok_or(format!("`{flag}` needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--exit" => exit = Some(number::<i32>(flag, value()?)?),
            "--listen-after" => listen_after = Duration::from_millis(number(flag, value()?)?),
            "probe" => return parse_probe(args.collect()),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(match exit {
        Some(code) => Command::Exit(code),
        None => Command::Serve { listen_after },
    })
}

fn parse_probe(args: Vec<&str>) -> Result<Command, String> {
    match args.as_slice() {
        [url] => Ok(Command::Probe {
            url: url.to_string(),
            timeout: Duration::from_secs(2),
        }),
        [url, "--timeout-ms", millis] | ["--timeout-ms", millis, url] => Ok(Command::Probe {
            url: url.to_string(),
            timeout: Duration::from_millis(number("--timeout-ms", millis)?),
        }),
        _ => Err("usage: sandbox-demo probe URL [--timeout-ms MS]".to_string()),
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("`{flag}` needs a number: got `{value}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Command, String> {
        parse(
            &words
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn parses_each_command() {
        assert_eq!(
            parse_words(""),
            Ok(Command::Serve {
                listen_after: Duration::ZERO
            })
        );
        assert_eq!(
            parse_words("--listen-after 1500"),
            Ok(Command::Serve {
                listen_after: Duration::from_millis(1500)
            })
        );
        assert_eq!(parse_words("--exit 3"), Ok(Command::Exit(3)));
        assert_eq!(parse_words("--exit=7"), Ok(Command::Exit(7)));
        assert_eq!(parse_words("--help"), Ok(Command::Help));
        assert_eq!(
            parse_words("probe http://127.0.0.1:8080/health --timeout-ms 500"),
            Ok(Command::Probe {
                url: "http://127.0.0.1:8080/health".to_string(),
                timeout: Duration::from_millis(500)
            })
        );
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(
            parse_words("--exit"),
            Err("`--exit` needs a value".to_string())
        );
        assert_eq!(
            parse_words("--exit x"),
            Err("`--exit` needs a number: got `x`".to_string())
        );
        assert_eq!(
            parse_words("--port 1"),
            Err("unexpected argument `--port`".to_string())
        );
        assert!(parse_words("probe").is_err());
    }
}
