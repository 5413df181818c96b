//! `/ws`: a WebSocket echo (RFC 6455). The handshake answers 101 with the accept key; then text and binary
//! messages are echoed (fragments reassembled), pings answered with pongs, and a close echoed back.

use std::io::{self, Read, Write};

use crate::digest::{base64, sha1};
use crate::http::request::Request;
use crate::http::response::{Response, Then};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest message echoed (else close 1009).
const MESSAGE_LIMIT: usize = 1024 * 1024;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{}{GUID}", key.trim()).as_bytes()))
}

/// The 101 answer to a valid upgrade request, or the error response explaining what is missing.
pub fn handshake(request: &Request, service: &str) -> Response {
    let headers = &request.headers;
    if request.method != "GET"
        || !headers.has_token("upgrade", "websocket")
        || !headers.has_token("connection", "upgrade")
    {
        return Response::error(
            426,
            "`/ws` needs a WebSocket upgrade (GET with `Upgrade: websocket`)",
            service,
        )
        .with_header("Upgrade", "websocket");
    }
    if headers.get("sec-websocket-version").map(str::trim) != Some("13") {
        return Response::error(426, "only WebSocket version 13 is supported", service)
            .with_header("Sec-WebSocket-Version", "13");
    }
    let Some(key) = headers.get("sec-websocket-key") else {
        return Response::error(400, "missing `Sec-WebSocket-Key`", service);
    };
    let mut response = Response::new(101, "", "").then(Then::WebSocket);
    response.headers.0.clear();
    response
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Sec-WebSocket-Accept", &accept_key(key))
}

/// One frame, unmasked.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Final fragment.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Why the echo loop stopped reading: an I/O error, or a protocol violation to close with this code.
#[derive(Debug)]
enum Stop {
    Io(io::Error),
    Close(u16),
}

impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Self {
        Stop::Io(error)
    }
}

/// Reads one client frame (which must be masked).
fn read_frame(reader: &mut impl Read) -> Result<Frame, Stop> {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head)?;
    let (fin, rsv, opcode) = (head[0] & 0x80 != 0, head[0] & 0x70, head[0] & 0x0F);
    let masked = head[1] & 0x80 != 0;
    let length = match head[1] & 0x7F {
        126 => {
            let mut bytes = [0u8; 2];
            reader.read_exact(&mut bytes)?;
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0u8; 8];
            reader.read_exact(&mut bytes)?;
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    let control = opcode >= CLOSE;
    if rsv != 0 || !masked || (control && (!fin || length > 125)) {
        return Err(Stop::Close(1002));
    }
    if length > MESSAGE_LIMIT as u64 {
        return Err(Stop::Close(1009));
    }
    let mut mask = [0u8; 4];
    reader.read_exact(&mut mask)?;
    let mut payload = vec![0u8; length as usize];
    reader.read_exact(&mut payload)?;
    for (index, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[index % 4];
    }
    Ok(Frame {
        fin,
        opcode,
        payload,
    })
}

/// Writes one unmasked server frame.
pub fn write_frame(writer: &mut impl Write, opcode: u8, payload: &[u8]) -> io::Result<()> {
    let mut head = vec![0x80 | opcode];
    match payload.len() {
        length @ 0..=125 => head.push(length as u8),
        length @ 126..=0xFFFF => {
            head.push(126);
            head.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            head.push(127);
            head.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    writer.write_all(&head)?;
    writer.write_all(payload)?;
    writer.flush()
}

/// Echoes messages until the client closes, the connection fails or the client breaks the protocol.
pub fn serve(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<()> {
    match echo(reader, writer) {
        Ok(()) => Ok(()),
        Err(Stop::Close(code)) => write_frame(writer, CLOSE, &code.to_be_bytes()),
        Err(Stop::Io(error)) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        Err(Stop::Io(error)) => Err(error),
    }
}

fn echo(reader: &mut impl Read, writer: &mut impl Write) -> Result<(), Stop> {
    let mut message: Option<(u8, Vec<u8>)> = None;
    loop {
        let frame = read_frame(reader)?;
        match frame.opcode {
            PING => write_frame(writer, PONG, &frame.payload)?,
            PONG => {}
            CLOSE => {
                let code = frame.payload.get(..2).unwrap_or(&[]);
                write_frame(writer, CLOSE, code)?;
                return Ok(());
            }
            TEXT | BINARY if message.is_none() => message = Some((frame.opcode, frame.payload)),
            CONTINUATION if message.is_some() => {
                if let Some((_, data)) = message.as_mut() {
                    if data.len() + frame.payload.len() > MESSAGE_LIMIT {
                        return Err(Stop::Close(1009));
                    }
                    data.extend_from_slice(&frame.payload);
                }
            }
            _ => return Err(Stop::Close(1002)),
        }
        if frame.fin && frame.opcode < CLOSE {
            if let Some((opcode, data)) = message.take() {
                if opcode == TEXT && std::str::from_utf8(&data).is_err() {
                    return Err(Stop::Close(1007));
                }
                write_frame(writer, opcode, &data)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![
            if fin { 0x80 } else { 0 } | opcode,
            0x80 | payload.len() as u8,
        ];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    fn run(input: Vec<u8>) -> Vec<u8> {
        let mut output = Vec::new();
        serve(&mut input.as_slice(), &mut output).expect("in-memory echo");
        output
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn decodes_the_rfc_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello"
        let frame = read_frame(
            &mut &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ][..],
        );
        assert_eq!(
            frame.ok(),
            Some(Frame {
                fin: true,
                opcode: TEXT,
                payload: b"Hello".to_vec()
            })
        );
    }

    #[test]
    fn echoes_text_fragments_ping_and_close() {
        let mut input = client_frame(true, TEXT, b"Hello");
        input.extend(client_frame(false, BINARY, b"ab"));
        input.extend(client_frame(true, PING, b"p"));
        input.extend(client_frame(true, CONTINUATION, b"cd"));
        input.extend(client_frame(true, CLOSE, &1000u16.to_be_bytes()));
        let mut expected = vec![0x81, 5];
        expected.extend_from_slice(b"Hello");
        expected.extend_from_slice(&[0x8A, 1, b'p']);
        expected.extend_from_slice(&[0x82, 4]);
        expected.extend_from_slice(b"abcd");
        expected.extend_from_slice(&[0x88, 2, 0x03, 0xE8]);
        assert_eq!(run(input), expected);
    }

    #[test]
    fn protocol_violations_close_with_a_code() {
        let unmasked = vec![0x81, 0x01, b'x'];
        assert_eq!(run(unmasked), [0x88, 2, 0x03, 0xEA]); // 1002
        let invalid_utf8 = client_frame(true, TEXT, &[0xff, 0xfe]);
        assert_eq!(run(invalid_utf8), [0x88, 2, 0x03, 0xEF]); // 1007
        let stray_continuation = client_frame(true, CONTINUATION, b"x");
        assert_eq!(run(stray_continuation), [0x88, 2, 0x03, 0xEA]);
    }

    #[test]
    fn long_payloads_use_extended_lengths() {
        let mut out = Vec::new();
        write_frame(&mut out, BINARY, &[0u8; 300]).expect("write");
        assert_eq!(&out[..4], &[0x82, 126, 0x01, 0x2C]);
        assert_eq!(out.len(), 304);
    }

    #[test]
    fn handshake_requires_an_upgrade() {
        let mut request = Request {
            method: "GET".to_string(),
            path: "/ws".to_string(),
            ..Request::default()
        };
        assert_eq!(handshake(&request, "demo").status, 426);
        for (name, value) in [
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ] {
            request.headers.push(name, value);
        }
        let response = handshake(&request, "demo");
        assert_eq!((response.status, response.then), (101, Then::WebSocket));
        assert_eq!(
            response.headers.get("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }
}
