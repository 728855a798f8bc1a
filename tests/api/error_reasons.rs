//! Every `ErrorReason`, provoked through the real server, with the
//! google.rpc details `src/error.rs` promises for it: the gRPC code, an
//! ErrorInfo (domain, reason, exactly its metadata), a BadRequest where the
//! request was at fault and a RetryInfo exactly where a retry is advised.
//! The test fails when a reason is added without a case here.

mod binary;
mod clocked;
mod expect;
mod limits;

use crate::helpers::Backend;

async fn every_reason_carries_its_details(backend: Backend) {
    // Both servers at once: each group mostly waits (for timeouts, for a
    // restart), and the two share nothing.
    let (mut cases, in_process) = tokio::join!(
        binary::through_the_binary(backend),
        clocked::in_process(backend)
    );
    cases.extend(in_process);
    // Alone: it fills a server to capacity, and the in-process group's
    // waits are timed.
    cases.extend(limits::limits_and_policy(backend).await);
    cases.verify(backend);
}

on_both!(every_reason_carries_its_details);
