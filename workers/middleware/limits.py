"""Flow control: per-key concurrency and rate limits that hold across every worker and host.

An actor opts in with ``concurrency=(key, n)`` and ``rate=(key, "100/m")`` (or a list of such
pairs), where ``key`` is a function of the job's arguments or a string for one limit over all
its jobs (a string names one limit for every actor that names it)::

    @dramatiq.actor(queue_name="urgent", rate=("gateway", "20/s"))
    def process_payment(payment_id): ...

    @dramatiq.actor(queue_name="low", concurrency=(import_uploader, 1))
    def import_data(import_id): ...

When a worker thread picks a limited job, one Redis script (``workers.flow_limits``) takes
every lease and start the job needs, or none. A job over a limit is not run, spends no retry
and holds no worker thread while it waits. On the Redis broker a job over concurrency limits
only is parked on its key and woken as soon as a slot frees (``workers.flow_parking``); any
other is sent again with a computed delay (through ``workers.resend``, which never loses it):
until the rate window opens or a slot should free, behind the key's other waiting jobs.

Fair shares between keys within a queue: on the Redis broker each job of an actor limited by
a key function is sent to its key's lane, and consumers take the lanes round-robin (turn about
with the jobs sent without a lane), so a key with 10,000 jobs waiting gives one for each one of
a key with ten (``workers.dramatiq_internals.lanes``). A key's jobs beyond its limit leave the
line at once and come back spaced by what the key's slots serve. On RabbitMQ a queue stays one
line: a key's excess steps aside, but a key with few jobs waits behind the ones sent before it.

A running job's leases are renewed by a thread of this middleware every ``renew_interval``
seconds and expire ``lease_ttl`` after the last renewal: a worker SIGKILLed while holding
slots frees them within that time (by default the Redis broker's heartbeat timeout).

The message option ``flow_deferrals`` counts a job's deferrals (``retries`` is left alone),
and ``flow_keys`` keeps the key values computed on the first delivery, so a key function runs
once per job. On the StubBroker nothing is limited.

Per-actor options:
  concurrency(tuple | list): ``(key, n)``: at most ``n`` jobs per key value run at once.
  rate(tuple | list): ``(key, "n/period")``: at most ``n`` starts per key value within any
    period (``s``, ``m``, ``h``, ``d``, or ``"10/5m"``).

Parameters:
  lease_ttl(int): How long a lease outlives its last renewal, in milliseconds. Defaults to the
    broker's heartbeat timeout, or 15 seconds.
  renew_interval(float): Seconds between two renewals of the running jobs' leases.
"""

from __future__ import annotations

import threading

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from workers.dramatiq_internals.lanes import LANE_OPTION
from workers.flow_limit_options import CONCURRENCY, RATE, Limit, parse_limits
from workers.flow_limits import IDLE_TTL_MS, FlowStore
from workers.flow_parking import Sweeps, park_message
from workers.platform_redis import platform_client, platform_namespace
from workers.resend import resend
from workers.uniqueness import KEY_OPTION as UNIQUE_KEY_OPTION

DEFERRALS_OPTION = "flow_deferrals"
KEYS_OPTION = "flow_keys"


class LimitOptionError(MiddlewareError, ValueError):
    """An actor's ``concurrency`` or ``rate`` option is not a (key, limit) pair."""


class FlowControl(Middleware):
    """Run a limited job only within its limits; defer it, without spending a retry, when over them."""

    def __init__(self, *, lease_ttl: int | None = None, renew_interval: float = 2.0) -> None:
        self.logger = get_logger(__name__, type(self))
        self.lease_ttl = lease_ttl
        self.renew_interval = renew_interval
        self.limits: dict[str, list[Limit]] = {}
        self._store: FlowStore | None = None
        self._store_mutex = threading.Lock()
        #: Message id -> (lease member, the concurrency keys it holds), for the jobs running here.
        self.held: dict[str, tuple[str, list[str]]] = {}
        #: Ids of the messages this process is deferring (the job history does not count them as runs).
        self.deferring: set[str] = set()
        self.sweeps = Sweeps()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def actor_options(self) -> set[str]:
        return {CONCURRENCY, RATE}

    def before_declare_actor(self, broker, actor) -> None:
        """Refuse a malformed limit at import time, rather than run the actor unlimited."""
        limits = []
        for kind in (CONCURRENCY, RATE):
            if actor.options.get(kind) is not None:
                try:
                    limits += parse_limits(kind, actor.options[kind])
                except ValueError as error:
                    raise LimitOptionError(f"actor {actor.actor_name}: {error}") from None
        if limits:
            self.limits[actor.actor_name] = limits

    def store(self, broker) -> FlowStore | None:
        with self._store_mutex:
            if self._store is None:
                client = platform_client(broker)
                if client is not None:
                    # Jobs are parked where the broker's own sends can reach them: on the Redis broker.
                    length = getattr(broker, "doorbell_length", 0)
                    namespace = platform_namespace(broker) if length else ""
                    prefix = f"{platform_namespace(broker)}:backoffice:flow"
                    self._store = FlowStore(client, prefix=prefix, namespace=namespace, doorbell_length=length)
            return self._store

    def ttl(self, broker) -> int:
        return int(self.lease_ttl or getattr(broker, "heartbeat_timeout", None) or 15_000)

    def after_worker_boot(self, broker, worker) -> None:
        if self.store(broker) is None:
            return
        self.stopped.clear()
        self.thread = threading.Thread(target=self._renewing, args=(broker,), name="flow-leases", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self.stopped.set()

    def before_enqueue(self, broker, message, delay) -> None:
        """Compute the job's key values once, on its first send, and put it on its key's lane
        (``workers.dramatiq_internals.lanes``), so that keys are served round-robin."""
        limits = self.limits.get(message.actor_name)
        if not limits or self.store(broker) is None:
            return
        try:
            keys = self._keys(limits, message)
        except Exception:  # a key the sender cannot compute is computed by the worker; the job goes on no lane
            self.logger.warning("Could not compute the flow keys of %s %s.", message.actor_name, message.message_id)
            return
        lane = next((key for limit, key in zip(limits, keys, strict=True) if not isinstance(limit.key, str)), None)
        if lane is not None:
            message.options[LANE_OPTION] = f"{message.actor_name}:{lane}"

    def before_process_message(self, broker, message) -> None:
        """Take the job's leases and starts; or send it back for when its limits should let it run."""
        limits = self._actor_limits(broker, message.actor_name)
        store = self.store(broker) if limits else None
        if store is None:
            return
        keys = self._keys(limits, message)
        bases = [store.base_key(limit, message.actor_name, key) for limit, key in zip(limits, keys, strict=True)]
        member = f"{message.message_id}@{getattr(broker, 'broker_id', '')}"
        deferrals = int(message.options.get(DEFERRALS_OPTION, 0)) + 1
        # A job carrying a unique lock is deferred through the delay queue, where the lock's refresh finds it.
        can_park = store.parked is not None and UNIQUE_KEY_OPTION not in message.options
        for attempt in range(3):
            wait, park = store.acquire(
                member,
                list(zip(limits, keys, bases, strict=True)),
                ttl_ms=self.ttl(broker),
                actor_name=message.actor_name,
                can_park=can_park and attempt < 2,
            )
            if wait == 0:
                held = [base for limit, base in zip(limits, bases, strict=True) if limit.kind == CONCURRENCY]
                if held:
                    self.held[message.message_id] = (member, held)
                return
            if not park:
                break
            if self._park(broker, store, message, limits[park - 1].n, bases[park - 1], deferrals, keys):
                self.deferring.add(message.message_id)
                raise SkipMessage(f"{message.actor_name}: over its concurrency limit, parked until a slot frees")
        self.logger.info(
            "Deferred message %s of %s by %d ms (deferral %d): over its limit for %s.",
            message.message_id,
            message.actor_name,
            wait,
            deferrals,
            ", ".join(keys),
        )
        self.deferring.add(message.message_id)
        resend(broker, message.copy(options={DEFERRALS_OPTION: deferrals, KEYS_OPTION: keys}), delay=wait)
        raise SkipMessage(f"{message.actor_name}: over its flow limit, back in {wait} ms")

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        self._release(broker, message)

    def after_skip_message(self, broker, message) -> None:
        """A deferred job is done with here; one a later middleware skipped gives back its leases."""
        self.deferring.discard(message.message_id)
        self._release(broker, message)

    def _park(self, broker, store: FlowStore, message, n: int, base: str, deferrals: int, keys: list[str]) -> bool:
        """Park the job on the full key ``base`` (``workers.flow_parking``); False if a slot was free after all."""
        options = {DEFERRALS_OPTION: deferrals, KEYS_OPTION: keys}
        due = park_message(broker, store.parked, message, n=n, base=base, options=options, idle_ms=IDLE_TTL_MS)
        if due is None:
            return False
        self.logger.info(
            "Deferred message %s of %s until a slot frees (deferral %d): over its concurrency limit for %s.",
            message.message_id,
            message.actor_name,
            deferrals,
            ", ".join(keys),
        )
        self.sweeps.note(base, due)
        return True

    def is_deferring(self, message) -> bool:
        return message.message_id in self.deferring

    def _release(self, broker, message) -> None:
        held = self.held.pop(message.message_id, None)
        if held is not None:
            member, bases = held
            self.store(broker).release(member, bases)

    def _actor_limits(self, broker, actor_name: str) -> list[Limit]:
        return self.limits.get(actor_name, [])

    def _keys(self, limits: list[Limit], message) -> list[str]:
        """The job's key values, computed on first use and kept in its message."""
        keys = message.options.get(KEYS_OPTION)
        if not isinstance(keys, list) or len(keys) != len(limits):
            keys = [self._key_text(limit, message) for limit in limits]
            message.options[KEYS_OPTION] = keys
        return keys

    @staticmethod
    def _key_text(limit: Limit, message) -> str:
        if isinstance(limit.key, str):
            return limit.key
        return str(limit.key(*message.args, **message.kwargs))

    def _renewing(self, broker) -> None:
        interval = min(self.renew_interval, self.ttl(broker) / 3000)
        while not self.stopped.wait(interval):
            self.sweeps.run(self.store(broker).parked, self.logger)
            held = dict(self.held.values())
            if not held:
                continue
            try:
                self.store(broker).renew(held, ttl_ms=self.ttl(broker))
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next round tries again
                self.logger.warning("Could not renew %d job(s)' flow leases.", len(held), exc_info=True)


def flow_control(broker) -> FlowControl | None:
    """The broker's FlowControl middleware, if it has one."""
    return next((middleware for middleware in broker.middleware if isinstance(middleware, FlowControl)), None)
