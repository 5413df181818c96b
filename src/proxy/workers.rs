//! Data-plane workers: N threads, each running a single-threaded tokio runtime that serves every
//! proxy listener it is given (gateway and mesh) with a listening socket of its own on the shared
//! address (`SO_REUSEPORT`, so the kernel spreads new connections over the workers). A connection
//! lives and dies on the worker that accepted it, with that worker's upstream connections
//! (`Shared::for_worker`). Why and how: `proxy/mod.rs`, "Data-plane workers".

use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::session::Listener;
use super::{serve, Proxy, Shared};

/// Listen backlog of each worker's socket (tokio's `TcpListener::bind` uses the same).
const BACKLOG: i32 = 1024;

/// A worker that stopped otherwise than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("data-plane worker {worker} panicked: {message}")]
    Panicked { worker: usize, message: String },
    #[error("data-plane worker {worker} stopped serving a listener: {source}")]
    Serve { worker: usize, source: io::Error },
}

/// One listening socket handed to a worker, what it serves, and where to say it is being served.
struct Assignment {
    listener: Socket,
    kind: Listener,
    served: oneshot::Sender<io::Result<()>>,
}

/// A listening socket as bound, before a worker's runtime takes it.
enum Socket {
    Tcp(std::net::TcpListener),
    #[cfg(unix)]
    Handoff(std::os::unix::net::UnixListener),
}

impl Socket {
    fn into_listening(self) -> io::Result<serve::Listening> {
        Ok(match self {
            Socket::Tcp(listener) => {
                serve::Listening::Tcp(tokio::net::TcpListener::from_std(listener)?)
            }
            #[cfg(unix)]
            Socket::Handoff(listener) => {
                serve::Listening::Handoff(tokio::net::UnixListener::from_std(listener)?)
            }
        })
    }
}

/// Running data-plane workers. [`Workers::listen_gateway`] and [`Workers::listen_mesh`] add
/// listeners (all workers serve each one); they all stop when the shutdown token given to
/// [`Proxy::start_workers`] fires, and [`Workers::stopped`] waits for that.
pub struct Workers {
    assign: Vec<mpsc::UnboundedSender<Assignment>>,
    running: Vec<Running>,
}

struct Running {
    worker: usize,
    /// The worker's failures, sent when its thread ends (dropped unsent only if it could not run).
    done: oneshot::Receiver<Vec<WorkerError>>,
    thread: thread::JoinHandle<()>,
}

impl Proxy {
    /// Starts `count` data-plane workers (0: one per core this process may run on), each on its
    /// own thread with its own single-threaded runtime, serving nothing until given listeners.
    /// They stop when `shutdown` fires, each after letting its requests in flight finish.
    pub fn start_workers(&self, count: usize, shutdown: CancellationToken) -> io::Result<Workers> {
        let count = worker_count(count);
        let mut workers = Workers {
            assign: Vec::with_capacity(count),
            running: Vec::with_capacity(count),
        };
        for worker in 0..count {
            let (assign, running) = spawn(worker, self.shared.clone(), shutdown.clone())?;
            workers.assign.push(assign);
            workers.running.push(running);
        }
        Ok(workers)
    }

    /// Serves the gateway on `address` with `count` workers ([`Proxy::start_workers`]): the
    /// address listened on (port 0 becomes the port picked, the same for every worker) and the
    /// workers, to add the mesh's listeners or wait for the end.
    pub async fn serve_gateway_workers(
        &self,
        address: SocketAddr,
        count: usize,
        shutdown: CancellationToken,
    ) -> io::Result<(SocketAddr, Workers)> {
        let workers = self.start_workers(count, shutdown)?;
        let address = workers.listen_gateway(address).await?;
        Ok((address, workers))
    }
}

impl Workers {
    /// How many workers run.
    pub fn count(&self) -> usize {
        self.assign.len()
    }

    /// Serves the gateway on `address` on every worker; the address listened on (port 0 becomes
    /// the port picked). Fails as a bind does when the address is taken.
    pub async fn listen_gateway(&self, address: SocketAddr) -> io::Result<SocketAddr> {
        self.listen(address, Listener::Gateway).await
    }

    /// Serves the mesh on `address` on every worker, as [`Workers::listen_gateway`] does.
    pub async fn listen_mesh(&self, address: SocketAddr) -> io::Result<SocketAddr> {
        self.listen(address, Listener::Mesh).await
    }

    /// Serves the mesh intake (forwarders' connections, [`Proxy::serve_intake`]) on `address` on
    /// every worker, as [`Workers::listen_gateway`] does.
    pub async fn listen_intake(&self, address: SocketAddr) -> io::Result<SocketAddr> {
        self.listen(address, Listener::Intake).await
    }

    /// Serves the mesh's handoff socket ([`Proxy::serve_handoff`]) at `path` on every worker (one
    /// socket, which each accepts from), replacing a stale one left there.
    #[cfg(unix)]
    pub async fn listen_handoff(&self, path: &std::path::Path) -> io::Result<()> {
        let listener = super::handoff::bind(path)?;
        let mut sockets = Vec::with_capacity(self.count());
        for _ in 1..self.count() {
            sockets.push(Socket::Handoff(listener.try_clone()?));
        }
        sockets.push(Socket::Handoff(listener));
        self.assign(sockets, Listener::Intake).await
    }

    async fn listen(&self, address: SocketAddr, kind: Listener) -> io::Result<SocketAddr> {
        let listeners = match kind {
            // On a network's gateway, which may come up only with its first container (Podman).
            Listener::Mesh | Listener::Intake => bind_gateway(address, self.count())?,
            Listener::Gateway => bind(address, self.count())?,
        };
        let address = listeners[0].local_addr()?;
        self.assign(listeners.into_iter().map(Socket::Tcp).collect(), kind)
            .await?;
        Ok(address)
    }

    /// Gives each worker one of `listeners` (one per worker) and waits until all serve them.
    async fn assign(&self, listeners: Vec<Socket>, kind: Listener) -> io::Result<()> {
        let mut replies = Vec::with_capacity(listeners.len());
        for (worker, (listener, assign)) in listeners.into_iter().zip(&self.assign).enumerate() {
            let (served, reply) = oneshot::channel();
            let assignment = Assignment {
                listener,
                kind,
                served,
            };
            if assign.send(assignment).is_err() {
                return Err(stopped(worker));
            }
            replies.push((worker, reply));
        }
        for (worker, reply) in replies {
            reply.await.map_err(|_| stopped(worker))??;
        }
        Ok(())
    }

    /// Waits until every worker has stopped (after shutdown and its grace period); the first
    /// failure, if any (each was logged when it happened).
    pub async fn stopped(self) -> Result<(), WorkerError> {
        let mut first = None;
        for running in self.running {
            let failures = running.done.await.unwrap_or_else(|_| {
                vec![WorkerError::Panicked {
                    worker: running.worker,
                    message: "its thread ended without a report".into(),
                }]
            });
            // The thread has sent its report: it is ending.
            let _ = running.thread.join();
            first = first.or(failures.into_iter().next());
        }
        first.map_or(Ok(()), Err)
    }
}

/// `requested`, or the cores this process may run on when 0.
fn worker_count(requested: usize) -> usize {
    match requested {
        0 => thread::available_parallelism().map_or(1, NonZeroUsize::get),
        count => count,
    }
}

fn stopped(worker: usize) -> io::Error {
    io::Error::other(format!("data-plane worker {worker} has stopped"))
}

fn spawn(
    worker: usize,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> io::Result<(mpsc::UnboundedSender<Assignment>, Running)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (assign, assignments) = mpsc::unbounded_channel();
    let (report, done) = oneshot::channel();
    let thread = thread::Builder::new()
        .name(format!("sandbox-proxy-{worker}"))
        .spawn(move || {
            let served = std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(run(worker, shared, assignments, shutdown))
            }));
            let failures = served.unwrap_or_else(|payload| {
                let error = WorkerError::Panicked {
                    worker,
                    message: panic_message(payload.as_ref()),
                };
                tracing::error!(target: "sandbox::proxy", %error, "data-plane worker failed");
                vec![error]
            });
            let _ = report.send(failures);
        })?;
    Ok((
        assign,
        Running {
            worker,
            done,
            thread,
        },
    ))
}

/// A worker's life: serve each listener it is given until shutdown, then wait for them to drain.
async fn run(
    worker: usize,
    shared: Arc<Shared>,
    mut assignments: mpsc::UnboundedReceiver<Assignment>,
    shutdown: CancellationToken,
) -> Vec<WorkerError> {
    let shared = Arc::new(shared.for_worker());
    let mut serving = JoinSet::new();
    let mut failures = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            assignment = assignments.recv(), if open => match assignment {
                Some(Assignment { listener, kind, served }) => {
                    match listener.into_listening() {
                        Ok(listener) => {
                            serving.spawn(serve::serve(shared.clone(), listener, shutdown.clone(), kind));
                            let _ = served.send(Ok(()));
                        }
                        Err(error) => {
                            let _ = served.send(Err(error));
                        }
                    }
                }
                // The `Workers` handle is gone: no more listeners, serve these until shutdown.
                None => open = false,
            },
            Some(ended) = serving.join_next() => failures.extend(failure(worker, ended)),
        }
    }
    while let Some(ended) = serving.join_next().await {
        failures.extend(failure(worker, ended));
    }
    failures
}

/// A listener's serving task ended: a failure (logged now) unless it ended normally.
fn failure(worker: usize, ended: Result<io::Result<()>, JoinError>) -> Option<WorkerError> {
    let error = match ended {
        Ok(Ok(())) => return None,
        Ok(Err(source)) => WorkerError::Serve { worker, source },
        Err(error) if error.is_panic() => WorkerError::Panicked {
            worker,
            message: panic_message(error.into_panic().as_ref()),
        },
        Err(_) => return None,
    };
    tracing::error!(target: "sandbox::proxy", %error, "data-plane worker failed");
    Some(error)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|message| message.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// `count` listening sockets on `address`, non-blocking, all on the same port (port 0: the
/// one the kernel picks). On Linux each is its own socket in one `SO_REUSEPORT` group; elsewhere
/// (and for one worker) they are handles of one socket, which every worker accepts from.
fn bind(address: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if count > 1 {
        return bind_reuse_port(address, count);
    }
    bind_shared(address, count)
}

/// [`bind`] on a network gateway address that may not exist yet
/// (`engine::podman::listen_before_address_exists`).
fn bind_gateway(address: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return bind_reuse_port_with(address, count, true);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    bind(address, count)
}

fn bind_shared(address: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 1..count {
        listeners.push(listener.try_clone()?);
    }
    listeners.push(listener);
    Ok(listeners)
}

/// `SO_REUSEPORT` alone would also join a group that another process of the same user listens
/// with (another sandbox on the same port): a probe socket without it is bound first, which
/// fails as a plain bind does when anything listens there, and picks the port for port 0.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_reuse_port(address: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    bind_reuse_port_with(address, count, false)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_reuse_port_with(
    address: SocketAddr,
    count: usize,
    gateway: bool,
) -> io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = |reuse_port: bool| -> io::Result<Socket> {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        // As tokio and std do on Unix: a port in TIME_WAIT can be listened on again.
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(reuse_port)?;
        if gateway {
            crate::engine::podman::listen_before_address_exists(&socket, address)?;
        }
        socket.set_nonblocking(true)?;
        Ok(socket)
    };
    let probe = socket(false)?;
    probe.bind(&address.into())?;
    let address = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))?;
    drop(probe);
    (0..count)
        .map(|_| {
            let listener = socket(true)?;
            listener.bind(&address.into())?;
            listener.listen(BACKLOG)?;
            Ok(listener.into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_workers_means_one_per_core() {
        assert_eq!(worker_count(3), 3);
        let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(worker_count(0), cores);
    }

    #[test]
    fn every_socket_of_a_group_has_the_port_picked_for_port_0() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let addresses: Vec<SocketAddr> = listeners
            .iter()
            .map(|listener| listener.local_addr().unwrap())
            .collect();
        assert_eq!(addresses.len(), 3);
        assert_ne!(addresses[0].port(), 0);
        assert!(addresses.iter().all(|address| *address == addresses[0]));
    }

    #[test]
    fn a_port_in_use_is_refused_even_to_a_group() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        assert!(bind(address, 2).is_err());
        assert!(bind(address, 1).is_err());
        let group = bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        // Another group on a group's port (another sandbox of the same user) is refused too.
        assert!(bind(group[0].local_addr().unwrap(), 2).is_err());
    }

    #[tokio::test]
    async fn a_listener_that_panics_is_reported_with_its_message() {
        let ended = tokio::spawn(async { panic!("boom") }).await;
        let Some(WorkerError::Panicked { worker, message }) = failure(1, ended.map(Ok)) else {
            panic!("a panic is a failure");
        };
        assert_eq!((worker, message.as_str()), (1, "boom"));
        let error = failure(0, Ok(Err(io::Error::other("gone")))).expect("an error is a failure");
        assert_eq!(
            error.to_string(),
            "data-plane worker 0 stopped serving a listener: gone"
        );
        assert!(failure(0, Ok(Ok(()))).is_none(), "shutdown is no failure");
    }

    #[test]
    fn one_shared_socket_serves_every_handle() {
        let listeners = bind_shared("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let address = listeners[0].local_addr().unwrap();
        assert_eq!(listeners[1].local_addr().unwrap(), address);
        let _client = std::net::TcpStream::connect(address).unwrap();
        listeners[1].set_nonblocking(false).unwrap();
        assert!(listeners[1].accept().is_ok());
    }
}
