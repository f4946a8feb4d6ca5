"""Batch progress: a job that belongs to a batch reports its final outcome to it."""

from __future__ import annotations

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.resend import resend


class BatchProgress(Middleware):
    """Count each batch job once when it ends: on success, or on failure for good.

    A failure that will be retried is not an end. Must come before Retries in the middleware
    list, so that its after-hooks run after Retries has decided whether the job failed for good.
    The message option ``batch_id`` (set by ``workers.batches.batch_add``) marks a batch job.

    If the end cannot be written (the database is away), nothing is lost: a job that failed
    for good has its dead letter, from which ``batches_reconcile`` counts it, and a job that
    succeeded is run again after ``rerun_delay`` (jobs are safe to run twice), to be counted
    then.

    Parameters:
      rerun_delay(int): How long before a succeeded job whose end could not be written runs
        again, in milliseconds. Defaults to 10 seconds.
    """

    def __init__(self, *, rerun_delay: int = 10_000) -> None:
        self.logger = get_logger(__name__, type(self))
        self.rerun_delay = rerun_delay

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Report success, or failure once Retries has failed the message for good."""
        if exception is None or message.failed:
            self._record(broker, message, succeeded=exception is None)

    def after_skip_message(self, broker, message) -> None:
        """A skipped message that was failed (malformed arguments) ends as a failure."""
        if message.failed:
            self._record(broker, message, succeeded=False)

    def _record(self, broker, message, *, succeeded: bool) -> None:
        batch_id = message.options.get("batch_id")
        if batch_id is None:
            return
        from workers.batches import batch_record  # models load after the broker is built

        try:
            counted = batch_record(batch_id=batch_id, message_id=message.message_id, succeeded=succeeded)
        except Exception:
            if not succeeded:
                self.logger.error(
                    "Could not count the failure of batch job %s of batch %s; its dead letter will.",
                    message.message_id,
                    batch_id,
                    exc_info=True,
                )
                return
            self.logger.error(
                "Could not count batch job %s of batch %s; it runs again in %d ms.",
                message.message_id,
                batch_id,
                self.rerun_delay,
                exc_info=True,
            )
            resend(broker, message, delay=self.rerun_delay)
            return
        if not counted:
            self.logger.info("Batch job %s of batch %s was counted already.", message.message_id, batch_id)
