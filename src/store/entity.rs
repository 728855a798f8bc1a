//! sea-orm entities, one per table.

pub(crate) mod auth_state;
pub(crate) mod connection;
pub(crate) mod usage_record;
