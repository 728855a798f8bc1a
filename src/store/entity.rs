//! sea-orm entities, one per table.

pub(crate) mod audit_event;
pub(crate) mod auth_state;
pub(crate) mod connection;
pub(crate) mod replica;
pub(crate) mod usage_record;
