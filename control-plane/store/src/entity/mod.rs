//! sea-orm entities, one module per table.

pub mod account;
pub mod api_key;
pub mod audit_entry;
pub mod idempotency_key;
pub mod operation;
pub mod service_account;
pub mod session;
pub mod user;
