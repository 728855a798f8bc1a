//! What the fake provider recorded, read for the verdict: each refresh-token presentation (whose
//! token, from which replica, when, answered how), each usage request and each charge in the
//! fake's ledger (for which key). Tokens stay in memory for grouping; nothing here is ever printed.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{
    cluster::SLOT_PARAM,
    shared::fake::{FakeProvider, RecordedRequest},
};

/// A request answered later than this was a slow one of the chaos.
const SLOW: Duration = Duration::from_millis(900);

/// One refresh request at the token endpoint.
pub struct Presentation {
    pub refresh_token: String,
    /// The fake user the token was issued to.
    pub user: Option<String>,
    /// The replica slot that sent it.
    pub slot: Option<usize>,
    pub received_at: Instant,
    pub answered_at: Option<Instant>,
    pub status: u16,
}

impl Presentation {
    /// The provider rotated the token (answered 200), or may have: the request was dropped
    /// unanswered when the replica that sent it died (the fake's handler goes with the connection,
    /// possibly after its work).
    pub fn maybe_spent(&self) -> bool {
        self.status == 200 || self.answered_at.is_none()
    }
}

/// One usage request at the fake, answered or not.
pub struct UsageRequest {
    /// The `usage` label, which the soak sets to the idempotency key.
    pub key: String,
    pub received_at: Instant,
    pub answered_at: Option<Instant>,
    pub status: u16,
}

pub struct Records {
    pub presentations: Vec<Presentation>,
    pub usage: Vec<UsageRequest>,
    /// The fake's ledger: (key, when) of every charge, including those whose answer was dropped.
    pub charges: Vec<(String, Instant)>,
    /// Token and usage requests answered with a 5xx.
    pub server_errors: usize,
    /// Token and usage requests answered late.
    pub slow: usize,
    /// Requests never answered: dropped with the connection of a replica that died.
    pub unanswered: usize,
}

impl Records {
    pub fn read(fake: &FakeProvider) -> Records {
        let token_path = path_of(&fake.token_url());
        let usage_path = path_of(&fake.usage_url().expect("ARES has a usage endpoint"));
        let mut records = Records {
            presentations: Vec::new(),
            usage: Vec::new(),
            charges: fake
                .charges()
                .into_iter()
                .map(|c| (c.usage, c.at))
                .collect(),
            server_errors: 0,
            slow: 0,
            unanswered: 0,
        };
        for r in fake.requests() {
            let ours = r.path == token_path || r.path == usage_path;
            if ours && r.status >= 500 {
                records.server_errors += 1;
            }
            match r.answered_at {
                Some(at) if ours && at - r.received_at >= SLOW => records.slow += 1,
                None => records.unanswered += 1,
                _ => {}
            }
            if r.path == token_path {
                records.presentations.extend(presentation(fake, &r));
            } else if r.path == usage_path {
                records.usage.extend(usage_request(&r));
            }
        }
        records
    }

    /// Charges per idempotency key.
    pub fn charges_by_key(&self) -> HashMap<&str, usize> {
        let mut charges = HashMap::new();
        for (key, _) in &self.charges {
            *charges.entry(key.as_str()).or_default() += 1;
        }
        charges
    }
}

fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("the fake's URLs parse")
        .path()
        .to_owned()
}

fn slot_of(r: &RecordedRequest) -> Option<usize> {
    url::form_urlencoded::parse(r.query.as_bytes())
        .find(|(name, _)| name == SLOT_PARAM)
        .and_then(|(_, value)| value.parse().ok())
}

fn presentation(fake: &FakeProvider, r: &RecordedRequest) -> Option<Presentation> {
    let params: HashMap<String, String> = serde_urlencoded::from_str(&r.body).ok()?;
    if params.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return None;
    }
    let refresh_token = params.get("refresh_token")?.clone();
    Some(Presentation {
        user: fake.refresh_token_user(&refresh_token),
        refresh_token,
        slot: slot_of(r),
        received_at: r.received_at,
        answered_at: r.answered_at,
        status: r.status,
    })
}

fn usage_request(r: &RecordedRequest) -> Option<UsageRequest> {
    let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    Some(UsageRequest {
        key: body.get("usage")?.as_str()?.to_owned(),
        received_at: r.received_at,
        answered_at: r.answered_at,
        status: r.status,
    })
}
