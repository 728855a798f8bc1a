//! sea-orm entities, one per table.

pub mod auth_state;
pub mod connection;
pub mod usage_record;
