//! One message's headers as the proxy edits and sends them ([`Headers`]), after pingora-http's
//! `RequestHeader`: an `http::HeaderMap`, the upstream's header lines kept as it sent them
//! ([`RawLines`]), and the lines the proxy adds, kept consistent inside and edited only through
//! methods. Two conversions leave it: [`Headers::write_h1`] (the fast path's writers) and
//! [`Headers::into_header_map`] (hyper's HTTP/1.1 and HTTP/2 writers); both send the same headers.
//!
//! Why three parts: on the fast path a response whose upstream lines need no edit is copied as
//! sent, and the lines the proxy adds are formatted once into one buffer, so no map is built and
//! nothing is allocated per header. A part is turned into map entries only when an edit names a
//! header it holds.
//!
//! Must not touch: framing (`content-length`, `transfer-encoding`), `Date` and the status line,
//! which the writers own.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::headers::{is_hop_by_hop_name, strip_hop_by_hop};

/// A message's headers: the map, then the upstream's raw lines, then the added lines, in that
/// order on the wire and in [`Headers::into_header_map`].
///
/// Invariants (private): a name removed or replaced is gone from all three parts; every added
/// line is a valid `http` name and value, so both conversions send the same lines; raw lines
/// hold no hop-by-hop header (the codec that builds them keeps such responses in a map).
#[derive(Debug, Default, Clone)]
pub struct Headers {
    map: HeaderMap,
    /// Boxed: most messages have none, and the type is moved through several futures.
    raw: Option<Box<RawLines>>,
    added: Added,
}

impl Headers {
    /// Headers held in `map`.
    pub fn from_map(map: HeaderMap) -> Headers {
        Headers {
            map,
            ..Headers::default()
        }
    }

    /// The headers of `response`, taken out of it: its map and the raw lines a client left in
    /// its extensions. The response is left with an empty map.
    pub fn take_from<B>(response: &mut http::Response<B>) -> Headers {
        let raw = response.extensions_mut().remove::<Box<RawLines>>();
        if raw.is_some() && response.extensions().is_empty() {
            // The raw lines were all it carried: its emptied table goes to the next response's
            // (see [`with_raw_lines`]).
            let extensions = std::mem::take(response.extensions_mut());
            EXTENSIONS.with(|kept| {
                let mut kept = kept.borrow_mut();
                if kept.len() < KEPT_MAPS {
                    kept.push(extensions);
                }
            });
        }
        Headers {
            raw,
            map: std::mem::take(response.headers_mut()),
            added: Added::default(),
        }
    }

    /// The first value of `name`, in any part.
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        if let Some(value) = self.map.get(name) {
            return Some(value.as_bytes());
        }
        if let Some(value) = self.raw.as_ref().and_then(|raw| raw.get(name)) {
            return Some(value);
        }
        self.added.get(name)
    }

    /// Whether `name` has a value in any part.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.map.contains_key(name)
            || self.raw.as_ref().is_some_and(|raw| raw.contains(name))
            || self.added.get(name).is_some()
    }

    /// Adds a value of `name`, after those it has (no lookup: the line is added as text).
    pub fn append(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.added.push_valid(name, &[value.as_bytes()]);
    }

    /// [`Headers::append`] with the value made of `parts`; a value `http` would refuse (a control
    /// character, a line end) is not added at all, so both conversions agree.
    pub fn append_text(&mut self, name: &HeaderName, parts: &[&[u8]]) {
        self.added.push(name, parts);
    }

    /// Replaces every value of `name` with `value`. A name the map does not hold stays out of it.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        if self.raw.as_ref().is_some_and(|raw| raw.contains(&name)) {
            self.materialize_raw();
        }
        self.added.remove(&name);
        if self.map.contains_key(&name) {
            self.map.insert(name, value);
        } else {
            self.added.push_valid(&name, &[value.as_bytes()]);
        }
    }

    /// [`Headers::insert`] with the value made of `parts` (built as a value only when the map
    /// holds the name).
    pub fn insert_text(&mut self, name: HeaderName, parts: &[&[u8]]) {
        if self.map.contains_key(&name) || self.raw.as_ref().is_some_and(|raw| raw.contains(&name))
        {
            if let Ok(value) = HeaderValue::from_bytes(&parts.concat()) {
                self.insert(name, value);
            }
            return;
        }
        self.added.remove(&name);
        self.added.push(&name, parts);
    }

    /// Removes every value of `name`, from every part.
    pub fn remove(&mut self, name: &HeaderName) {
        if self.raw.as_ref().is_some_and(|raw| raw.contains(name)) {
            self.materialize_raw();
        }
        self.map.remove(name);
        self.added.remove(name);
    }

    /// Removes hop-by-hop headers and those `Connection` names; with `upgrade`, keeps the switch
    /// (see [`strip_hop_by_hop`]). Raw lines hold none.
    pub fn strip_hop_by_hop(&mut self, upgrade: bool) {
        strip_hop_by_hop(&mut self.map, upgrade);
        self.added.retain(|name| {
            !is_hop_by_hop_name(name.as_str().as_bytes())
                && (upgrade || name != http::header::UPGRADE)
        });
    }

    /// Writes every header as `name: value\r\n` lines: the map's, the raw lines, the added ones.
    pub fn write_h1(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.map {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(raw) = &self.raw {
            out.extend_from_slice(raw.as_bytes());
        }
        out.extend_from_slice(&self.added.text);
    }

    /// Every header in one map, in the order [`Headers::write_h1`] writes them. Values share the
    /// raw and added text; nothing is parsed again.
    pub fn into_header_map(mut self) -> HeaderMap {
        self.materialize_raw();
        let Added { text, lines } = self.added;
        if !lines.is_empty() {
            let text = Bytes::from(text);
            for (name, start, end) in lines {
                let value = text.slice(start as usize..end as usize);
                if let Ok(value) = HeaderValue::from_maybe_shared(value) {
                    self.map.append(name, value);
                }
            }
        }
        self.map
    }

    /// Keeps the emptied map (and the added lines' buffers) for later messages.
    pub fn recycle(self) {
        recycle(self.map);
        self.added.recycle();
    }

    /// Moves the raw lines into the map (an edit names one of them).
    fn materialize_raw(&mut self) {
        if let Some(raw) = self.raw.take() {
            raw.into_map(&mut self.map);
        }
    }
}

/// Lines the proxy adds, as the text they are sent as, with each line's name and value range.
#[derive(Debug, Default, Clone)]
struct Added {
    text: Vec<u8>,
    lines: Vec<(HeaderName, u32, u32)>,
}

impl Added {
    /// Adds a line, unless a part holds a byte `http` refuses in a value.
    fn push(&mut self, name: &HeaderName, parts: &[&[u8]]) {
        if parts
            .iter()
            .fold(true, |valid, part| valid & is_value(part))
        {
            self.push_valid(name, parts);
        }
    }

    /// Adds a line whose parts are known to be valid (a `HeaderValue`'s bytes, another line's).
    fn push_valid(&mut self, name: &HeaderName, parts: &[&[u8]]) {
        if self.text.capacity() == 0 {
            self.reuse_buffers();
        }
        self.text.extend_from_slice(name.as_str().as_bytes());
        self.text.extend_from_slice(b": ");
        let start = self.text.len();
        for part in parts {
            self.text.extend_from_slice(part);
        }
        let end = self.text.len();
        self.text.extend_from_slice(b"\r\n");
        let at = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        self.lines.push((name.clone(), at(start), at(end)));
    }

    /// Buffers of a recycled message when there is one, else new ones with room for every line
    /// the proxy adds to a request (trace headers included): two allocations a message saved.
    fn reuse_buffers(&mut self) {
        match ADDED.with(|kept| kept.borrow_mut().pop()) {
            Some((text, lines)) if self.lines.is_empty() => {
                self.text = text;
                self.lines = lines;
            }
            _ => {
                self.text.reserve(640);
                self.lines.reserve(12);
            }
        }
    }

    /// Keeps the buffers (emptied) for [`Added::reuse_buffers`], if they are not too large.
    fn recycle(mut self) {
        if self.text.capacity() == 0 || self.text.capacity() > 4096 || self.lines.capacity() > 64 {
            return;
        }
        self.text.clear();
        self.lines.clear();
        ADDED.with(|kept| {
            let mut kept = kept.borrow_mut();
            if kept.len() < KEPT_MAPS {
                kept.push((self.text, self.lines));
            }
        });
    }

    fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        self.lines
            .iter()
            .find(|(line_name, _, _)| line_name == name)
            .map(|&(_, start, end)| &self.text[start as usize..end as usize])
    }

    fn remove(&mut self, name: &HeaderName) {
        self.retain(|line_name| line_name != name);
    }

    /// Keeps the lines whose name passes `keep` (the text is rebuilt only when one goes).
    fn retain(&mut self, keep: impl Fn(&HeaderName) -> bool) {
        if self.lines.iter().all(|(name, _, _)| keep(name)) {
            return;
        }
        let old = std::mem::take(self);
        for (name, start, end) in &old.lines {
            if keep(name) {
                self.push_valid(name, &[&old.text[*start as usize..*end as usize]]);
            }
        }
    }
}

/// What `http` accepts in a header value: visible ASCII, space, tab and obs-text.
fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= 0x20 && byte != 0x7f)
}

/// Whether every byte of `text` is one `http` accepts in a header value ([`is_value_byte`]).
fn is_value(text: &[u8]) -> bool {
    // Without early exits, so that the check runs over whole words (most parts are short: a
    // word-at-a-time loop measured slower).
    text.iter()
        .fold(true, |valid, byte| valid & is_value_byte(*byte))
}

/// Most header lines kept raw; a response with more gets a map.
pub const RAW_LINES: usize = 16;

/// The header lines of an upstream response as it sent them (`name: value\r\n`, the names in any
/// case), less a `Connection` header about the hop. Built by the fast client's codec for a
/// response with no other hop-by-hop header and carried in the response's extensions to
/// [`Headers::take_from`]: the fast writer copies the lines as they are, and map entries are only
/// built when an edit names one of them or hyper writes the response.
#[derive(Debug, Clone)]
pub struct RawLines {
    text: Bytes,
    /// Per line: where its name starts and ends, where its value starts and ends, in `text`.
    lines: [(u32, u32, u32, u32); RAW_LINES],
    count: usize,
    /// A bit set for every name, chosen by its length and first letter ([`name_bit`]): most
    /// lookups end here, without a scan.
    names: u64,
    content_length: Option<u64>,
}

impl RawLines {
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines[..self.count]
            .iter()
            .map(|&(name_at, name_end, value_at, value_end)| {
                (
                    &self.text[name_at as usize..name_end as usize],
                    &self.text[value_at as usize..value_end as usize],
                )
            })
    }

    fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        let name = name.as_str().as_bytes();
        if self.names & name_bit(name) == 0 {
            return None;
        }
        // Lengths first: only a line whose name is as long is sliced and compared.
        self.lines[..self.count]
            .iter()
            .find(|&&(name_at, name_end, _, _)| {
                (name_end - name_at) as usize == name.len()
                    && self
                        .text
                        .get(name_at as usize..name_end as usize)
                        .is_some_and(|line_name| line_name.eq_ignore_ascii_case(name))
            })
            .and_then(|&(_, _, value_at, value_end)| {
                self.text.get(value_at as usize..value_end as usize)
            })
    }

    fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// The `Content-Length`, when there is one.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Adds every line to `headers`.
    fn into_map(self, headers: &mut HeaderMap) {
        for (name, value) in self.lines() {
            let name = HeaderName::from_bytes(name);
            let value = HeaderValue::from_maybe_shared(self.text.slice_ref(value));
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
    }
}

/// A name's bit in [`RawLines`]' filter: from its length and its first byte with ASCII case
/// ignored (`| 0x20`, so names equal but for case get the same bit). The length alone would
/// make `x-request-id` and `content-type`, both twelve bytes long, collide.
fn name_bit(name: &[u8]) -> u64 {
    let first = name.first().map_or(0, |byte| usize::from(byte | 0x20));
    1 << ((name.len() + first * 7) % 64)
}

/// Builds [`RawLines`] from lines the codec has checked (names and values as `httparse` read
/// them, no hop-by-hop header).
pub struct RawLinesBuilder {
    text: BytesMut,
    lines: [(u32, u32, u32, u32); RAW_LINES],
    count: usize,
    names: u64,
    content_length: Option<u64>,
}

impl RawLinesBuilder {
    /// A builder with room for `capacity` bytes of lines.
    pub fn with_capacity(capacity: usize) -> RawLinesBuilder {
        RawLinesBuilder {
            text: BytesMut::with_capacity(capacity),
            lines: [(0, 0, 0, 0); RAW_LINES],
            count: 0,
            names: 0,
            content_length: None,
        }
    }

    /// Adds `line` (`name: value` as sent, without its line end); the name ends at `name_end`,
    /// the value starts at `value_at`. `false` when the builder is full.
    pub fn push(&mut self, line: &[u8], name_end: usize, value_at: usize) -> bool {
        if self.count == RAW_LINES {
            return false;
        }
        let start = self.text.len();
        self.text.extend_from_slice(line);
        self.text.extend_from_slice(b"\r\n");
        let at = |offset: usize| u32::try_from(start + offset).unwrap_or(u32::MAX);
        self.lines[self.count] = (at(0), at(name_end), at(value_at), at(line.len()));
        self.count += 1;
        self.names |= name_bit(line.get(..name_end).unwrap_or(line));
        true
    }

    /// Records the response's `Content-Length`.
    pub fn content_length(&mut self, length: u64) {
        self.content_length = Some(length);
    }

    /// The length recorded so far.
    pub fn recorded_length(&self) -> Option<u64> {
        self.content_length
    }

    pub fn finish(self) -> Box<RawLines> {
        Box::new(RawLines {
            text: self.text.freeze(),
            lines: self.lines,
            count: self.count,
            names: self.names,
            content_length: self.content_length,
        })
    }
}

/// Header maps kept per thread: a map of a request's size is a large allocation, and the fast path
/// needs two per request.
const KEPT_MAPS: usize = 64;

/// The buffers of one message's added lines.
type AddedBuffers = (Vec<u8>, Vec<(HeaderName, u32, u32)>);

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    /// Added lines' buffers kept per thread, as the maps (at most [`KEPT_MAPS`]).
    static ADDED: RefCell<Vec<AddedBuffers>> = const { RefCell::new(Vec::new()) };
    /// Emptied extension tables of responses that carried raw lines (at most [`KEPT_MAPS`]).
    static EXTENSIONS: RefCell<Vec<http::Extensions>> = const { RefCell::new(Vec::new()) };
}

/// Puts `raw` in `response`'s extensions, for [`Headers::take_from`], in an emptied table kept
/// from an earlier response when there is one: a new one is two allocations (the table and its
/// box) per response, and the fast client builds one for every response it reads.
pub fn with_raw_lines<B>(response: &mut http::Response<B>, raw: Box<RawLines>) {
    if response.extensions().is_empty() {
        if let Some(kept) = EXTENSIONS.with(|kept| kept.borrow_mut().pop()) {
            *response.extensions_mut() = kept;
        }
    }
    response.extensions_mut().insert(raw);
}

/// An empty header map, recycled when one is kept.
pub fn take_map() -> HeaderMap {
    MAPS.with(|maps| maps.borrow_mut().pop())
        .unwrap_or_else(|| HeaderMap::with_capacity(32))
}

/// Keeps `map` (emptied) for [`take_map`].
pub fn recycle(mut map: HeaderMap) {
    if map.capacity() > 256 {
        return;
    }
    map.clear();
    MAPS.with(|maps| {
        let mut maps = maps.borrow_mut();
        if maps.len() < KEPT_MAPS {
            maps.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(lines: &[&str]) -> Box<RawLines> {
        let mut builder = RawLinesBuilder::with_capacity(256);
        for line in lines {
            let colon = line.find(':').expect("a colon");
            let value_at =
                colon + 1 + (line.len() - colon - 1 - line[colon + 1..].trim_start().len());
            assert!(builder.push(line.as_bytes(), colon, value_at));
        }
        builder.finish()
    }

    /// A message with all three parts: a map, raw upstream lines, added lines.
    fn three_parts() -> Headers {
        let mut map = HeaderMap::new();
        map.insert("x-map", HeaderValue::from_static("m"));
        let mut headers = Headers {
            map,
            raw: Some(raw(&["Server: up", "X-Id:  7", "content-length:3"])),
            added: Added::default(),
        };
        headers.append_text(&HeaderName::from_static("x-added"), &[b"a", b"-", b"1"]);
        headers
    }

    #[test]
    fn recycled_buffers_come_back_empty() {
        three_parts().recycle();
        let mut headers = Headers::default();
        let name = HeaderName::from_static("x-next");
        headers.append(&name, &HeaderValue::from_static("n"));
        let mut text = Vec::new();
        headers.write_h1(&mut text);
        assert_eq!(text, b"x-next: n\r\n");
        assert_eq!(headers.get(&name), Some(&b"n"[..]));
        assert_eq!(headers.get(&HeaderName::from_static("x-added")), None);
    }

    /// What `write_h1` wrote, read back into a map.
    fn read_back(headers: &Headers) -> HeaderMap {
        let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
        headers.write_h1(&mut text);
        text.extend_from_slice(b"\r\n");
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut slots);
        assert!(response.parse(&text).expect("valid").is_complete());
        let mut map = HeaderMap::new();
        for header in response.headers.iter() {
            map.append(
                HeaderName::from_bytes(header.name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(header.value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn parts_are_written_map_then_raw_then_added() {
        let headers = three_parts();
        let mut out = Vec::new();
        headers.write_h1(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "x-map: m\r\nServer: up\r\nX-Id:  7\r\ncontent-length:3\r\nx-added: a-1\r\n"
        );
        assert_eq!(
            headers.get(&HeaderName::from_static("x-id")),
            Some(&b"7"[..])
        );
        assert_eq!(
            headers.get(&HeaderName::from_static("x-added")),
            Some(&b"a-1"[..])
        );
    }

    #[test]
    fn the_header_map_equals_what_is_written() {
        let mut headers = three_parts();
        headers.append(
            &HeaderName::from_static("x-map"),
            &HeaderValue::from_static("m2"),
        );
        let written = read_back(&headers);
        let map = headers.into_header_map();
        assert_eq!(map, written);
        let values: Vec<_> = map.get_all("x-map").iter().collect();
        assert_eq!(values, ["m", "m2"], "values in the order written");
    }

    #[test]
    fn a_removed_header_reaches_neither_writer() {
        for name in ["x-map", "server", "x-added"] {
            let mut headers = three_parts();
            let name = HeaderName::from_static(name);
            headers.append(&name, &HeaderValue::from_static("again"));
            headers.remove(&name);
            assert!(!headers.contains(&name));
            let written = read_back(&headers);
            assert!(!written.contains_key(&name), "{name} written");
            assert!(
                !headers.into_header_map().contains_key(&name),
                "{name} mapped"
            );
        }
    }

    #[test]
    fn insert_replaces_in_whichever_part_holds_the_name() {
        for name in ["x-map", "server", "x-added", "x-new"] {
            let mut headers = three_parts();
            let name = HeaderName::from_static(name);
            headers.insert(name.clone(), HeaderValue::from_static("new"));
            let written = read_back(&headers);
            let values: Vec<_> = written.get_all(&name).iter().collect();
            assert_eq!(values, ["new"], "{name}");
            assert_eq!(headers.into_header_map(), written);
        }
    }

    #[test]
    fn many_added_lines_keep_their_order_through_removals() {
        let mut headers = Headers::default();
        let names: Vec<HeaderName> = (0..7)
            .map(|index| HeaderName::from_bytes(format!("x-{index}").as_bytes()).expect("name"))
            .collect();
        for (index, name) in names.iter().enumerate() {
            headers.append_text(name, &[index.to_string().as_bytes()]);
        }
        headers.remove(&names[1]);
        headers.remove(&names[5]);
        let mut out = Vec::new();
        headers.write_h1(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "x-0: 0\r\nx-2: 2\r\nx-3: 3\r\nx-4: 4\r\nx-6: 6\r\n"
        );
        assert_eq!(headers.get(&names[6]), Some(&b"6"[..]));
        let written = read_back(&headers);
        assert_eq!(headers.into_header_map(), written);
    }

    #[test]
    fn lines_that_http_would_refuse_are_not_added() {
        let mut headers = Headers::default();
        let name = HeaderName::from_static("x-bad");
        headers.append_text(&name, &[b"a\r\nx-injected: 1"]);
        assert!(!headers.contains(&name));
        let mut out = Vec::new();
        headers.write_h1(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn raw_lines_travel_in_extensions_kept_for_the_next_response() {
        for _ in 0..3 {
            let mut response = http::Response::new(());
            with_raw_lines(&mut response, raw(&["Server: up"]));
            let headers = Headers::take_from(&mut response);
            assert!(headers.contains(&http::header::SERVER));
            assert!(response.extensions().is_empty());
        }
        // Another extension stays with its response, beside the raw lines taken.
        let mut response = http::Response::new(());
        response.extensions_mut().insert(7u32);
        with_raw_lines(&mut response, raw(&["Server: up"]));
        let headers = Headers::take_from(&mut response);
        assert!(headers.contains(&http::header::SERVER));
        assert_eq!(response.extensions().get::<u32>(), Some(&7));
    }

    #[test]
    fn the_value_check_agrees_with_http_on_every_byte_anywhere() {
        // Every byte value at every position of texts that span whole words and a remainder,
        // among valid bytes and beside a tab or obs-text (which must not hide it).
        for length in [1, 7, 8, 9, 16, 17, 23] {
            for position in 0..length {
                for byte in 0..=255u8 {
                    for filler in [b'a', b'\t', 0x80, 0xff] {
                        let mut text = vec![filler; length];
                        text[position] = byte;
                        let expected = HeaderValue::from_bytes(&text).is_ok();
                        assert_eq!(is_value(&text), expected, "{text:?}");
                    }
                }
            }
        }
        assert!(is_value(b""));
    }

    #[test]
    fn names_that_collide_in_the_filter_are_still_told_apart() {
        // Same length and first letter: one bit in the filter, the scan decides.
        let raw = raw(&["X-Sandbox-Upstream: a", "Content-Type: text/plain"]);
        let trace = HeaderName::from_static("x-sandbox-trace-id");
        assert_eq!(
            name_bit(trace.as_str().as_bytes()),
            name_bit(b"X-Sandbox-Upstream")
        );
        assert!(raw.get(&trace).is_none());
        let upstream = HeaderName::from_static("x-sandbox-upstream");
        assert_eq!(raw.get(&upstream), Some(&b"a"[..]));
        assert_eq!(
            raw.get(&http::header::CONTENT_TYPE),
            Some(&b"text/plain"[..])
        );
        assert!(raw.get(&HeaderName::from_static("x-request-id")).is_none());
    }

    #[test]
    fn hop_by_hop_headers_go_from_every_part() {
        let mut map = HeaderMap::new();
        map.insert("connection", HeaderValue::from_static("x-secret"));
        map.insert("x-secret", HeaderValue::from_static("1"));
        let mut headers = Headers::from_map(map);
        headers.append(
            &HeaderName::from_static("keep-alive"),
            &HeaderValue::from_static("5"),
        );
        headers.append(
            &HeaderName::from_static("x-kept"),
            &HeaderValue::from_static("1"),
        );
        headers.strip_hop_by_hop(false);
        let map = headers.into_header_map();
        assert_eq!(map.len(), 1);
        assert!(map.contains_key("x-kept"));
    }
}
