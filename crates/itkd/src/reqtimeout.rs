//! mod_reqtimeout's body stage: how long reading a request body may take in all.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, Incoming};
use itkd_config::model::ReadTimeout;
use tokio::time::Instant;

/// The deadline for the rest of a body: `init` from the start, one second more per
/// `min_rate` bytes received, never past `max`; and each read within `per_read`
/// (`Timeout`), whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct BodyClock {
    start: Instant,
    limit: ReadTimeout,
    per_read: Duration,
    received: u64,
}

/// The body took longer than its stage allows (or a read longer than `Timeout`).
#[derive(Debug)]
pub struct TimedOut;

impl BodyClock {
    pub fn new(limit: ReadTimeout, per_read: Duration) -> BodyClock {
        BodyClock {
            start: Instant::now(),
            limit,
            per_read,
            received: 0,
        }
    }

    fn deadline(&self) -> Instant {
        let per_read = Instant::now() + self.per_read;
        if self.limit.init.is_zero() {
            return per_read;
        }
        let earned = self.limit.min_rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(self.received as f64 / f64::from(rate))
        });
        let mut allowed = self.limit.init + earned;
        if let Some(max) = self.limit.max {
            allowed = allowed.min(max);
        }
        per_read.min(self.start + allowed)
    }

    /// The next frame of `body`, within the deadline.
    pub async fn next(
        &mut self,
        body: &mut Incoming,
    ) -> Result<Option<Result<Frame<Bytes>, hyper::Error>>, TimedOut> {
        let frame = tokio::time::timeout_at(self.deadline(), body.frame())
            .await
            .map_err(|_| TimedOut)?;
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                self.received = self.received.saturating_add(data.len() as u64);
            }
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_rate_up_to_max() {
        let limit = ReadTimeout {
            init: Duration::from_secs(2),
            max: Some(Duration::from_secs(5)),
            min_rate: Some(100),
        };
        let mut clock = BodyClock::new(limit, Duration::from_secs(60));
        let at = |c: &BodyClock| c.deadline() - c.start;
        assert!(at(&clock) <= Duration::from_secs(2));
        clock.received = 200;
        let d = at(&clock);
        assert!(
            d > Duration::from_millis(3900) && d <= Duration::from_secs(4),
            "{d:?}"
        );
        clock.received = 100_000;
        assert!(at(&clock) <= Duration::from_secs(5));
        // Timeout per read wins when it is shorter.
        let short = BodyClock::new(limit, Duration::from_millis(100));
        // (measured from the clock's start, a moment before the read begins)
        assert!(at(&short) < Duration::from_millis(150), "{:?}", at(&short));
        // No stage limit: Timeout per read only.
        let off = BodyClock::new(ReadTimeout::OFF, Duration::from_secs(7));
        assert!(at(&off) > Duration::from_secs(6));
    }
}
