//! gRPC's length-prefixed messages: one flag byte (0: not compressed), a big-endian `u32` length,
//! the payload. Messages are raw bytes here (no protobuf), so any client with identity
//! serializers can talk to the peer.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message either side accepts (gRPC's default is 4 MiB; the tests send more).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// `payload` framed as one uncompressed gRPC message.
pub fn encode(payload: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + payload.len());
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    framed.freeze()
}

/// Splits a stream of body chunks into messages as they complete.
#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
}

impl Decoder {
    /// Adds a chunk; returns the messages it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        while self.buffer.len() >= 5 {
            if self.buffer[0] != 0 {
                return Err(format!(
                    "compressed messages are not supported (flag {})",
                    self.buffer[0]
                ));
            }
            let length = u32::from_be_bytes([
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
                self.buffer[4],
            ]) as usize;
            if length > MAX_MESSAGE {
                return Err(format!("a message of {length} bytes is over {MAX_MESSAGE}"));
            }
            if self.buffer.len() < 5 + length {
                break;
            }
            self.buffer.advance(5);
            messages.push(self.buffer.split_to(length).freeze());
        }
        Ok(messages)
    }

    /// At the end of the body: an error when a message was cut short.
    pub fn finish(&self) -> Result<(), String> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the body ended inside a message ({} bytes left over)",
                self.buffer.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_chunks_come_out_whole_and_in_order() {
        let mut wire = encode(b"hello").to_vec();
        wire.extend_from_slice(&encode(b""));
        wire.extend_from_slice(&encode(b"world"));
        let mut decoder = Decoder::default();
        let mut messages = Vec::new();
        for chunk in wire.chunks(3) {
            messages.extend(decoder.push(chunk).unwrap());
        }
        assert_eq!(messages, [&b"hello"[..], b"", b"world"]);
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn a_cut_message_and_a_compressed_one_are_errors() {
        let mut decoder = Decoder::default();
        assert!(decoder.push(&encode(b"hello")[..7]).unwrap().is_empty());
        assert!(decoder.finish().is_err());
        let mut decoder = Decoder::default();
        assert!(decoder.push(&[1, 0, 0, 0, 1, 9]).is_err());
    }
}
