"""Batch progress: a job that belongs to a batch reports its final outcome to it."""

from __future__ import annotations

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware


class BatchProgress(Middleware):
    """Count each batch job once when it ends: on success, or on failure for good.

    A failure that will be retried is not an end. Must come before Retries in the middleware
    list, so that its after-hooks run after Retries has decided whether the job failed for good.
    The message option ``batch_id`` (set by ``workers.batches.batch_add``) marks a batch job.
    """

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Report success, or failure once Retries has failed the message for good."""
        if exception is None or message.failed:
            self._record(message, succeeded=exception is None)

    def after_skip_message(self, broker, message) -> None:
        """A skipped message that was failed (malformed arguments) ends as a failure."""
        if message.failed:
            self._record(message, succeeded=False)

    def _record(self, message, *, succeeded: bool) -> None:
        batch_id = message.options.get("batch_id")
        if batch_id is None:
            return
        from workers.batches import batch_record  # models load after the broker is built

        if not batch_record(batch_id=batch_id, message_id=message.message_id, succeeded=succeeded):
            self.logger.info("Batch job %s of batch %s was counted already.", message.message_id, batch_id)
