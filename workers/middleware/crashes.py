"""Crash guard: a job whose runs keep killing their worker goes to the dead letters, not round for ever."""

from __future__ import annotations

import dramatiq
from dramatiq.errors import ActorNotFound
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from workers.platform_redis import platform_client, platform_namespace

# Count a start and keep the counter for ``ttl`` more milliseconds, in one round trip.
START = "local n = redis.call('incr', KEYS[1]) redis.call('pexpire', KEYS[1], ARGV[1]) return n"


class CrashLoop(Exception):
    """The job started ``max_crashes`` times and its worker process died every time."""


class CrashGuard(Middleware):
    """Stop a message that kills its worker process from being delivered for ever.

    A job that takes its worker down (the OOM killer, a segfault in a C extension, SIGKILL)
    never reaches ``after_process_message``, so Retries never counts it, and the broker hands
    the message to the next worker, which dies too. Here each start increments a counter in
    Redis keyed by the message id, and every end (success, failure, skip) deletes it; a retry
    is a new run with a fresh count. A start that finds the counter already at ``max_crashes``
    means that many runs died unfinished: the message is failed into the dead letters with the
    reason "crashed" and does not run again.

    Runs on Redis and on RabbitMQ (counters in ``settings.REDIS_URL``); on the StubBroker,
    where nothing crashes underneath a job, it does nothing.

    Per-actor option, overridden by the message option of the same name:
      max_crashes(int): Runs that may die unfinished before the job is dead-lettered.

    Parameters:
      max_crashes(int): The default. Defaults to 3.
      ttl(int): How long a counter outlives the run that set it, in milliseconds. Defaults to
        seven days, longer than any job waits for a worker.
    """

    def __init__(self, *, max_crashes: int = 3, ttl: int = 7 * 86_400_000) -> None:
        self.logger = get_logger(__name__, type(self))
        self.max_crashes = max_crashes
        self.ttl = ttl
        self._start = None

    @property
    def actor_options(self) -> set[str]:
        return {"max_crashes"}

    def before_process_message(self, broker: dramatiq.Broker, message) -> None:
        """Count the start; past ``max_crashes`` unfinished runs, dead-letter the message instead."""
        client = platform_client(broker)
        if client is None:
            return
        if self._start is None:
            self._start = client.register_script(START)
        starts = int(self._start(keys=[self._key(broker, message)], args=[self.ttl], client=client))
        limit = self._limit(broker, message)
        if starts <= limit:
            return
        error = CrashLoop(f"started {limit} times and its worker process died each time")
        self.logger.error("Dead-lettering message %s of %s: %s.", message.message_id, message.actor_name, error)
        message.fail()
        from workers import dead_letters  # models load after the broker is built

        dead_letters.record(message, error, "crashed")
        raise SkipMessage(str(error))

    def after_process_message(self, broker: dramatiq.Broker, message, *, result=None, exception=None) -> None:
        """The run ended: forget its start."""
        self._forget(broker, message)

    def after_skip_message(self, broker: dramatiq.Broker, message) -> None:
        """A skipped run ended too."""
        self._forget(broker, message)

    def _forget(self, broker: dramatiq.Broker, message) -> None:
        client = platform_client(broker)
        if client is not None:
            client.delete(self._key(broker, message))

    def _key(self, broker: dramatiq.Broker, message) -> str:
        return f"{platform_namespace(broker)}:backoffice:starts:{message.message_id}"

    def _limit(self, broker: dramatiq.Broker, message) -> int:
        if "max_crashes" in message.options:
            return int(message.options["max_crashes"])
        try:
            return int(broker.get_actor(message.actor_name).options.get("max_crashes", self.max_crashes))
        except ActorNotFound:
            return self.max_crashes
