//! Regions' object stores and the credentials cells get for them.

mod stores;
mod sts;

pub use stores::{ObjectStores, S3Store};
pub use sts::{Access, Issuer, session_policy};
