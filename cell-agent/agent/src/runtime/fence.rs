//! Fences: a runtime whose namespace moved to another cell is killed at once (SIGKILL: every
//! transaction it acknowledged is in its WAL already) and never started again by this cell
//! while the desired state fences it, across agent restarts too.

use std::collections::BTreeSet;
use std::path::Path;

use tessera_api::agent::RuntimeHealth;
use tokio::sync::watch;

use super::process::{Proc, kill_now, runs_store};
use super::{RuntimeCtx, Supervisor, read_record};

/// Why a fenced runtime does not run.
const FENCED: &str = "fenced: the namespace moved to another cell";

impl Supervisor {
    /// Fences runtimes: each is killed at once and not started again while it stays fenced.
    /// Applied before [`Supervisor::apply`].
    pub fn set_fences(&self, fenced: BTreeSet<String>) {
        self.factory.fences.send_if_modified(|f| {
            let changed = *f != fenced;
            *f = fenced;
            changed
        });
    }

    /// Whether the runtime is fenced and its process is gone.
    pub fn fenced_and_stopped(&self, id: &str) -> bool {
        let runtimes = self.runtimes.lock().expect("supervisor lock");
        match runtimes.get(id) {
            Some(h) => h.status.lock().expect("status lock").fenced,
            // Not supervised: nothing runs it unless an earlier agent left it running.
            None => read_record(&self.root.join(id))
                .is_none_or(|r| !runs_store(r.pid, &self.root.join(id))),
        }
    }
}

impl RuntimeCtx {
    pub(super) fn is_fenced(&self) -> bool {
        self.fences.borrow().contains(&self.id)
    }
}

/// What the runtime's task does after [`stay_fenced`].
pub(super) enum Next {
    /// The fences changed: look again.
    CheckAgain,
    /// Removed, replaced or detached: the task ends.
    End,
}

/// Kills the fenced runtime (the task's process, or one an earlier agent left running), marks it
/// fenced, and waits for the runtime's removal or a change of the fences.
pub(super) async fn stay_fenced(
    ctx: &RuntimeCtx,
    proc: Option<Proc>,
    fences: &mut watch::Receiver<BTreeSet<String>>,
) -> Next {
    let dir: &Path = &ctx.dir;
    match proc {
        Some(mut p) => {
            tracing::warn!(runtime = %ctx.id, "fenced: killing the runtime for good");
            kill_now(&mut p, dir).await;
        }
        None => {
            if let Some(r) = read_record(dir)
                && runs_store(r.pid, dir)
            {
                kill_now(&mut Proc::Adopted(r.pid), dir).await;
            }
        }
    }
    ctx.set(|s| {
        s.health = RuntimeHealth::Stopped;
        s.last_error = Some(FENCED.into());
        s.fenced = true;
    });
    tokio::select! {
        _ = ctx.remove.cancelled() => {
            if !ctx.detach.is_cancelled() {
                ctx.stop_and_trash(None).await;
            }
            Next::End
        }
        _ = ctx.restart.cancelled() => Next::End,
        Ok(()) = fences.changed() => Next::CheckAgain,
        else => Next::End,
    }
}
