//! Flow control of one stream, sans-IO: which pictures are on their way (sent, not yet
//! acknowledged by the viewer), whether another may be encoded now, round trips, and the
//! figures the viewer's overlay shows. Time comes in as an argument.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many pictures sent and not yet acknowledged; then encoding pauses and the
/// changes accumulate in the next picture.
pub(crate) const MAX_IN_FLIGHT: usize = 3;
/// An acknowledgement this late is taken as lost: one more picture goes out (so a viewer that
/// stops acknowledging gets about one picture per second, never a queue).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(1);
/// Figures go to the viewer at most this often, and only when something happened.
pub(crate) const STATS_EVERY: Duration = Duration::from_secs(1);

/// The figures of one period, as sent to the viewer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Stats {
    /// Pictures sent in the period.
    pub frames: u32,
    /// Video bytes sent in the period (headers included).
    pub bytes: u64,
    /// The period's length.
    pub period_ms: u64,
    /// Mean time to convert and encode one picture.
    pub encode_ms: Option<f64>,
    /// Mean and largest round trip: picture handed to the sender → its acknowledgement.
    pub rtt_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    /// Mean decode time the viewer reported in its acknowledgements.
    pub decode_ms: Option<f64>,
    /// Times encoding waited for acknowledgements in the period.
    pub waits: u32,
    /// Pictures not acknowledged at the end of the period.
    pub in_flight: usize,
    /// All pictures sent on this stream.
    pub total_frames: u64,
}

#[derive(Debug, Default)]
struct Period {
    frames: u32,
    bytes: u64,
    encode: Duration,
    rtt_sum: Duration,
    rtt_max: Duration,
    acks: u32,
    decode_sum: f64,
    decodes: u32,
    waits: u32,
}

impl Period {
    fn is_empty(&self) -> bool {
        self.frames == 0 && self.acks == 0 && self.waits == 0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The bookkeeping. Pictures are numbered in the order they are sent; an acknowledgement of
/// picture N acknowledges every picture before it too.
#[derive(Debug)]
pub(crate) struct Flow {
    /// Sent and not acknowledged, oldest first: (number, when).
    in_flight: VecDeque<(u32, Instant)>,
    /// The window applies once the viewer has acknowledged something: a client that never
    /// does (a test, a recorder) is paced by the socket alone.
    acking: bool,
    /// Whether the last `may_encode` said no (a wait is counted once).
    waiting: bool,
    period: Period,
    period_start: Instant,
    total_frames: u64,
}

impl Flow {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            in_flight: VecDeque::new(),
            acking: false,
            waiting: false,
            period: Period::default(),
            period_start: now,
            total_frames: 0,
        }
    }

    /// Picture `number` of `bytes` bytes, which took `encode` to make, was handed to the
    /// sender at `now`.
    pub(crate) fn on_sent(&mut self, number: u32, bytes: usize, encode: Duration, now: Instant) {
        self.in_flight.push_back((number, now));
        // A viewer that never acknowledges must not make this grow: keep what the window needs.
        while self.in_flight.len() > MAX_IN_FLIGHT * 4 {
            self.in_flight.pop_front();
        }
        self.period.frames += 1;
        self.period.bytes += bytes as u64;
        self.period.encode += encode;
        self.total_frames += 1;
    }

    /// The viewer decoded picture `number` (and so all before it); `decode_ms` is its own
    /// measure. Returns the round trip, or `None` for a number not on its way (old, repeated
    /// or made up: ignored).
    pub(crate) fn on_ack(
        &mut self,
        number: u32,
        decode_ms: Option<f64>,
        now: Instant,
    ) -> Option<Duration> {
        let pos = self.in_flight.iter().position(|(n, _)| *n == number)?;
        let (_, sent) = self.in_flight[pos];
        self.in_flight.drain(..=pos);
        self.acking = true;
        let rtt = now.saturating_duration_since(sent);
        self.period.acks += 1;
        self.period.rtt_sum += rtt;
        self.period.rtt_max = self.period.rtt_max.max(rtt);
        if let Some(d) = decode_ms.filter(|d| d.is_finite() && *d >= 0.0) {
            self.period.decode_sum += d;
            self.period.decodes += 1;
        }
        Some(rtt)
    }

    /// The viewer asked for a keyframe: it dropped what it had not decoded, so nothing is on
    /// its way any more (the keyframe must not wait for acknowledgements that will not come).
    pub(crate) fn forget_in_flight(&mut self) {
        self.in_flight.clear();
        self.waiting = false;
    }

    /// Whether a picture may be encoded now: `Err(when to look again)` while too many are on
    /// their way and the last one left less than [`ACK_WAIT`] ago.
    pub(crate) fn may_encode(&mut self, now: Instant) -> Result<(), Instant> {
        match self.in_flight.back() {
            Some((_, newest))
                if self.acking
                    && self.in_flight.len() >= MAX_IN_FLIGHT
                    && now < *newest + ACK_WAIT =>
            {
                if !self.waiting {
                    self.waiting = true;
                    self.period.waits += 1;
                }
                Err(*newest + ACK_WAIT)
            }
            _ => {
                self.waiting = false;
                Ok(())
            }
        }
    }

    /// When the next figures are due, if anything happened since the last ones.
    pub(crate) fn stats_due(&self) -> Option<Instant> {
        (!self.period.is_empty()).then_some(self.period_start + STATS_EVERY)
    }

    /// The figures since the last call, once they are due; starts a new period.
    pub(crate) fn take_stats(&mut self, now: Instant) -> Option<Stats> {
        if now < self.stats_due()? {
            return None;
        }
        let p = std::mem::take(&mut self.period);
        let period = now.saturating_duration_since(self.period_start);
        self.period_start = now;
        let mean = |sum: Duration, n: u32| (n > 0).then(|| ms(sum) / f64::from(n));
        Some(Stats {
            frames: p.frames,
            bytes: p.bytes,
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            encode_ms: mean(p.encode, p.frames),
            rtt_ms: mean(p.rtt_sum, p.acks),
            rtt_max_ms: (p.acks > 0).then(|| ms(p.rtt_max)),
            decode_ms: (p.decodes > 0).then(|| p.decode_sum / f64::from(p.decodes)),
            waits: p.waits,
            in_flight: self.in_flight.len(),
            total_frames: self.total_frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_viewer_that_never_acknowledges_is_not_held_back() {
        let t0 = Instant::now();
        let mut f = Flow::new(t0);
        for n in 0..100 {
            assert_eq!(f.may_encode(t0), Ok(()));
            f.on_sent(n, 10, MS, t0);
        }
        assert!(f.in_flight.len() <= MAX_IN_FLIGHT * 4, "bounded");
    }

    #[test]
    fn encoding_waits_for_acknowledgements_then_resumes() {
        let t0 = Instant::now();
        let mut f = Flow::new(t0);
        f.on_sent(0, 100, 5 * MS, t0);
        assert_eq!(f.on_ack(0, Some(2.0), t0 + 20 * MS), Some(20 * MS));
        for n in 1..=3 {
            assert_eq!(f.may_encode(t0 + 30 * MS), Ok(()));
            f.on_sent(n, 100, 5 * MS, t0 + 30 * MS);
        }
        let later = t0 + 40 * MS;
        assert_eq!(
            f.may_encode(later),
            Err(t0 + 30 * MS + ACK_WAIT),
            "three on their way"
        );
        assert!(f.may_encode(later).is_err());
        // An acknowledgement of the second also covers the first.
        assert_eq!(f.on_ack(2, None, t0 + 50 * MS), Some(20 * MS));
        assert_eq!(f.may_encode(t0 + 50 * MS), Ok(()));
        // Old, repeated and made-up numbers are ignored.
        assert_eq!(f.on_ack(1, None, t0 + 60 * MS), None);
        assert_eq!(f.on_ack(2, None, t0 + 60 * MS), None);
        assert_eq!(f.on_ack(99, None, t0 + 60 * MS), None);
        assert_eq!(f.in_flight.len(), 1);
    }

    #[test]
    fn a_late_acknowledgement_lets_one_more_picture_go() {
        let t0 = Instant::now();
        let mut f = Flow::new(t0);
        f.on_sent(0, 1, MS, t0);
        f.on_ack(0, None, t0);
        for n in 1..=3 {
            f.on_sent(n, 1, MS, t0);
        }
        assert!(f.may_encode(t0 + ACK_WAIT - MS).is_err());
        assert_eq!(f.may_encode(t0 + ACK_WAIT), Ok(()));
        f.on_sent(4, 1, MS, t0 + ACK_WAIT);
        assert!(
            f.may_encode(t0 + ACK_WAIT + 100 * MS).is_err(),
            "one per second, not a flood"
        );
        assert_eq!(f.may_encode(t0 + 2 * ACK_WAIT), Ok(()));
    }

    #[test]
    fn a_keyframe_request_clears_the_window() {
        let t0 = Instant::now();
        let mut f = Flow::new(t0);
        f.on_sent(0, 1, MS, t0);
        f.on_ack(0, None, t0);
        for n in 1..=3 {
            f.on_sent(n, 1, MS, t0);
        }
        assert!(f.may_encode(t0).is_err());
        f.forget_in_flight();
        assert_eq!(f.may_encode(t0), Ok(()));
        assert_eq!(f.on_ack(2, None, t0), None, "forgotten");
    }

    #[test]
    fn figures_per_period_and_none_when_idle() {
        let t0 = Instant::now();
        let mut f = Flow::new(t0);
        assert_eq!(f.stats_due(), None, "nothing happened");
        f.on_sent(0, 1000, 4 * MS, t0);
        f.on_sent(1, 500, 2 * MS, t0);
        f.on_ack(0, Some(1.0), t0 + 10 * MS);
        f.on_ack(1, Some(3.0), t0 + 30 * MS);
        assert_eq!(f.take_stats(t0 + 500 * MS), None, "not due yet");
        let s = f.take_stats(t0 + STATS_EVERY).unwrap();
        assert_eq!(
            (s.frames, s.bytes, s.in_flight, s.total_frames),
            (2, 1500, 0, 2)
        );
        assert_eq!(s.encode_ms, Some(3.0));
        assert_eq!(s.rtt_ms, Some(20.0));
        assert_eq!(s.rtt_max_ms, Some(30.0));
        assert_eq!(s.decode_ms, Some(2.0));
        assert_eq!(f.stats_due(), None, "idle again");
        assert_eq!(f.take_stats(t0 + 10 * STATS_EVERY), None);
    }
}
