//! Tessera's control workflows, run on Temporal with the official Rust SDK.
//!
//! Workflows decide the order of steps; activities do the I/O, each idempotent (ids are chosen
//! before a workflow starts), so a crash anywhere is repaired by Temporal replaying the workflow
//! and retrying the activity that was cut off.

pub mod activities;
pub mod cell_activities;
pub mod cells;
pub mod client;
pub mod drain;
pub mod errors;
pub mod migration_activities;
pub mod migrations;
pub mod namespace_activities;
pub mod namespaces;
pub mod probe;
pub mod renewal;
pub mod replicas;
pub mod rollout_activities;
pub mod rollouts;
pub mod signup;
pub mod steps;
pub mod worker;

/// The platform's certificate authority lives in its own crate; `crate::certs` is it.
pub use tessera_platform_pki as certs;

pub use cell_activities::{CellActivities, Providers};
pub use cells::{CellInput, CellPhase, CellWorkflow};
pub use certs::{Lifetimes, PlatformPki};
pub use client::{Engine, EngineError};
pub use migrations::{MigrationControl, MigrationInput, MigrationWorkflow};
pub use namespace_activities::NamespaceActivities;
pub use namespaces::{NamespaceInput, NamespaceRequest, NamespaceWorkflow};
pub use rollouts::{RolloutControl, RolloutInput, RolloutWorkflow};
pub use signup::{SignupInput, SignupOutput, SignupWorkflow};
pub use worker::{WorkerConfig, WorkerHandle, spawn_worker};
