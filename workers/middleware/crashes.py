"""Crash guard: a job whose runs keep killing their worker goes to the dead letters, not round for ever."""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from workers.middleware.options import option
from workers.platform_redis import platform_client, platform_namespace
from workers.resend import resend

# ARGV[1]: the counter's life in ms; ARGV[2]: "first" to count a start only if none is counted
# yet, "again" to count one more. Returns the starts counted before this call.
START = """
local before = tonumber(redis.call('get', KEYS[1]) or '0')
if before == 0 or ARGV[2] == 'again' then
  redis.call('set', KEYS[1], before + 1, 'PX', ARGV[1])
end
return before
"""


class CrashLoop(Exception):
    """The job started ``max_crashes`` times and its worker process died every time."""


class Isolation:
    """At most one suspect runs in a process, and only while no other job does.

    A job that dies with its worker process may be the one that killed it or a bystander that
    ran beside it. Run alone, a suspect either ends (it was a bystander) or dies by itself, so
    only the job that kills its worker keeps counting crashes.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.running = 0
        self.suspect = False

    def enter(self) -> None:
        with self.condition:
            self.condition.wait_for(lambda: not self.suspect)
            self.running += 1

    def leave(self) -> None:
        with self.condition:
            self.running -= 1
            self.condition.notify_all()

    def enter_alone(self, timeout: float) -> bool:
        """Wait for the others to end; False if they had not within ``timeout`` seconds."""
        with self.condition:
            if not self.condition.wait_for(lambda: not self.suspect, timeout):
                return False
            self.suspect = True
            if self.condition.wait_for(lambda: self.running == 0, timeout):
                return True
            self.suspect = False
            self.condition.notify_all()
            return False

    def leave_alone(self) -> None:
        with self.condition:
            self.suspect = False
            self.condition.notify_all()


class CrashGuard(Middleware):
    """Stop a message that kills its worker process from being delivered for ever.

    A job that takes its worker down (the OOM killer, a segfault in a C extension, SIGKILL)
    never reaches ``after_process_message``, so Retries never counts it, and the broker hands
    the message to the next worker, which dies too. Here each start is counted in Redis under
    the message id, and every end (success, failure, skip) deletes the count; a retry is a new
    run with a fresh count. A message that arrives with a count already died at least once: it
    is a suspect, and runs alone in its process (``Isolation``), so that the jobs beside it when
    it kills its worker again do not count crashes they did not cause. A suspect whose count
    has reached ``max_crashes`` is failed into the dead letters with the reason "crashed"
    instead, and keeps its count, so that a redelivery of it is refused again.

    Runs on Redis and on RabbitMQ (counts in ``settings.REDIS_URL``); on the StubBroker, where
    nothing crashes underneath a job, it does nothing.

    Per-actor option, overridden by the message option of the same name:
      max_crashes(int): Runs that may die unfinished before the job is dead-lettered.

    Parameters:
      max_crashes(int): The default. Defaults to 3.
      ttl(int): How long a count outlives the run that set it, in milliseconds. Defaults to
        seven days, longer than any job waits for a worker.
      alone_timeout(float): How long a suspect waits for the jobs running beside it to end, in
        seconds; past it the suspect goes back to the queue for ``alone_retry`` milliseconds.
    """

    def __init__(
        self, *, max_crashes: int = 3, ttl: int = 7 * 86_400_000, alone_timeout: float = 10.0, alone_retry: int = 5000
    ) -> None:
        self.logger = get_logger(__name__, type(self))
        self.max_crashes = max_crashes
        self.ttl = ttl
        self.alone_timeout = alone_timeout
        self.alone_retry = alone_retry
        self.isolation = Isolation()
        #: Per worker thread: how the running job entered (None, "shared" or "alone"), and
        #: whether its count must outlive its end (dead-lettered, sent back, or never counted).
        self.state = threading.local()
        self._start = None

    @property
    def actor_options(self) -> set[str]:
        return {"max_crashes"}

    def before_process_message(self, broker: dramatiq.Broker, message) -> None:
        """Count the start, alone if the message is a suspect; past ``max_crashes``, dead-letter it instead."""
        client = platform_client(broker)
        self.state.mode, self.state.keep_count = None, False
        if client is None:
            return
        self.isolation.enter()
        self.state.mode = "shared"
        try:
            before = self._count(client, broker, message, "first")
        except redis.RedisError as error:  # no count to keep: the job runs unguarded rather than not at all
            self.logger.warning("Message %s runs uncounted: %s", message.message_id, error)
            self.state.keep_count = True
            return
        if before == 0:
            return
        # A suspect: it counts its start only once it runs alone.
        self.isolation.leave()
        self.state.mode, self.state.keep_count = None, True
        if not self.isolation.enter_alone(self.alone_timeout):
            self.logger.info("Suspect %s of %s waits to run alone.", message.message_id, message.actor_name)
            resend(broker, message.copy(), delay=self.alone_retry)
            raise SkipMessage("a suspect of crashing its worker waits to run alone")
        self.state.mode = "alone"
        starts = self._count(client, broker, message, "again") + 1
        limit = self._limit(broker, message)
        if starts <= limit:
            self.state.keep_count = False
            self.logger.warning(
                "Running message %s of %s alone: its last %d run(s) died with their worker.",
                message.message_id,
                message.actor_name,
                starts - 1,
            )
            return
        error = CrashLoop(f"started {limit} times and its worker process died each time")
        self.logger.error("Dead-lettering message %s of %s: %s.", message.message_id, message.actor_name, error)
        message.fail()
        from workers import dead_letters  # models load after the broker is built

        dead_letters.record(message, error, "crashed")
        raise SkipMessage(str(error))

    def after_process_message(self, broker: dramatiq.Broker, message, *, result=None, exception=None) -> None:
        """The run ended: forget its start (a success's with this thread's next start, in the same round trip)."""
        self._end(broker, message, later=exception is None)

    def after_skip_message(self, broker: dramatiq.Broker, message) -> None:
        """A skipped run ended too; one the guard dead-lettered or sent back keeps its count."""
        self._end(broker, message, later=False)

    def _end(self, broker: dramatiq.Broker, message, *, later: bool) -> None:
        mode, keep_count = getattr(self.state, "mode", None), getattr(self.state, "keep_count", True)
        self.state.mode, self.state.keep_count = None, True
        if mode == "alone":
            self.isolation.leave_alone()
        elif mode == "shared":
            self.isolation.leave()
        if mode is None or keep_count:
            return
        if later:
            # A message that succeeded never comes back under its id, so its count may wait.
            self.state.forget = self._key(broker, message)
        else:
            # One that failed comes back as its retry, which must not find the count of this run.
            platform_client(broker).delete(self._key(broker, message))

    def _count(self, client, broker: dramatiq.Broker, message, how: str) -> int:
        if self._start is None:
            self._start = client.register_script(START)
        forget, self.state.forget = getattr(self.state, "forget", None), None
        if forget is None:
            return int(self._start(keys=[self._key(broker, message)], args=[self.ttl, how], client=client))
        # EVALSHA by hand: a Script in a pipeline asks Redis whether it knows the script every time.
        pipe = client.pipeline(transaction=False)
        pipe.delete(forget)
        pipe.evalsha(self._start.sha, 1, self._key(broker, message), self.ttl, how)
        try:
            return int(pipe.execute()[-1])
        except redis.exceptions.NoScriptError:  # Redis restarted empty: the plain call loads it again
            return int(self._start(keys=[self._key(broker, message)], args=[self.ttl, how], client=client))

    def _key(self, broker: dramatiq.Broker, message) -> str:
        return f"{platform_namespace(broker)}:backoffice:starts:{message.message_id}"

    def _limit(self, broker: dramatiq.Broker, message) -> int:
        return int(option(broker, message, "max_crashes", self.max_crashes))
