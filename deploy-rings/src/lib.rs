//! Deployment rings: a release reaches cells ring by ring (ring 0 = synthetic canary traffic
//! only, ring 1 = low-priority namespaces, then the rest), batch by batch, each batch baking and
//! passing health gates before the next, with automatic rollback of a failed batch.
//!
//! Everything here is plain, deterministic functions and types (no I/O, no async, no clock:
//! time is passed in), so the Temporal rollout workflow only carries out what they decide:
//! - [`RingsFile`]: the ring definitions file, parsed and validated (`README.md` documents it);
//! - [`plan()`]: which cells go in which batch of which ring;
//! - [`next()`] and [`RolloutState`]: the rollout as a state machine, and its [`Progress`];
//! - [`evaluate()`]: the health gates' verdict on a batch.

pub mod duration;
pub mod file;
pub mod gates;
pub mod plan;
pub mod progress;
pub mod rollout;

pub use file::{Batch, CellSelector, DEV_RINGS_TOML, Gates, MAX_BAKE, Ring, RingsError, RingsFile};
pub use gates::{CanaryObs, CellObservation, GateReport, GateResult, evaluate};
pub use plan::{CellRef, Plan, PlanError, PlannedBatch, PlannedRing, plan};
pub use progress::{BatchProgress, BatchState, Progress, RingProgress, RingState, RolloutStatus};
pub use rollout::{Event, EventKind, Phase, RolloutState, Step, TransitionError, next};
