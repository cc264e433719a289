//! sea-orm entities, one module per table.

pub mod account;
pub mod api_key;
pub mod audit_entry;
pub mod cell;
pub mod edge;
pub mod edge_feed;
pub mod idempotency_key;
pub mod join_token;
pub mod migration;
pub mod namespace;
pub mod operation;
pub mod pki_object;
pub mod region;
pub mod release;
pub mod replica;
pub mod rollout;
pub mod service_account;
pub mod session;
pub mod user;
