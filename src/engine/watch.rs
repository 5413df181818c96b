//! One look at a project's containers, shared by everything in the control plane that follows
//! them (the proxy's monitor, the log follower, the dashboard), instead of each listing them on a
//! timer of its own.
//!
//! The containers are listed again as soon as the engine reports a container event of the
//! project (create, start, die, kill, health change, …; the list is what the others read, the
//! event only says when to look), when someone asks ([`ContainerWatch::refresh`], after an
//! action), and every [`FALLBACK`] in any case, so a missed event or an engine without an event
//! stream only delays a change. The event stream is reopened after [`RECONNECT`] when it fails
//! or ends. A listing that fails keeps the last one. Memory: one listing, shared.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::docker::{Docker, ObservedContainer};

/// How often the containers are listed with no event.
pub const FALLBACK: Duration = Duration::from_secs(2);
/// How long a failed event stream waits before it is opened again.
pub const RECONNECT: Duration = Duration::from_secs(1);

/// A project's containers (without the mesh's forwarders) as last listed.
pub type Listing = Arc<Vec<ObservedContainer>>;

/// The shared look; cheap to clone.
#[derive(Clone)]
pub struct ContainerWatch {
    receiver: watch::Receiver<Option<Listing>>,
    requests: Arc<Requests>,
    /// The newest request number a listing was started after (see [`ContainerWatch::fresh`]).
    answered: watch::Receiver<u64>,
}

/// Asks for listings: a wake-up for the loop, and a count of the requests that want one taken
/// after they were made.
#[derive(Default)]
struct Requests {
    wake: Notify,
    asked: AtomicU64,
}

impl ContainerWatch {
    /// Starts following `project` on the current runtime until `shutdown`.
    pub fn start(docker: Docker, project: String, shutdown: CancellationToken) -> ContainerWatch {
        let (sender, receiver) = watch::channel(None);
        let (answer, answered) = watch::channel(0);
        let requests = Arc::new(Requests::default());
        let events = {
            let docker = docker.clone();
            let project = project.clone();
            move || docker.project_container_events(&project).boxed()
        };
        tokio::spawn(follow(
            move || {
                let docker = docker.clone();
                let project = project.clone();
                async move { docker.project_containers(&project).await.ok() }
            },
            events,
            sender,
            (requests.clone(), answer),
            shutdown,
        ));
        ContainerWatch {
            receiver,
            requests,
            answered,
        }
    }

    /// A receiver that sees each new listing (the first once it is there).
    pub fn subscribe(&self) -> watch::Receiver<Option<Listing>> {
        self.receiver.clone()
    }

    /// The last listing, if there has been one.
    pub fn latest(&self) -> Option<Listing> {
        self.receiver.borrow().clone()
    }

    /// Asks for a new listing now (after an action that changed containers).
    pub fn refresh(&self) {
        self.requests.wake.notify_one();
    }

    /// Waits for a listing started after this call (not one already under way), then gives the
    /// latest; `None` when the watch has stopped.
    pub async fn fresh(&self) -> Option<Listing> {
        let wanted = self.requests.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut answered = self.answered.clone();
        self.refresh();
        answered.wait_for(|done| *done >= wanted).await.ok()?;
        self.latest()
    }
}

/// The watch's loop: `list` whenever `events` yields, a request wakes it or [`FALLBACK`]
/// passes; `open_events` (re)opens the event stream. Every listing is sent, changed or not
/// (receivers compare if they care); after each look, `answer` says which requests it served.
async fn follow<L, F, E, S>(
    list: L,
    open_events: E,
    sender: watch::Sender<Option<Listing>>,
    (requests, answer): (Arc<Requests>, watch::Sender<u64>),
    shutdown: CancellationToken,
) where
    L: Fn() -> F,
    F: std::future::Future<Output = Option<Vec<ObservedContainer>>>,
    E: Fn() -> S,
    S: Stream<Item = Result<(), super::EngineError>> + Unpin,
{
    let mut events = Some(open_events());
    let mut reopen = tokio::time::Instant::now();
    loop {
        let served = requests.asked.load(Ordering::SeqCst);
        if let Some(containers) = list().await {
            sender.send_replace(Some(Arc::new(containers)));
        }
        // A failed listing answers too: `fresh` then gives the last one rather than waiting.
        answer.send_replace(served);
        loop {
            let closed = events.is_none();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = requests.wake.notified() => break,
                () = tokio::time::sleep(FALLBACK) => break,
                () = tokio::time::sleep_until(reopen), if closed => {
                    events = Some(open_events());
                }
                event = next_event(&mut events) => match event {
                    Some(Ok(())) => {
                        // A burst (kill, die, stop) comes together: one look for all of it.
                        if let Some(stream) = events.as_mut() {
                            while let Some(Some(Ok(()))) = stream.next().now_or_never() {}
                        }
                        break;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "the engine's event stream failed; listing on a timer until it is back");
                        events = None;
                        reopen = tokio::time::Instant::now() + RECONNECT;
                    }
                    None => {
                        events = None;
                        reopen = tokio::time::Instant::now() + RECONNECT;
                    }
                },
            }
        }
    }
}

/// The stream's next item; never, while there is no stream.
async fn next_event<S: Stream + Unpin>(events: &mut Option<S>) -> Option<S::Item> {
    match events.as_mut() {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream;
    use tokio::sync::mpsc;

    use super::*;

    fn container(id: &str, state: &str) -> ObservedContainer {
        ObservedContainer {
            id: id.to_string(),
            name: format!("p-{id}-1"),
            service: id.to_string(),
            replica: 1,
            config_hash: String::new(),
            image_id: String::new(),
            state: state.to_string(),
            status: String::new(),
            created: 0,
            ip: None,
            addresses: Vec::new(),
            ports: Vec::new(),
            labels: Default::default(),
        }
    }

    /// A watch over `list` with no engine events; cancel the token to stop it.
    fn watching<L, F>(list: L) -> (ContainerWatch, CancellationToken)
    where
        L: Fn() -> F + Send + 'static,
        F: std::future::Future<Output = Option<Vec<ObservedContainer>>> + Send + 'static,
    {
        let (sender, receiver) = watch::channel(None);
        let (answer, answered) = watch::channel(0);
        let requests = Arc::new(Requests::default());
        let shutdown = CancellationToken::new();
        tokio::spawn(follow(
            list,
            || stream::pending().boxed(),
            sender,
            (requests.clone(), answer),
            shutdown.clone(),
        ));
        let watch = ContainerWatch {
            receiver,
            requests,
            answered,
        };
        (watch, shutdown)
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_brings_a_new_listing_at_once_and_the_timer_one_later() {
        let lists = Arc::new(AtomicUsize::new(0));
        let (events, receiver) =
            mpsc::unbounded_channel::<Result<(), crate::engine::EngineError>>();
        let receiver = std::sync::Mutex::new(Some(receiver));
        let (sender, mut watched) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let counter = lists.clone();
        tokio::spawn(follow(
            move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let state = if n == 0 { "running" } else { "exited" };
                async move { Some(vec![container("item", state)]) }
            },
            move || match receiver.lock().unwrap().take() {
                Some(receiver) => stream::unfold(receiver, |mut receiver| async move {
                    receiver.recv().await.map(|item| (item, receiver))
                })
                .boxed(),
                None => stream::pending().boxed(),
            },
            sender,
            (Arc::default(), watch::channel(0).0),
            shutdown.clone(),
        ));
        watched.changed().await.unwrap();
        assert_eq!(
            watched.borrow_and_update().as_ref().unwrap()[0].state,
            "running"
        );
        let before = tokio::time::Instant::now();
        events.send(Ok(())).unwrap();
        events.send(Ok(())).unwrap();
        watched.changed().await.unwrap();
        assert_eq!(
            watched.borrow_and_update().as_ref().unwrap()[0].state,
            "exited"
        );
        assert!(
            before.elapsed() < Duration::from_millis(10),
            "the event, not the timer"
        );
        // The two events of the burst made one listing.
        assert_eq!(lists.load(Ordering::SeqCst), 2);
        watched.changed().await.unwrap();
        assert!(before.elapsed() >= FALLBACK, "the fallback timer");
        assert_eq!(lists.load(Ordering::SeqCst), 3);
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_event_stream_is_opened_again_and_listing_goes_on() {
        let opened = Arc::new(AtomicUsize::new(0));
        let (sender, mut watched) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let count = opened.clone();
        tokio::spawn(follow(
            || async { Some(vec![container("item", "running")]) },
            move || {
                count.fetch_add(1, Ordering::SeqCst);
                stream::iter(vec![Err(crate::engine::EngineError::Interrupted)]).boxed()
            },
            sender,
            (Arc::default(), watch::channel(0).0),
            shutdown.clone(),
        ));
        watched.changed().await.unwrap();
        tokio::time::sleep(RECONNECT * 3 + Duration::from_millis(10)).await;
        assert!(
            opened.load(Ordering::SeqCst) >= 3,
            "reopened after each failure"
        );
        assert!(watched.borrow().is_some());
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_already_under_way_does_not_count_as_fresh() {
        let lists = Arc::new(AtomicUsize::new(0));
        let counter = lists.clone();
        let (watch, shutdown) = watching(move || {
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let state = if first { "running" } else { "exited" };
                Some(vec![container("item", state)])
            }
        });
        // The first listing starts, then a fresh one is asked for while it runs.
        tokio::task::yield_now().await;
        assert_eq!(lists.load(Ordering::SeqCst), 1);
        let listing = watch.fresh().await.expect("a listing");
        assert_eq!(
            listing[0].state, "exited",
            "the second listing, not the first"
        );
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_gives_a_fresh_listing() {
        let lists = Arc::new(AtomicUsize::new(0));
        let counter = lists.clone();
        let (watch, shutdown) = watching(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Some(Vec::new()) }
        });
        assert!(watch.fresh().await.is_some());
        let before = lists.load(Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        assert!(watch.fresh().await.is_some());
        assert!(started.elapsed() < FALLBACK);
        assert!(lists.load(Ordering::SeqCst) > before);
        shutdown.cancel();
    }
}
