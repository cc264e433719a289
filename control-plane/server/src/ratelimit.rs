//! Token-bucket rate limiting per API key (and per address for anonymous calls).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        Self {
            rate: rate_per_second,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long until `key` has a token again, when it has none now; takes nothing.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        let b = buckets.get(key)?;
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        let tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }

    /// Takes one token for `key`; when none is left, how long until one is.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        if buckets.len() > 100_000 {
            // Forget buckets that have refilled completely: they carry no state.
            let full = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.duration_since(b.at) < full);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let rl = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", t0).is_ok());
        }
        let wait = rl.check("k", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(rl.check("other", t0).is_ok(), "keys are independent");
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_err());
        assert!(rl.exhausted("k", t0 + Duration::from_millis(500)).is_some());
        assert!(
            rl.exhausted("k", t0 + Duration::from_millis(1000))
                .is_none()
        );
        assert!(rl.exhausted("never-seen", t0).is_none());
    }
}
