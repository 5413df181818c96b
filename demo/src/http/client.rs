//! A minimal HTTP/1.1 client for `call` routes and the `probe` subcommand: `http://` only, one request per
//! connection, Content-Length, chunked or read-to-close bodies.

use std::io::{BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{read_chunked, read_head, Headers, ReadError};

/// Largest downstream response body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// An `http://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, 80 when absent.
    pub port: u16,
    /// Path and query, `/` when absent.
    pub target: String,
}

impl Url {
    /// Parses an `http://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("http://")
            .ok_or("only `http://` URLs are supported")?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(index) if rest[index..].starts_with('?') => {
                (&rest[..index], format!("/{}", &rest[index..]))
            }
            Some(index) => (&rest[..index], rest[index..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = split_authority(authority)?;
        if host.is_empty() {
            return Err("the URL has no host".to_string());
        }
        Ok(Self { host, port, target })
    }

    /// `host:port` for the `Host` header and messages (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }
}

fn split_authority(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[` in the host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().map_err(|_| format!("invalid port `{port}`"))?,
        None => 80,
    };
    Ok((host.to_string(), port))
}

/// A downstream response.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Header fields.
    pub headers: Headers,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

/// Sends `GET url` with `headers` and reads the whole response; `timeout` bounds connecting and each read.
pub fn get(url: &Url, headers: &Headers, timeout: Duration) -> Result<ClientResponse, String> {
    send("GET", url, headers, &[], timeout)
}

/// Sends one request (with `Content-Length` when `body` is not empty) and reads the whole response.
pub fn send(
    method: &str,
    url: &Url,
    headers: &Headers,
    body: &[u8],
    timeout: Duration,
) -> Result<ClientResponse, String> {
    let mut stream = connect(url, timeout)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sandbox-demo\r\nAccept: application/json\r\nConnection: close\r\n",
        url.target,
        url.authority()
    );
    for (name, value) in &headers.0 {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut message = request.into_bytes();
    message.extend_from_slice(body);
    stream
        .write_all(&message)
        .map_err(|e| format!("sending the request: {e}"))?;
    read_response(&mut BufReader::new(stream)).map_err(|error| match error {
        ReadError::Closed => "the connection closed before a response".to_string(),
        other => format!("reading the response: {other}"),
    })
}

fn connect(url: &Url, timeout: Duration) -> Result<TcpStream, String> {
    let addresses = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving `{}`: {e}", url.host))?;
    let mut last_error = format!("`{}` resolved to no address", url.host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = format!("connecting to {address}: {error}"),
        }
    }
    Err(last_error)
}

fn read_response(reader: &mut BufReader<TcpStream>) -> Result<ClientResponse, ReadError> {
    loop {
        let (line, headers) = read_head(reader, 64 * 1024)?;
        let status = parse_status_line(&line)?;
        if (100..200).contains(&status) {
            continue; // interim response; the real one follows
        }
        let body = read_response_body(reader, &headers, status)?;
        return Ok(ClientResponse {
            status,
            headers,
            body,
        });
    }
}

/// `HTTP/1.1 200 OK` → 200.
pub fn parse_status_line(line: &str) -> Result<u16, ReadError> {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status)))
            if version.starts_with("HTTP/1.") && (100..600).contains(&status) =>
        {
            Ok(status)
        }
        _ => Err(ReadError::Invalid(
            502,
            format!("invalid status line `{line}`"),
        )),
    }
}

fn read_response_body(
    reader: &mut impl std::io::BufRead,
    headers: &Headers,
    status: u16,
) -> Result<Vec<u8>, ReadError> {
    if status == 204 || status == 304 {
        return Ok(Vec::new());
    }
    if headers.has_token("transfer-encoding", "chunked") {
        return read_chunked(reader, BODY_LIMIT);
    }
    if let Some(length) = headers.get("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| ReadError::Invalid(502, format!("invalid Content-Length `{length}`")))?;
        if length > BODY_LIMIT {
            return Err(ReadError::Invalid(
                502,
                format!("body exceeds {BODY_LIMIT} bytes"),
            ));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    reader.take(BODY_LIMIT as u64).read_to_end(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = Url::parse("http://item:8080/items/1?x=2").expect("valid");
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("item", 8080, "/items/1?x=2")
        );
        assert_eq!(url.path(), "/items/1");
        let bare = Url::parse("http://item").expect("valid");
        assert_eq!(
            (bare.port, bare.target.as_str(), bare.authority()),
            (80, "/", "item:80".to_string())
        );
        let query = Url::parse("http://item?x=1").expect("valid");
        assert_eq!(query.target, "/?x=1");
        let ipv6 = Url::parse("http://[::1]:9/").expect("valid");
        assert_eq!(
            (ipv6.host.as_str(), ipv6.authority()),
            ("::1", "[::1]:9".to_string())
        );
    }

    #[test]
    fn rejects_unsupported_urls() {
        assert_eq!(
            Url::parse("https://x/"),
            Err("only `http://` URLs are supported".to_string())
        );
        assert_eq!(
            Url::parse("http://x:port/"),
            Err("invalid port `port`".to_string())
        );
        assert_eq!(
            Url::parse("http:///a"),
            Err("the URL has no host".to_string())
        );
    }

    #[test]
    fn reads_bodies_by_each_framing() {
        let headers = |pairs: &[(&str, &str)]| {
            Headers(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let mut chunked: &[u8] = b"2\r\nok\r\n0\r\n\r\n";
        let body = read_response_body(
            &mut chunked,
            &headers(&[("Transfer-Encoding", "chunked")]),
            200,
        );
        assert_eq!(body.expect("chunked"), b"ok");
        let mut sized: &[u8] = b"abcdef";
        let body = read_response_body(&mut sized, &headers(&[("Content-Length", "3")]), 200);
        assert_eq!(body.expect("sized"), b"abc");
        let mut until_close: &[u8] = b"rest of it";
        assert_eq!(
            read_response_body(&mut until_close, &headers(&[]), 200).expect("eof"),
            b"rest of it"
        );
        assert_eq!(parse_status_line("HTTP/1.1 404 Not Found").ok(), Some(404));
        assert!(parse_status_line("SSH-2.0").is_err());
    }
}
