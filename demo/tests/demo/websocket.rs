//! `/ws`: handshake and echo over a real socket.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{get, read_reply, Service};

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn read_frame(reader: &mut impl Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).expect("frame head");
    assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
    let mut payload = vec![0; usize::from(head[1] & 0x7F)];
    reader.read_exact(&mut payload).expect("payload");
    (head[0], payload)
}

#[test]
fn websocket_echoes_text_binary_ping_and_close() {
    let service = Service::start(&[]);
    let stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    writer
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("handshake");
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader);
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.header("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(reply.header("upgrade").as_deref(), Some("websocket"));

    writer.write_all(&masked(0x1, b"hello ws")).expect("text");
    assert_eq!(read_frame(&mut reader), (0x81, b"hello ws".to_vec()));
    writer
        .write_all(&masked(0x2, &[0, 1, 2, 255]))
        .expect("binary");
    assert_eq!(read_frame(&mut reader), (0x82, vec![0, 1, 2, 255]));
    writer
        .write_all(&masked(0x9, b"are you there"))
        .expect("ping");
    assert_eq!(read_frame(&mut reader), (0x8A, b"are you there".to_vec()));
    writer
        .write_all(&masked(0x8, &1000u16.to_be_bytes()))
        .expect("close");
    assert_eq!(read_frame(&mut reader), (0x88, vec![0x03, 0xE8]));
    let mut rest = Vec::new();
    assert_eq!(
        reader.read_to_end(&mut rest).expect("eof"),
        0,
        "the server closes after the close frame"
    );
}

#[test]
fn plain_get_on_ws_asks_for_an_upgrade() {
    let service = Service::start(&[]);
    let reply = get(service.port, "/ws");
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("upgrade").as_deref(), Some("websocket"));
}
