"""Weighted queues: each queue's consumer may hold a number of messages in proportion to its weight."""

from __future__ import annotations

from django.conf import settings
from dramatiq.common import q_name
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.dramatiq_internals.worker import set_prefetch


class WeightedQueues(Middleware):
    """Give every queue a share of a worker in proportion to its weight.

    A Dramatiq worker runs one consumer per queue and feeds all their messages into one
    first-in, first-out work queue. Each consumer holds at most ``prefetch`` unacknowledged
    messages, so when all queues are busy a queue's share of the worker threads is its
    prefetch over the sum of all prefetches (Little's law: every message waits behind the same
    line). Setting the prefetch to ``weight * unit`` therefore serves queues in proportion to
    their weights, as Sidekiq's weighted queues do; a queue with nothing to do holds nothing,
    so its share goes to the others, and no queue with a weight of at least 1 starves.

    Parameters:
      weights(dict[str, int]): Queue name to weight. Defaults to ``settings.JOB_QUEUES``.
      unit(int): Prefetch per unit of weight. Defaults to enough that the lightest queue can
        still fill every worker thread on its own.
    """

    def __init__(self, *, weights: dict[str, int] | None = None, unit: int | None = None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.weights = dict(weights if weights is not None else settings.JOB_QUEUES)
        self.unit = unit
        self.worker_threads = 8

    def before_worker_boot(self, broker, worker) -> None:
        """Remember the worker's thread count, which sizes the prefetch unit."""
        self.worker_threads = worker.worker_threads

    def after_consumer_thread_boot(self, broker, thread) -> None:
        """Set the consumer's prefetch from its queue's weight (delay queues keep theirs)."""
        if q_name(thread.queue_name) != thread.queue_name:
            return
        weight = self.weights.get(thread.queue_name)
        if weight is None:
            return
        unit = self.unit or max(1, self.worker_threads // min(self.weights.values()))
        prefetch = max(1, weight * unit)
        set_prefetch(thread, prefetch)
        self.logger.debug("Queue %r prefetches %d messages.", thread.queue_name, prefetch)
