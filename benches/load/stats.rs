//! The load generator: N concurrent workers calling one operation until a
//! deadline, and the latency statistics of what they measured.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// What one scenario at one concurrency measured.
#[derive(Clone, Debug)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies in microseconds, sorted.
    latencies: Arc<Vec<u32>>,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The q-quantile latency in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies[i])
    }

    /// One measurement made of several slices of the same scenario.
    pub fn merge(parts: &[Stats]) -> Stats {
        let latencies = parts
            .iter()
            .flat_map(|p| p.latencies.iter().copied())
            .collect();
        Stats::from_latencies(
            latencies,
            parts.iter().map(|p| p.errors).sum(),
            parts.iter().map(|p| p.elapsed).sum(),
        )
    }

    pub fn from_latencies(mut latencies: Vec<u32>, errors: u64, elapsed: Duration) -> Stats {
        latencies.sort_unstable();
        Stats {
            requests: latencies.len() as u64,
            errors,
            elapsed,
            latencies: Arc::new(latencies),
        }
    }
}

/// Times a call: `Some(latency)` on success, `None` on error.
pub async fn timed<T, E>(call: impl Future<Output = Result<T, E>>) -> Option<Duration> {
    let t = Instant::now();
    call.await.ok().map(|_| t.elapsed())
}

/// Runs `op(worker, iteration)` from `concurrency` workers for `warmup`
/// (discarded) and then `duration` (measured). `op` returns the latency of
/// what it measures (it may do unmeasured set-up first), or `None` on error.
pub async fn run<F, Fut>(concurrency: usize, warmup: Duration, duration: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Duration>> + Send,
{
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut i = 0u64;
            loop {
                let t = Instant::now();
                if t >= deadline {
                    break;
                }
                let outcome = op(worker, i).await;
                i += 1;
                if t >= measure_from {
                    match outcome {
                        Some(latency) => {
                            latencies.push(latency.as_micros().min(u128::from(u32::MAX)) as u32)
                        }
                        None => errors += 1,
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    Stats::from_latencies(all, errors, duration)
}
