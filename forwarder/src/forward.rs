//! The forwarder proper: a thread accepting on each listener, a thread per connection (two while
//! it splices), a cap on concurrent connections and one fixed buffer per direction, so memory is
//! bounded whatever the callers do.
//!
//! A caller's connection is first sniffed ([`sniff::peek`]: its first bytes peeked, for at most
//! [`Limits::sniff_window`]), then handed to the intake with a header naming the caller (its
//! peer address), the address it called (the accepted socket's local address: this forwarder's
//! IP and the service's port), the service, the token and what the sniff found:
//! - HTTP: the caller's bytes follow the header on the intake connection (the control plane
//!   serves it at L7);
//! - anything else (L4): the intake connection carries the control plane's verdict instead
//!   ([`crate::wire::Message`]): refused (the caller's connection is reset), or the replicas to
//!   connect in order; the forwarder connects them itself, splices the caller to the first that
//!   accepts, and reports which did and how the connection ended, so the bytes take the shortest
//!   path and the control plane still decides and records every connection.
//!
//! With a handoff socket ([`Config::handoff`]: the control plane runs on the engine's host, which
//! mounts the socket's folder into the forwarder) an HTTP caller's connection is not relayed at
//! all: the header and the connection's descriptor go to the control plane in one message, and
//! the control plane serves the caller's socket itself. When that fails the connection is
//! relayed through the intake as above.
//!
//! When the intake cannot be reached the caller's connection is reset at once: a caller never
//! hangs on a forwarder.
//!
//! In dial mode the control plane connects the dial port and sends a header with the dial TLV
//! and the token; the forwarder connects the header's destination, answers with one byte
//! (`wire::DIAL_CONNECTED`, or why it could not) and splices.
//!
//! Log lines go to stderr, prefixed `sandbox-forwarder:`; the token is never written.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::listen::{listen, unmapped};
use crate::sniff;
use crate::splice::Direction;
use crate::wire::{
    token_matches, Dialed, Ended, Ending, Failure, Header, Message, DIAL_CONNECTED, DIAL_FAILED,
    DIAL_REFUSED, MAX_LEN,
};
use crate::{os, resolve, splice};

/// The bounds a forwarder works within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections handled at once; beyond, new ones are reset.
    pub max_connections: usize,
    /// Bytes of each direction's buffer.
    pub buffer: usize,
    /// How long connecting the intake (or a dial destination) may take.
    pub connect_timeout: Duration,
    /// How long the control plane may take to send a dial header.
    pub header_timeout: Duration,
    /// How long a caller's first bytes are waited for before the connection is taken for L4.
    pub sniff_window: Duration,
    /// How long the control plane may take to decide on an L4 connection (its faults may delay
    /// it, its circuit breaker may hold it).
    pub verdict_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            buffer: 64 * 1024,
            connect_timeout: Duration::from_secs(3),
            header_timeout: Duration::from_secs(5),
            sniff_window: sniff::WINDOW,
            verdict_timeout: Duration::from_secs(120),
        }
    }
}

/// Stack of a connection's thread: it may resolve the intake's name through the C library,
/// whose DNS code keeps sizeable buffers on the stack.
const CONNECTION_STACK_SIZE: usize = 256 * 1024;

/// What a listener's connections are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Callers of the service.
    Service,
    /// The control plane asking for a dial.
    Dial,
}

/// A forwarder with its ports bound, ready to serve.
pub struct Forwarder {
    listeners: Vec<(Role, TcpListener)>,
    shared: Arc<Shared>,
}

/// What every connection's thread reads.
struct Shared {
    config: Config,
    limits: Limits,
    active: AtomicUsize,
    /// Errors that may repeat at the callers' pace (intake down, cap reached) are written at
    /// most once a second.
    throttle: Throttle,
}

impl Forwarder {
    /// Binds every port of `config` (and its dial port) on every address family.
    pub fn bind(config: Config, limits: Limits) -> io::Result<Forwarder> {
        let mut listeners = Vec::new();
        for port in &config.ports {
            listeners.extend(listen(*port)?.into_iter().map(|l| (Role::Service, l)));
        }
        if let Some(port) = config.dial_port {
            listeners.extend(listen(port)?.into_iter().map(|l| (Role::Dial, l)));
        }
        let shared = Arc::new(Shared {
            config,
            limits,
            active: AtomicUsize::new(0),
            throttle: Throttle::default(),
        });
        Ok(Forwarder { listeners, shared })
    }

    /// The addresses callers of the service connect to.
    pub fn service_addresses(&self) -> Vec<SocketAddr> {
        self.addresses(Role::Service)
    }

    /// The addresses the control plane sends dial requests to (empty without a dial port).
    pub fn dial_addresses(&self) -> Vec<SocketAddr> {
        self.addresses(Role::Dial)
    }

    fn addresses(&self, role: Role) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(listener_role, _)| *listener_role == role)
            .filter_map(|(_, listener)| listener.local_addr().ok())
            .collect()
    }

    /// Accepts and forwards until the process ends.
    pub fn serve(self) {
        let config = &self.shared.config;
        let join = |addresses: Vec<SocketAddr>| {
            addresses
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        log(format_args!(
            "service `{}`: listening on {}; handing connections to {}",
            config.service,
            join(self.service_addresses()),
            config.intake
        ));
        if let Some(socket) = &config.handoff {
            log(format_args!(
                "HTTP connections handed over on {}",
                socket.display()
            ));
        }
        if config.dial_port.is_some() {
            log(format_args!(
                "dial requests on {}",
                join(self.dial_addresses())
            ));
        }
        let threads: Vec<_> = self
            .listeners
            .into_iter()
            .filter_map(|(role, listener)| {
                let shared = Arc::clone(&self.shared);
                thread::Builder::new()
                    .name("accept".to_string())
                    .spawn(move || accept_loop(&listener, role, &shared))
                    .map_err(|error| log(format_args!("cannot start a listener thread: {error}")))
                    .ok()
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, role: Role, shared: &Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or memory: wait rather than spin.
                shared
                    .throttle
                    .log(format_args!("accepting a connection failed: {error}"));
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(slot) = Slot::take(shared) else {
            shared.throttle.log(format_args!(
                "{} connections open, the most allowed: a new one was refused",
                shared.limits.max_connections
            ));
            os::reset(stream);
            continue;
        };
        let spawned = thread::Builder::new()
            .name("connection".to_string())
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || {
                match role {
                    Role::Service => forward(stream, &slot.shared),
                    Role::Dial => dial(stream, &slot.shared),
                }
                drop(slot);
            });
        if let Err(error) = spawned {
            shared
                .throttle
                .log(format_args!("cannot start a connection thread: {error}"));
        }
    }
}

/// One connection's place under the cap, given back when dropped.
struct Slot {
    shared: Arc<Shared>,
}

impl Slot {
    fn take(shared: &Arc<Shared>) -> Option<Slot> {
        let max = shared.limits.max_connections;
        shared
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < max).then_some(active + 1)
            })
            .ok()?;
        Some(Slot {
            shared: Arc::clone(shared),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A caller's connection: sniffed, to the intake with the header, then spliced to the intake
/// (HTTP) or, as the intake decides, to a replica (L4).
fn forward(caller: TcpStream, shared: &Shared) {
    let config = &shared.config;
    let (Ok(source), Ok(destination)) = (caller.peer_addr(), caller.local_addr()) else {
        return; // the caller is already gone
    };
    let sniffed = sniff::peek(&caller, shared.limits.sniff_window);
    let l4 = sniffed.is_l4();
    let header = Header {
        source: unmapped(source),
        destination: unmapped(destination),
        token: config.token.clone(),
        service: config.service.clone(),
        dial: false,
        sniffed: Some(sniffed),
    };
    #[cfg(unix)]
    if !l4 {
        if let Some(socket) = &config.handoff {
            match hand_over(socket, &header, &caller) {
                // The control plane holds the connection now; this handle is only closed.
                Ok(()) => return,
                Err(error) => shared.throttle.log(format_args!(
                    "cannot hand a connection to {} ({error}): relaying it through the intake",
                    socket.display()
                )),
            }
        }
    }
    let intake = resolve::connect(&config.intake, shared.limits.connect_timeout)
        .and_then(|intake| (&intake).write_all(&header.encode()).map(|()| intake));
    let intake = match intake {
        Ok(intake) => intake,
        Err(error) => {
            shared.throttle.log(format_args!(
                "the intake {} is unreachable ({error}): refused {} calling port {}",
                config.intake,
                header.source,
                header.destination.port()
            ));
            os::reset(caller);
            return;
        }
    };
    if l4 {
        splice_l4(caller, intake, shared);
    } else {
        splice_pair(caller, intake, shared);
    }
}

/// Hands an HTTP caller's connection itself to the control plane over its handoff socket: the
/// header and the connection's descriptor in one message. The control plane then reads and
/// writes the caller's socket directly, so each request crosses one process fewer than when
/// relayed through the intake.
#[cfg(unix)]
fn hand_over(socket: &std::path::Path, header: &Header, caller: &TcpStream) -> io::Result<()> {
    let control = std::os::unix::net::UnixStream::connect(socket)?;
    os::send_connection(&control, &header.encode(), caller)
}

/// An L4 caller: the intake's verdict read from `control`, the replicas it names connected in
/// order, the caller spliced to the first that accepts, and the outcome reported on `control`.
fn splice_l4(caller: TcpStream, mut control: TcpStream, shared: &Shared) {
    let _ = control.set_nodelay(true);
    let verdict = control
        .set_read_timeout(Some(shared.limits.verdict_timeout))
        .and_then(|()| Message::read_from(&mut control));
    let dial = match verdict {
        Ok(Message::Dial(dial)) => dial,
        // An abort fault, no replica, the circuit breaker full: refused, as a closed port is.
        Ok(Message::Refuse) => return os::reset(caller),
        Ok(other) => {
            shared.throttle.log(format_args!(
                "the intake answered an L4 connection with {other:?}: refused it"
            ));
            return os::reset(caller);
        }
        Err(error) => {
            shared.throttle.log(format_args!(
                "no verdict from the intake on an L4 connection ({error}): refused it"
            ));
            return os::reset(caller);
        }
    };
    let _ = control.set_read_timeout(None);
    let connect_timeout = dial.connect_timeout.max(Duration::from_millis(1));
    let mut failures = Vec::new();
    let mut upstream = None;
    for (index, candidate) in dial.candidates.iter().enumerate() {
        if index > 0 {
            thread::sleep(dial.backoffs.get(index - 1).copied().unwrap_or_default());
        }
        match TcpStream::connect_timeout(candidate, connect_timeout) {
            Ok(stream) => {
                upstream = Some((index as u8, stream));
                break;
            }
            Err(error) => failures.push(Failure {
                candidate: index as u8,
                error: error.to_string(),
            }),
        }
    }
    let dialed = Message::Dialed(Dialed {
        connected: upstream.as_ref().map(|(index, _)| *index),
        failures,
    });
    // The splice goes on if the control connection is gone: the caller's bytes come first.
    let reporting = (&control).write_all(&dialed.encode()).is_ok();
    let Some((_, upstream)) = upstream else {
        return os::reset(caller);
    };
    let _ = caller.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let outcome = match splice::both_ways_reported(caller, upstream, shared.limits.buffer) {
        Ok(outcome) => outcome,
        Err(error) => {
            shared
                .throttle
                .log(format_args!("cannot splice a connection: {error}"));
            splice::Outcome {
                forward: 0,
                backward: 0,
                first: Direction::Forward,
                failed: true,
            }
        }
    };
    if reporting {
        let ended = Message::Ended(Ended {
            close: match (outcome.failed, outcome.first) {
                (true, _) => Ending::Reset,
                (false, Direction::Forward) => Ending::Client,
                (false, Direction::Backward) => Ending::Upstream,
            },
            sent: outcome.forward,
            received: outcome.backward,
        });
        let _ = (&control).write_all(&ended.encode());
    }
}

/// A dial request from the control plane: read and check its header, connect its destination,
/// pass on what followed the header, then splice.
fn dial(control: TcpStream, shared: &Shared) {
    let peer = control.peer_addr().map(unmapped);
    let (header, rest) = match read_dial_header(&control, shared) {
        Ok(read) => read,
        Err(problem) => {
            shared.throttle.log(format_args!(
                "refused a dial request from {}: {problem}",
                peer.map_or_else(|_| "?".to_string(), |peer| peer.to_string())
            ));
            os::reset(control);
            return;
        }
    };
    let target = TcpStream::connect_timeout(&header.destination, shared.limits.connect_timeout);
    let target = match target {
        Ok(target) => target,
        Err(error) => {
            shared.throttle.log(format_args!(
                "dialing {} failed: {error}",
                header.destination
            ));
            let answer = match error.kind() {
                io::ErrorKind::ConnectionRefused => DIAL_REFUSED,
                _ => DIAL_FAILED,
            };
            // An orderly close after the answer, so the control plane reads it.
            let _ = (&control).write_all(&[answer]);
            let _ = control.shutdown(std::net::Shutdown::Both);
            return;
        }
    };
    let connected = (&control)
        .write_all(&[DIAL_CONNECTED])
        .and_then(|()| (&target).write_all(&rest));
    match connected {
        Ok(()) => splice_pair(control, target, shared),
        Err(_) => os::reset(control), // the control plane went away
    }
}

/// The dial header and the bytes read after it.
fn read_dial_header(control: &TcpStream, shared: &Shared) -> Result<(Header, Vec<u8>), String> {
    control
        .set_read_timeout(Some(shared.limits.header_timeout))
        .map_err(|error| error.to_string())?;
    let mut bytes = Vec::with_capacity(MAX_LEN);
    let mut chunk = [0u8; MAX_LEN];
    let (header, used) = loop {
        let room = MAX_LEN - bytes.len();
        if room == 0 {
            return Err(format!("no header within {MAX_LEN} bytes"));
        }
        let read = match (&*control).read(&mut chunk[..room]) {
            Ok(0) => return Err("the connection ended before a header".to_string()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("reading the header: {error}")),
        };
        bytes.extend_from_slice(&chunk[..read]);
        match Header::decode(&bytes) {
            Ok(Some(decoded)) => break decoded,
            Ok(None) => {}
            Err(error) => return Err(error.to_string()),
        }
    };
    if !header.dial {
        return Err("the header asks for no dial".to_string());
    }
    if !token_matches(&shared.config.token, &header.token) {
        return Err("wrong token".to_string());
    }
    control
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    Ok((header, bytes.split_off(used)))
}

fn splice_pair(left: TcpStream, right: TcpStream, shared: &Shared) {
    let _ = left.set_nodelay(true);
    let _ = right.set_nodelay(true);
    if let Err(error) = splice::both_ways(left, right, shared.limits.buffer) {
        shared
            .throttle
            .log(format_args!("cannot splice a connection: {error}"));
    }
}

/// Writes one log line.
pub fn log(message: fmt::Arguments<'_>) {
    eprintln!("sandbox-forwarder: {message}");
}

/// At most one line a second; the lines held back are counted on the next one written.
#[derive(Default)]
struct Throttle {
    last_second: AtomicU64,
    held_back: AtomicU64,
}

impl Throttle {
    fn log(&self, message: fmt::Arguments<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        if self.last_second.swap(now, Ordering::AcqRel) == now {
            self.held_back.fetch_add(1, Ordering::AcqRel);
            return;
        }
        match self.held_back.swap(0, Ordering::AcqRel) {
            0 => log(message),
            held => log(format_args!("{message} ({held} more lines held back)")),
        }
    }
}
