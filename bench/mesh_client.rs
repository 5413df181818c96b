//! Load generator and TCP peer for `bench/mesh.sh`, run inside containers of the benchmark's
//! project (std only, built as a static binary for a `FROM scratch` image). It is the client and
//! the echo upstream the mesh is measured between, not the product.
//!
//! - `mesh_client idle` — sleeps until killed (the client container; work comes by `docker exec`).
//! - `mesh_client echo PORT` — TCP echo server on `0.0.0.0:PORT` (a thread per connection; the
//!   write side is shut once the peer's is).
//! - `mesh_client http ADDR PATH RATE SECONDS` — one keep-alive HTTP/1.1 connection to `ADDR`
//!   (`host:port`), `GET PATH` RATE times a second for SECONDS after one second of warm-up;
//!   prints `requests=N p50_us=… p99_us=… max_us=…` (each request timed from its write to the
//!   last byte of its response).
//! - `mesh_client ping ADDR SIZE RATE SECONDS` — the same on one TCP connection to an echo
//!   server: SIZE bytes out, the same SIZE bytes back.
//! - `mesh_client bulk ADDR BYTES` — writes BYTES to an echo server while reading them back,
//!   checks every byte, prints `bytes=N seconds=… mib_per_s=…` (bytes each way over the time
//!   from connect to the echoed end).
//!
//! A connection is retried for up to 10 s (the peer may still be starting); any other failure
//! ends the program with a message and exit code 1.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// The most bytes a response's head may have.
const MAX_HEAD: usize = 16 * 1024;
/// Size of the bulk transfer's writes and reads.
const CHUNK: usize = 64 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["idle"] => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        ["echo", port] => echo(port),
        ["http", addr, path, rate, seconds] => paced(addr, rate, seconds, |stream, buffer| {
            http(stream, buffer, addr, path)
        }),
        ["ping", addr, size, rate, seconds] => match size.parse::<usize>() {
            Ok(size) if size > 0 => paced(addr, rate, seconds, |stream, buffer| {
                ping(stream, buffer, size)
            }),
            _ => Err(format!("SIZE `{size}` is not a positive number").into()),
        },
        ["bulk", addr, bytes] => bulk(addr, bytes),
        _ => Err(
            "usage: mesh_client idle | echo PORT | http ADDR PATH RATE SECONDS | \
                  ping ADDR SIZE RATE SECONDS | bulk ADDR BYTES"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mesh_client: {error}");
            ExitCode::FAILURE
        }
    }
}

fn echo(port: &str) -> Result<(), Error> {
    let listener = TcpListener::bind(format!("0.0.0.0:{port}"))?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut buffer = vec![0u8; CHUNK];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        if stream.write_all(&buffer[..read]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = stream.shutdown(Shutdown::Write);
        });
    }
    Ok(())
}

fn connect(addr: &str) -> Result<TcpStream, Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) if Instant::now() >= deadline => {
                return Err(format!("connecting to {addr}: {error}").into())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs `call` on one connection RATE times a second: one second unrecorded, then SECONDS
/// recorded; prints the percentiles of the recorded calls.
fn paced(
    addr: &str,
    rate: &str,
    seconds: &str,
    mut call: impl FnMut(&mut TcpStream, &mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let rate: u64 = rate
        .parse()
        .map_err(|_| format!("RATE `{rate}` is not a number"))?;
    let seconds: u64 = seconds
        .parse()
        .map_err(|_| format!("SECONDS `{seconds}` is not a number"))?;
    if rate == 0 || seconds == 0 {
        return Err("RATE and SECONDS must be positive".into());
    }
    let mut stream = connect(addr)?;
    let mut buffer = Vec::with_capacity(MAX_HEAD);
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let warm_up = rate as usize;
    let total = warm_up + (rate * seconds) as usize;
    let mut samples: Vec<u32> = Vec::with_capacity(total - warm_up);
    let mut next = Instant::now();
    for index in 0..total {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let start = Instant::now();
        call(&mut stream, &mut buffer)?;
        if index >= warm_up {
            samples.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        // A late call is not made up for by a burst: the pace restarts from now.
        next = (next + interval).max(Instant::now());
    }
    samples.sort_unstable();
    let at = |fraction: f64| {
        samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
    };
    println!(
        "requests={} p50_us={} p99_us={} max_us={}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
    Ok(())
}

/// One `GET path` and its whole response (which must have a `Content-Length`).
fn http(stream: &mut TcpStream, buffer: &mut Vec<u8>, addr: &str, path: &str) -> Result<(), Error> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    buffer.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Err("response head over 16 KiB".into());
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err("connection closed before the response's head".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head =
        std::str::from_utf8(&buffer[..head_end]).map_err(|_| "response head is not UTF-8")?;
    if !(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")) {
        return Err(format!("not a 200: {}", head.lines().next().unwrap_or("")).into());
    }
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or("response without Content-Length")?;
    let mut have = buffer.len() - head_end;
    while have < length {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err("connection closed in the response's body".into());
        }
        have += read;
    }
    if have != length {
        return Err("more bytes than the response's Content-Length".into());
    }
    Ok(())
}

/// SIZE bytes out (never the start of an HTTP request or a TLS record), the same bytes back.
fn ping(stream: &mut TcpStream, buffer: &mut Vec<u8>, size: usize) -> Result<(), Error> {
    buffer.clear();
    buffer.extend((0..size).map(|index| (index % 200) as u8));
    stream.write_all(buffer)?;
    let mut back = vec![0u8; size];
    stream.read_exact(&mut back)?;
    if back != *buffer {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}

/// Period of the bulk transfer's byte pattern (a prime, so it does not line up with chunks).
const PERIOD: usize = 251;

/// The bulk pattern from byte 0 for `len` bytes: byte `i` of the transfer is `i % PERIOD`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index % PERIOD) as u8).collect()
}

fn bulk(addr: &str, bytes: &str) -> Result<(), Error> {
    let total: usize = bytes
        .parse()
        .map_err(|_| format!("BYTES `{bytes}` is not a number"))?;
    // Any chunk of the transfer is a slice of this, from the chunk's offset modulo the period.
    let expected = pattern(CHUNK + PERIOD);
    let outgoing = expected.clone();
    let start = Instant::now();
    let mut stream = connect(addr)?;
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut sent = 0;
        while sent < total {
            let size = CHUNK.min(total - sent);
            let from = sent % PERIOD;
            writer.write_all(&outgoing[from..from + size])?;
            sent += size;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut chunk = vec![0u8; CHUNK];
    let mut received = 0;
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        let from = received % PERIOD;
        if received + read > total || chunk[..read] != expected[from..from + read] {
            return Err(format!("echoed bytes differ near offset {received}").into());
        }
        received += read;
    }
    let seconds = start.elapsed().as_secs_f64();
    sender.join().map_err(|_| "the sending thread panicked")??;
    if received != total {
        return Err(format!("{received} bytes came back of {total}").into());
    }
    println!(
        "bytes={total} seconds={seconds:.4} mib_per_s={:.1}",
        total as f64 / (1024.0 * 1024.0) / seconds
    );
    Ok(())
}
