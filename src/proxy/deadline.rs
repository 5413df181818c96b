//! One timer for a connection's successive deadlines: the header read of each request, then its
//! route timeout. Moving the deadline later costs a clock read; the timer in tokio's wheel is
//! re-armed only when it fires before the deadline or when the deadline moves before it. A timer
//! per request would be inserted into and removed from the wheel every time.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Armed this far ahead when nothing is waited for.
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);

pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    /// When the current wait ends.
    deadline: Instant,
    /// When the timer in the wheel fires.
    armed: Instant,
}

impl Default for Deadline {
    fn default() -> Deadline {
        let armed = Instant::now() + IDLE;
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(armed)),
            deadline: armed,
            armed,
        }
    }
}

impl Deadline {
    /// Starts a wait of `after` from now.
    pub fn start(&mut self, after: Duration) {
        self.deadline = Instant::now() + after;
        if self.deadline < self.armed {
            self.armed = self.deadline;
            self.sleep.as_mut().reset(self.deadline);
        }
    }

    /// Ready once the current wait has ended.
    pub fn poll_expired(&mut self, context: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.sleep.as_mut().poll(context));
            if Instant::now() >= self.deadline {
                return Poll::Ready(());
            }
            self.armed = self.deadline;
            self.sleep.as_mut().reset(self.deadline);
        }
    }

    pub async fn expired(&mut self) {
        std::future::poll_fn(|context| self.poll_expired(context)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn later_and_earlier_deadlines() {
        let mut deadline = Deadline::default();
        deadline.start(Duration::from_secs(10));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        // Moved later: the armed timer fires at 10 s, finds the wait not over, re-arms for 14 s.
        deadline.start(Duration::from_secs(10));
        deadline.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(14));
        // Moved earlier than the armed timer: re-armed at once.
        deadline.start(Duration::from_secs(60));
        deadline.start(Duration::from_secs(1));
        let started = Instant::now();
        deadline.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
