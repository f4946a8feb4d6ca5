"""Platform records, one module per concept."""

from workers.models.batches import Batch, BatchJob
from workers.models.console import JobMinute, JobRun, OperatorAction, Pause
from workers.models.dead_letters import DeadLetter
from workers.models.outbox import OutboxMessage

__all__ = ["Batch", "BatchJob", "DeadLetter", "JobMinute", "JobRun", "OperatorAction", "OutboxMessage", "Pause"]
