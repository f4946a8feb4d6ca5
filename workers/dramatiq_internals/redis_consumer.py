"""The guarded Redis consumer: each fetched body admitted on its own, orphans taken back, a paused queue's
messages put back."""

from __future__ import annotations

import threading
import time

import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.logging import get_logger

from workers.dramatiq_internals.admission import PAUSED_POLL, check_queue, is_paused, refuse
from workers.dramatiq_internals.keys import REDIS_ID_OPTION
from workers.dramatiq_internals.worker import delayed_redis_ids, next_delayed_eta, withdraw_waiting
from workers.signing import MalformedMessage, unwrap

#: What redis-py raises when Redis cannot be reached or did not answer in time.
CONNECTION_LOST = (redis.ConnectionError, redis.TimeoutError)


class GuardedRedisConsumer(_RedisConsumer):
    def __init__(self, broker, queue_name, prefetch, timeout, *, outstanding=None, restarted=False) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.logger = get_logger(__name__, type(self))
        self.outstanding: set[str] = outstanding if outstanding is not None else set()
        self.orphans_pending = restarted
        self.standing_down = False
        #: Set by the worker threads once they have finished half of what this consumer handed them.
        self.drained = threading.Event()

    # A message stays outstanding until Redis has its ack: one whose ack failed (Redis away) is
    # still in the ack set, and must not be taken back as an orphan and run a second time while
    # the consumer thread retries the ack.
    def ack(self, message):
        try:
            super().ack(message)
        except redis.TimeoutError as error:  # Dramatiq's retries the ack on a connection error only
            raise ConnectionClosed(error) from None
        finally:
            self._note_done()
        self.outstanding.discard(message.options.get(REDIS_ID_OPTION))

    def nack(self, message):
        try:
            super().nack(message)
        except redis.TimeoutError as error:
            raise ConnectionClosed(error) from None
        finally:
            self._note_done()
        self.outstanding.discard(message.options.get(REDIS_ID_OPTION))

    def _note_done(self) -> None:
        if len(self.queued_message_ids) <= self.prefetch // 2:
            self.drained.set()

    def _wait_while_full(self) -> bool:
        """With its prefetch handed out, wait for the worker threads to finish half of it; False if not full.

        Dramatiq backs off as if the queue were empty, longer at each look, so worker threads that
        finish their jobs sooner than its back-off find nothing to run; an ack wakes this instead.
        Waits at most the consumer's timeout, as Dramatiq's back-off does, so the thread still
        moves due delayed messages and notices a stopping worker.
        """
        if q_name(self.queue_name) != self.queue_name:
            return False  # a delay queue holds its messages until due: it keeps the back-off bounded by them
        self.drained.clear()
        if self.outstanding_message_count < self.prefetch:
            return False
        self.drained.wait(self.timeout / 1000)
        return True

    def requeue(self, messages):
        # Called as the consumer closes, often because Redis is away: what cannot go back now
        # stays in the ack set, and the next consumer of this queue takes it back as an orphan.
        messages = list(messages)
        try:
            super().requeue(messages)
        except CONNECTION_LOST as error:
            raise ConnectionClosed(error) from None
        if messages:
            self.broker.ring(self.queue_name)  # for another worker's idle consumer

    def _take_back_orphans(self) -> None:
        # Still held: messages handed to the worker threads (they will be acknowledged through
        # this consumer) and, of a delay queue, those still in the consumer thread's memory.
        keep = set(self.outstanding)
        if q_name(self.queue_name) != self.queue_name:
            keep &= delayed_redis_ids(threading.current_thread(), REDIS_ID_OPTION)
        moved = self.broker.requeue_orphans(self.queue_name, keep)
        self.outstanding.intersection_update(keep)
        self.orphans_pending = False
        if moved:
            self.logger.warning(
                "Put back %d message(s) of queue %r dropped with a lost connection.", moved, self.queue_name
            )

    def _stand_down(self) -> None:
        # A paused queue's messages this worker took and has not started go back to the head of
        # the queue: those waiting for a worker thread, and those fetched but not handed out yet.
        withdrawn = withdraw_waiting(threading.current_thread(), self.queue_name)
        redis_ids = []
        for message in withdrawn:
            self.queued_message_ids.discard(message.message_id)
            self.outstanding.discard(message.options.get(REDIS_ID_OPTION))
            redis_ids.append(message.options.get(REDIS_ID_OPTION))
        unread = []
        for data in self.message_cache:
            fields = unwrap(data) if data is not None else None
            options = fields.get("options") if isinstance(fields, dict) else None
            redis_id = options.get(REDIS_ID_OPTION) if isinstance(options, dict) else None
            if isinstance(redis_id, str):
                redis_ids.append(redis_id)
            else:
                unread.append(data)  # refused once the queue is resumed
        self.message_cache = unread
        moved = self.broker.requeue_held(self.queue_name, [redis_id for redis_id in redis_ids if redis_id])
        if moved:
            self.logger.info("Queue %r is paused: put back %d message(s) not started.", self.queue_name, moved)

    def __next__(self):
        # Dramatiq's loop (pop from the prefetched cache, else fetch up to the prefetch, else
        # back off), with each body decoded by ``_admit``, which never raises.
        try:
            if self.orphans_pending:
                self._take_back_orphans()
            if is_paused(self.broker, self.queue_name):
                if not self.standing_down:
                    self.standing_down = True
                    self.logger.info("Queue %r is paused: taking none of its messages.", self.queue_name)
                self._stand_down()
                time.sleep(PAUSED_POLL)
                return None
            if self.standing_down:
                self.standing_down = False
                self.logger.info("Queue %r is resumed.", self.queue_name)
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        # The id was fetched but its body is gone from the hash; nothing to run.
                        self.logger.warning("Found no body for a message fetched from queue %r.", self.queue_name)
                        continue
                    self.misses = 0
                    message = self._admit(data)
                    if message is None:
                        continue
                    self.queued_message_ids.add(message.message_id)
                    self.outstanding.add(message.options[REDIS_ID_OPTION])
                    return MessageProxy(message)

                if self._wait_while_full():
                    return None
                messages = []
                if self.outstanding_message_count < self.prefetch:
                    wanted = self.prefetch - self.outstanding_message_count
                    if q_name(self.queue_name) == self.queue_name:
                        self.message_cache = messages = self.broker.fetch(self.queue_name, wanted)
                    else:  # a delay queue has no lanes
                        self.message_cache = messages = self.broker.do_fetch(self.queue_name, wanted)
                if not messages:
                    # A send rings the doorbell: the wait is for a ring, not a back-off that polls.
                    backoff_ms = self.broker.idle_wait_ms
                    # A delay queue's consumer thread moves a delayed message when it falls due only
                    # between two fetches: it sleeps no longer than that, so a deferred job is not late.
                    eta = next_delayed_eta(threading.current_thread())
                    if eta is not None:
                        backoff_ms = max(1, min(backoff_ms, eta - current_millis()))
                    self.broker.wait_for_ring(self.queue_name, backoff_ms)
                    return None
        except CONNECTION_LOST as error:
            raise ConnectionClosed(error) from None

    def _admit(self, data: bytes) -> Message | None:
        """The message in ``data``; or None once a body that cannot run has been dead-lettered."""
        try:
            message = Message.decode(data)
            # Without its Redis id a message could never be acknowledged: it would be held for ever.
            if not isinstance(message.options.get(REDIS_ID_OPTION), str):
                raise MalformedMessage("the message has no redis_message_id option")
            check_queue(message, self.queue_name)
            return message
        except Exception as error:
            redis_message_id = self.broker.find_fetched(self.queue_name, data)
            refuse(data, error, queue_name=q_name(self.queue_name), message_id=redis_message_id, logger=self.logger)
            if redis_message_id is not None:
                # Out of the ack set and the queue's hash, into the broker's dead-letter queue.
                self.broker.do_nack(self.queue_name, redis_message_id)
            return None
