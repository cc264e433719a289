//! The API side of the workflows: start them and wait for their results.

use std::str::FromStr;
use std::time::Duration;

use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, RegisterNamespaceOptions, Url,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStartOptions, errors::WorkflowStartError, tonic,
};
use temporalio_common::{HasWorkflowDefinition, SignalDefinition};
use thiserror::Error;
use uuid::Uuid;

use crate::cells::{CellInput, CellPhase, CellWorkflow};
use crate::namespaces::{NamespaceInput, NamespaceRequest, NamespaceWorkflow};
use crate::rollouts::{RolloutControl, RolloutInput, RolloutWorkflow};
use crate::signup::{SignupInput, SignupOutput, SignupWorkflow, workflow_id};

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot reach Temporal at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("Temporal call failed: {0}")]
    Rpc(String),
    /// The workflow ended without success; its operation records why.
    #[error("workflow {0} failed")]
    WorkflowFailed(String),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, EngineError::Connect { .. } | EngineError::Rpc(_))
    }
}

/// Starts control workflows on the control plane's namespace and task queue.
#[derive(Clone)]
pub struct Engine {
    client: Client,
    task_queue: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("task_queue", &self.task_queue)
            .finish()
    }
}

/// `http://host:port` for a Temporal frontend given as `host:port` (or already as a URL).
pub fn frontend_url(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

pub async fn connect_client(address: &str, namespace: &str) -> Result<Client, EngineError> {
    let err = |message: String| EngineError::Connect {
        address: address.to_string(),
        message,
    };
    let url = Url::from_str(&frontend_url(address)).map_err(|e| err(e.to_string()))?;
    Client::connect(
        ConnectionOptions::new(url)
            .identity(format!("tessera-control-plane@{}", std::process::id()))
            .connect_timeout(Duration::from_secs(5))
            .build(),
        ClientOptions::new(namespace).build(),
    )
    .await
    .map_err(|e| err(e.to_string()))
}

impl Engine {
    pub async fn connect(
        address: &str,
        namespace: &str,
        task_queue: &str,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            client: connect_client(address, namespace).await?,
            task_queue: task_queue.to_string(),
        })
    }

    /// Registers the control namespace if the cluster does not have it yet.
    pub async fn ensure_namespace(&self, namespace: &str) -> Result<(), EngineError> {
        let mut svc = self.client.connection().workflow_service();
        let req = RegisterNamespaceOptions::builder()
            .namespace(namespace)
            .description("Tessera control workflows")
            .build();
        match svc
            .register_namespace(tonic::Request::new(req.into()))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(EngineError::Rpc(s.to_string())),
        }
    }

    /// Starts the sign-up workflow of `input.operation_id`; starting it twice is harmless.
    pub async fn start_signup(&self, input: SignupInput) -> Result<(), EngineError> {
        let id = workflow_id(input.operation_id);
        self.start_once(
            SignupWorkflow::run,
            input,
            &id,
            WorkflowIdReusePolicy::RejectDuplicate,
        )
        .await
    }

    /// Starts a workflow unless one with `id` runs (or, under `reuse`, ran) already.
    async fn start_once<W>(
        &self,
        workflow: W,
        input: W::Input,
        id: &str,
        reuse: WorkflowIdReusePolicy,
    ) -> Result<(), EngineError>
    where
        W: HasWorkflowDefinition,
        W::Input: Send,
    {
        let opts = WorkflowStartOptions::new(self.task_queue.as_str(), id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .id_reuse_policy(reuse)
            .build();
        match self.client.start_workflow(workflow, input, opts).await {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
            Err(e) => Err(EngineError::Rpc(e.to_string())),
        }
    }

    /// Signals an entity workflow, starting it with `input` if it is not running.
    async fn signal_with_start<W, S>(
        &self,
        workflow: W,
        input: W::Input,
        signal: S,
        signal_input: S::Input,
        id: &str,
    ) -> Result<(), EngineError>
    where
        W: HasWorkflowDefinition,
        W::Input: Send,
        S: SignalDefinition<Workflow = W::Run>,
        S::Input: Send,
    {
        let opts = WorkflowStartOptions::new(self.task_queue.as_str(), id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .build();
        self.client
            .signal_with_start_workflow(workflow, input, signal, signal_input, opts)
            .await
            .map(|_| ())
            .map_err(|e| EngineError::Rpc(e.to_string()))
    }

    /// Waits up to `timeout` for the sign-up's result; `Ok(None)` when it is still running.
    pub async fn signup_result(
        &self,
        operation_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<SignupOutput>, EngineError> {
        let id = workflow_id(operation_id);
        let handle = self
            .client
            .get_workflow_handle::<SignupWorkflow>(id.clone());
        match tokio::time::timeout(
            timeout,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        {
            Err(_) => Ok(None),
            Ok(Ok(out)) => Ok(Some(out)),
            Ok(Err(e)) if e.is_workflow_outcome() => Err(EngineError::WorkflowFailed(id)),
            Ok(Err(e)) => Err(EngineError::Rpc(e.to_string())),
        }
    }

    /// Starts the entity workflow of a cell; starting it twice is harmless.
    pub async fn start_cell(&self, input: CellInput) -> Result<(), EngineError> {
        let id = crate::cells::workflow_id(&input.cell_id);
        self.start_once(
            CellWorkflow::run,
            input,
            &id,
            WorkflowIdReusePolicy::RejectDuplicate,
        )
        .await
    }

    /// Signals a cell's workflow to decommission it (starting the workflow if it is not running).
    pub async fn decommission_cell(
        &self,
        cell_id: &str,
        operation_id: Uuid,
    ) -> Result<(), EngineError> {
        self.signal_with_start(
            CellWorkflow::run,
            CellInput {
                cell_id: cell_id.to_string(),
                phase: CellPhase::Watch,
                operation_id: None,
                join_timeout_secs: None,
                pending_release: None,
            },
            CellWorkflow::decommission,
            operation_id,
            &crate::cells::workflow_id(cell_id),
        )
        .await
    }

    /// Starts the entity workflow of a namespace unless it runs already (it is started again
    /// if it ended without the namespace being deleted). `create_operation` makes it create
    /// the namespace first.
    pub async fn start_namespace(
        &self,
        namespace_id: Uuid,
        create_operation: Option<Uuid>,
    ) -> Result<(), EngineError> {
        self.start_once(
            NamespaceWorkflow::run,
            NamespaceInput {
                namespace_id,
                create_operation,
                pending: Vec::new(),
                restore: false,
            },
            &crate::namespaces::workflow_id(namespace_id),
            WorkflowIdReusePolicy::AllowDuplicate,
        )
        .await
    }

    /// Starts the workflow of a namespace restored from deletion: `operation` brings its store
    /// back from its cell's trash.
    pub async fn start_namespace_restore(
        &self,
        namespace_id: Uuid,
        operation: Uuid,
    ) -> Result<(), EngineError> {
        self.start_once(
            NamespaceWorkflow::run,
            NamespaceInput {
                namespace_id,
                create_operation: Some(operation),
                pending: Vec::new(),
                restore: true,
            },
            &crate::namespaces::workflow_id(namespace_id),
            WorkflowIdReusePolicy::AllowDuplicate,
        )
        .await
    }

    /// Queues an update or delete on a namespace's workflow (starting it if it is not running).
    pub async fn namespace_request(
        &self,
        namespace_id: Uuid,
        request: NamespaceRequest,
    ) -> Result<(), EngineError> {
        self.signal_with_start(
            NamespaceWorkflow::run,
            NamespaceInput {
                namespace_id,
                create_operation: None,
                pending: Vec::new(),
                restore: false,
            },
            NamespaceWorkflow::request,
            request,
            &crate::namespaces::workflow_id(namespace_id),
        )
        .await
    }

    /// Starts draining a cell (once per operation).
    pub async fn start_drain(&self, input: crate::drain::DrainInput) -> Result<(), EngineError> {
        let id = crate::drain::workflow_id(input.operation_id);
        self.start_once(
            crate::drain::DrainWorkflow::run,
            input,
            &id,
            WorkflowIdReusePolicy::RejectDuplicate,
        )
        .await
    }

    /// Cuts a namespace's migration over now, or aborts it.
    pub async fn migration_control(
        &self,
        namespace_id: Uuid,
        migration_id: Uuid,
        control: crate::MigrationControl,
    ) -> Result<(), EngineError> {
        self.client
            .get_workflow_handle::<NamespaceWorkflow>(crate::namespaces::workflow_id(namespace_id))
            .signal(
                NamespaceWorkflow::migration_control,
                (migration_id, control),
                temporalio_client::WorkflowSignalOptions::default(),
            )
            .await
            .map_err(|e| EngineError::Rpc(e.to_string()))
    }

    /// Starts a rollout's workflow (once: its id is the rollout's).
    pub async fn start_rollout(&self, input: RolloutInput) -> Result<(), EngineError> {
        let id = crate::rollouts::workflow_id(input.rollout_id);
        self.start_once(
            RolloutWorkflow::run,
            input,
            &id,
            WorkflowIdReusePolicy::RejectDuplicate,
        )
        .await
    }

    /// Pause, resume, abort or approve a running rollout. `Ok(false)`: it is not running.
    pub async fn rollout_control(
        &self,
        rollout_id: Uuid,
        control: RolloutControl,
    ) -> Result<bool, EngineError> {
        let handle = self
            .client
            .get_workflow_handle::<RolloutWorkflow>(crate::rollouts::workflow_id(rollout_id));
        match handle
            .signal(
                RolloutWorkflow::control,
                control,
                temporalio_client::WorkflowSignalOptions::default(),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(e)
                if e.to_string().to_lowercase().contains("not found")
                    || e.to_string().contains("already completed") =>
            {
                Ok(false)
            }
            Err(e) => Err(EngineError::Rpc(e.to_string())),
        }
    }

    /// The rollout's progress, asked of its workflow (`Ok(None)` once it has ended).
    pub async fn rollout_progress(
        &self,
        rollout_id: Uuid,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let handle = self
            .client
            .get_workflow_handle::<RolloutWorkflow>(crate::rollouts::workflow_id(rollout_id));
        let opts = temporalio_client::WorkflowQueryOptions::builder()
            .reject_condition(temporalio_client::QueryRejectCondition::NotOpen)
            .build();
        match handle.query(RolloutWorkflow::progress, (), opts).await {
            Ok(p) => Ok(p),
            Err(e) => {
                tracing::debug!(error = %e, "rollout progress query refused; using the saved copy");
                Ok(None)
            }
        }
    }

    /// Starts the certificate-renewal workflow unless it runs already.
    pub async fn start_renewal(&self, interval_secs: u64) -> Result<(), EngineError> {
        self.start_once(
            crate::renewal::CertRenewalWorkflow::run,
            crate::renewal::RenewalInput { interval_secs },
            crate::renewal::WORKFLOW_ID,
            WorkflowIdReusePolicy::AllowDuplicate,
        )
        .await
    }
}
