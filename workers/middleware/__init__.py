"""The platform's Dramatiq middleware, one concern per module."""

from workers.middleware.arguments import ArgumentCheck
from workers.middleware.batches import BatchProgress
from workers.middleware.cancellation import Cancellation
from workers.middleware.crashes import CrashGuard
from workers.middleware.history import JobHistory
from workers.middleware.housekeeping import Housekeeping
from workers.middleware.job_log import JobLog
from workers.middleware.limits import FlowControl
from workers.middleware.message_size import MessageSizeLimit
from workers.middleware.presence import WorkerPresence
from workers.middleware.rejections import RejectionRecord
from workers.middleware.retries import Retries
from workers.middleware.statsd import StatsdMetrics
from workers.middleware.unique import UniqueJobs
from workers.middleware.weighted_queues import WeightedQueues

__all__ = [
    # Routing
    "WeightedQueues",
    "FlowControl",
    # Recovery
    "Housekeeping",
    "CrashGuard",
    "Cancellation",
    # Observability
    "JobLog",
    "StatsdMetrics",
    "JobHistory",
    "WorkerPresence",
    # Uniqueness
    "UniqueJobs",
    # Progress
    "BatchProgress",
    # Failure handling
    "MessageSizeLimit",
    "ArgumentCheck",
    "RejectionRecord",
    "Retries",
]
