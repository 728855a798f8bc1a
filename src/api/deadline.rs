//! The caller's deadline, from the `grpc-timeout` request header (gRPC over
//! HTTP/2: an integer of at most 8 digits and a unit, `H M S m u n`), and how
//! much of it a call may spend waiting so that its answer still arrives in time.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The part of a deadline kept back for the answer's way back to the caller.
const ANSWER_MARGIN_MIN: Duration = Duration::from_millis(20);

/// How long the caller is willing to wait, if it said.
pub(super) fn timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(text: &str) -> Option<Duration> {
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long a call with `timeout` may wait: all but a tenth of it (at least
/// 20 ms), so the answer leaves before the caller gives up on it.
pub(super) fn wait_budget(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).max(ANSWER_MARGIN_MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("99999999S"), Some(Duration::from_secs(99_999_999)));
        for bad in ["", "S", "10", "10x", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let mut metadata = MetadataMap::new();
        assert_eq!(timeout(&metadata), None);
        metadata.insert("grpc-timeout", "1500m".parse().expect("ascii"));
        assert_eq!(timeout(&metadata), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn budgets_leave_room_for_the_answer() {
        assert_eq!(
            wait_budget(Duration::from_secs(2)),
            Duration::from_millis(1800)
        );
        assert_eq!(
            wait_budget(Duration::from_millis(100)),
            Duration::from_millis(80)
        );
        assert_eq!(wait_budget(Duration::from_millis(10)), Duration::ZERO);
    }
}
