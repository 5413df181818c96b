//! Bare-LF line ends in request heads are refused (`400`), on both transports. hyper's parser
//! (`httparse`) accepts a lone `\n` as a line end, which RFC 9112 §2.2 allows but which lets a
//! proxy and its upstream disagree on where a head ends. [`StrictLineEnds`] wraps a client
//! connection before hyper reads it: it follows the heads (and the `Content-Length` bodies
//! between them) and turns a bare LF in a head into a NUL byte, which hyper's parser rejects
//! with its `400`. The fast path declines heads with a bare LF ([`has_bare_lf`]), so they reach
//! hyper through this wrapper too. After a request whose body is chunked, an upgrade or
//! `CONNECT`, it stops looking (the rest of the connection is passed through unchanged).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether `head` has a `\n` not preceded by `\r`. On the fast path for every request head:
/// `memchr` visits only the few line ends instead of every byte.
pub fn has_bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|at| at == 0 || head[at - 1] != b'\r')
}

/// Where the reader is in the client's stream.
enum State {
    /// In a request head: the bytes so far.
    Head(Vec<u8>),
    /// In a `Content-Length` body: bytes still to come.
    Body(u64),
    /// No longer looking.
    Through,
}

/// A client connection whose request heads must end lines with CRLF.
pub struct StrictLineEnds<I> {
    inner: I,
    state: State,
    /// Heads longer than this are left to hyper's own limit.
    max_head: usize,
}

impl<I> StrictLineEnds<I> {
    pub fn new(inner: I, max_head: usize) -> Self {
        StrictLineEnds {
            inner,
            state: State::Head(Vec::new()),
            max_head,
        }
    }

    /// Follows `bytes` (just read), spoiling a bare LF in a head.
    fn inspect(&mut self, mut bytes: &mut [u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Through => return,
                State::Body(left) => {
                    let skip = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= skip as u64;
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    bytes = &mut bytes[skip..];
                }
                State::Head(head) => {
                    let mut at = 0;
                    let mut ended = false;
                    while at < bytes.len() {
                        let byte = bytes[at];
                        if byte == b'\n' && head.last() != Some(&b'\r') {
                            bytes[at] = 0;
                            self.state = State::Through;
                            return;
                        }
                        head.push(byte);
                        at += 1;
                        if head.ends_with(b"\r\n\r\n") {
                            ended = true;
                            break;
                        }
                    }
                    self.state = if ended {
                        next_state(head)
                    } else if head.len() > self.max_head {
                        State::Through
                    } else {
                        return;
                    };
                    bytes = &mut bytes[at..];
                }
            }
        }
    }
}

/// What follows a whole head: its body (by `Content-Length`), the next head, or — for anything
/// this reader does not follow — nothing more to inspect.
fn next_state(head: &[u8]) -> State {
    let mut slots = [httparse::EMPTY_HEADER; super::codec::MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_)))
        || request.method == Some("CONNECT")
    {
        return State::Through;
    }
    let mut length = 0;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") || name.eq_ignore_ascii_case("upgrade") {
            return State::Through;
        }
        if name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(header.value)
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
            {
                Some(value) => length = value,
                None => return State::Through,
            }
        }
    }
    if length == 0 {
        State::Head(Vec::new())
    } else {
        State::Body(length)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StrictLineEnds<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = poll {
            self.inspect(&mut buffer.filled_mut()[before..]);
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StrictLineEnds<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspected(chunks: &[&[u8]]) -> Vec<u8> {
        let mut reader = StrictLineEnds::new((), 64 * 1024);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut bytes = chunk.to_vec();
            reader.inspect(&mut bytes);
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn crlf_heads_and_bodies_pass_unchanged() {
        let stream: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: 3\r",
            b"\n\r\na\nbGET / HTTP/1.1\r\n\r\n",
        ];
        assert_eq!(inspected(stream), stream.concat());
    }

    #[test]
    fn a_bare_lf_in_a_head_is_spoiled() {
        assert_eq!(
            inspected(&[b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\nHost: x\n\n"]),
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\0Host: x\n\n".to_vec()
        );
    }

    #[test]
    fn chunked_bodies_are_passed_through() {
        let stream: &[&[u8]] = &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\na\n"];
        assert_eq!(inspected(stream), stream.concat());
    }

    #[test]
    fn bare_lf_detection() {
        assert!(has_bare_lf(b"GET / HTTP/1.1\nHost: x\r\n\r\n"));
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
