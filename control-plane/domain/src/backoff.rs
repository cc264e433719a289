//! The one retry delay policy: exponential backoff with jitter, so that many agents or workers
//! retrying the same failed dependency spread out instead of arriving together.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `initial` up to `max`; each is drawn at random from its upper half
/// ("equal jitter"), never shorter than half the nominal delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The delay to wait now; the one after it is twice as long (up to the maximum).
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = nominal / 2;
        half + rand::rng().random_range(Duration::ZERO..=nominal - half)
    }

    /// After a success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter_in_their_upper_half() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        for nominal in [100, 200, 400, 800, 1000, 1000] {
            let d = b.next_delay();
            assert!(
                d >= ms(nominal / 2) && d <= ms(nominal),
                "{d:?} for {nominal} ms"
            );
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
        // Jitter: a hundred first delays are not all the same.
        let firsts: std::collections::BTreeSet<_> = (0..100)
            .map(|_| Backoff::new(ms(100), ms(1000)).next_delay())
            .collect();
        assert!(firsts.len() > 10, "{firsts:?}");
    }
}
