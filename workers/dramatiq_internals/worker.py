"""The worker's private parts: its consumer threads, its log texts, and its message loop replayed in-process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage
from dramatiq.worker import ConsumerThread

#: dramatiq.worker.WorkerThread's line for a job that raised (its argument renders the whole message).
FAILED_TEXT = "Failed to process message %s with unhandled exception."


def in_consumer_thread() -> bool:
    """True in a worker's consumer thread (which moves delayed messages and rejects unknown actors)."""
    return isinstance(threading.current_thread(), ConsumerThread)


def set_prefetch(thread: ConsumerThread, prefetch: int) -> None:
    """How many unacknowledged messages the consumer thread may hold; read when it next fetches."""
    thread.prefetch = prefetch


def delayed_redis_ids(thread: threading.Thread, id_option: str) -> set[str]:
    """The Redis ids of the delayed messages a consumer thread holds in memory until their eta."""
    waiting = list(thread.delay_queue.queue) if isinstance(thread, ConsumerThread) else []
    return {item.message.options.get(id_option) for item in waiting}


def process_in_process(
    broker,
    message: MessageProxy,
    *,
    emit_before: Callable[..., None],
    emit_after: Callable[..., None],
) -> None:
    """Run one message the way ``dramatiq.worker.WorkerThread.process_message`` does, minus the threads."""
    try:
        emit_before("process_message", message)
        if not message.failed:
            actor = broker.get_actor(message.actor_name)
            result = actor(*message.args, **message.kwargs)
            emit_after("process_message", message, result=result)
        else:
            emit_after("process_message", message, result=None)
    except SkipMessage:
        emit_after("skip_message", message)
    except Exception as exception:
        message.stuff_exception(exception)
        emit_after("process_message", message, exception=exception)
