"""Why an event was recorded: one enum of every reason the host writes.

Events are shown by ``show``, the widgets and the terminal UI, and filtered by reason; the
values are part of the contract (stored in ``state.db``, sent over HTTP), so a member's value
never changes.  A :class:`enum.StrEnum`, so a reason is its plain string everywhere.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventReason"]


class EventReason(StrEnum):
    AuthModeRefused = "AuthModeRefused"
    ClusterScaled = "ClusterScaled"
    DefaultDeploymentSet = "DefaultDeploymentSet"
    DeploymentCreated = "DeploymentCreated"
    DeploymentCreating = "DeploymentCreating"
    DeploymentDeleted = "DeploymentDeleted"
    DeploymentFailed = "DeploymentFailed"
    DeploymentReady = "DeploymentReady"
    DeploymentStopped = "DeploymentStopped"
    DeploymentUpdated = "DeploymentUpdated"
    DeploymentUpdating = "DeploymentUpdating"
    EndpointCreated = "EndpointCreated"
    EndpointDeleted = "EndpointDeleted"
    EndpointUpdated = "EndpointUpdated"
    FileFailed = "FileFailed"
    HostStarted = "HostStarted"
    HostStopped = "HostStopped"
    InstanceExited = "InstanceExited"
    InstanceFailed = "InstanceFailed"
    InstanceNotReady = "InstanceNotReady"
    InstanceReady = "InstanceReady"
    InstanceRestarted = "InstanceRestarted"
    InstanceStarted = "InstanceStarted"
    JobCancelRequested = "JobCancelRequested"
    JobCanceled = "JobCanceled"
    JobCompleted = "JobCompleted"
    JobFailed = "JobFailed"
    JobFinalizing = "JobFinalizing"
    JobQueued = "JobQueued"
    JobResumed = "JobResumed"
    JobStarted = "JobStarted"
    JobWaiting = "JobWaiting"
    KeyRegenerated = "KeyRegenerated"
    LivenessProbeFailed = "LivenessProbeFailed"
    MemoryLimitExceeded = "MemoryLimitExceeded"
    MiniBatchFailed = "MiniBatchFailed"
    MiniBatchRetried = "MiniBatchRetried"
    ModelLoadFailed = "ModelLoadFailed"
    ScaledDown = "ScaledDown"
    ScaledUp = "ScaledUp"
    TrafficUpdated = "TrafficUpdated"
