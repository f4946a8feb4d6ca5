"""The worker's private parts: its consumer threads, its log texts, and its message loop replayed in-process."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable

from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
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


def next_delayed_eta(thread: threading.Thread) -> int | None:
    """When the first delayed message a consumer thread holds in memory falls due (ms since the epoch), or None."""
    if not isinstance(thread, ConsumerThread):
        return None
    with thread.delay_queue.mutex:
        waiting = thread.delay_queue.queue  # a heap: its first item falls due first
        return waiting[0].priority if waiting else None


def consumed_queues(worker) -> list[str]:
    """The queues a worker consumes (those it was started with, else all its consumer threads')."""
    return sorted(name for name in worker.consumers if q_name(name) == name)


def waiting_messages(worker) -> list[MessageProxy]:
    """The messages a worker took from the broker and holds in its work queue, not yet started."""
    with worker.work_queue.mutex:
        items = list(worker.work_queue.queue)
    return [item.message for item in sorted(items)]


def withdraw_waiting(thread: threading.Thread, queue_name: str) -> list[MessageProxy]:
    """Take out of the worker's work queue the messages of ``queue_name`` no worker thread has started.

    The consumer thread ``thread`` shares the work queue with every other consumer of the worker;
    messages of other queues stay where they were. The caller owns what is returned: it must put
    those messages back on the broker.
    """
    if not isinstance(thread, ConsumerThread):
        return []
    work_queue = thread.work_queue
    with work_queue.mutex:
        kept = [item for item in work_queue.queue if item.message.queue_name != queue_name]
        taken = [item.message for item in work_queue.queue if item.message.queue_name == queue_name]
        if taken:
            work_queue.queue[:] = kept
            heapq.heapify(work_queue.queue)
            # The worker threads mark each item they got as done; these they will never get.
            work_queue.unfinished_tasks -= len(taken)
            if work_queue.unfinished_tasks == 0:
                work_queue.all_tasks_done.notify_all()
    return taken


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
