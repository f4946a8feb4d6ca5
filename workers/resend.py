"""Sending again a message a worker holds (a retry, a rerun): it must reach the broker or the outbox, never vanish.

A worker acknowledges the message it ran once the after-hooks are done, whatever they did. A
hook that sends a retry while the broker is away (Redis restarting, out of memory) would see
the send fail, and the acknowledgement that follows (which Dramatiq repeats until the broker
answers) would delete the only copy of the job. So the retry goes to the broker, or else to
the outbox in the database, which housekeeping relays; and if neither answers, the worker
thread waits for one of them rather than let the acknowledgement go first.
"""

from __future__ import annotations

import logging
import time

import dramatiq
from django.db import connections, transaction

logger = logging.getLogger(__name__)

#: Longest wait between two tries while neither the broker nor the database answers, in seconds.
MAX_WAIT = 5.0


def resend(broker: dramatiq.Broker, message: dramatiq.Message, *, delay: int | None) -> None:
    """Send ``message`` again after ``delay`` milliseconds, through the broker or else the outbox.

    Returns only once one of them holds it. Raises nothing the broker or the database raise:
    they are tried again, every second or so, for as long as it takes.
    """
    from workers.outbox import outbox_add  # the outbox imports the bulk sender, which imports middleware

    wait = 0.5
    while True:
        try:
            broker.enqueue(message, delay=delay)
            return
        except Exception as send_error:
            try:
                with transaction.atomic():
                    outbox_add([message], delay=delay, broker=broker)
            except Exception as store_error:
                logger.warning(
                    "Message %s of %s can reach neither the broker (%s) nor the outbox (%s); trying again in %.1f s.",
                    message.message_id,
                    message.actor_name,
                    type(send_error).__name__,
                    type(store_error).__name__,
                    wait,
                )
                connections.close_all()  # a dropped connection is opened afresh on the next try
                time.sleep(wait)
                wait = min(MAX_WAIT, wait * 2)
                continue
            logger.warning(
                "Message %s of %s is kept in the outbox until the broker answers (%s).",
                message.message_id,
                message.actor_name,
                type(send_error).__name__,
            )
            return
