"""The seeded plan of one run: when each piece of the workload is sent and when each fault strikes.

Everything random in a run comes from one ``random.Random(seed)`` here, so a seed replays the
same workload and the same faults at the same offsets (what the system does in between, the
operating system's scheduling, is not replayed, only what the campaign does to it).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

#: Faults that need nothing but the processes and Redis; ``db_drop`` needs PostgreSQL.
FAULTS = ("worker_kill", "worker_term", "redis_kill", "broker_refuse", "scheduler_kill")
#: How often each kind is drawn for the faults beyond one of each (worker deaths are the most common).
EXTRA_WEIGHTS = {"worker_kill": 3, "worker_term": 1, "redis_kill": 1, "broker_refuse": 1, "scheduler_kill": 1}

ORDERS = 160
ORDER_WAVES = 4
PROBE_ROUNDS = 8
PROBES_PER_ROUND = 25
ADJUSTMENT_ROUNDS = 4
ADJUSTMENTS_PER_ROUND = 10
POISON_JOBS = 2
PROBE_BATCHES = 2
PROBES_PER_BATCH = 20
IMPORT_ROWS = 300
PRICE_ITEMS = 200
BACKFILL_DAYS = 5

#: Payment tokens of the orders and how often each is drawn (see orders/gateway.py).
TOKENS = {
    "tok_ok": 70,
    "tok_insufficient_funds": 8,
    "tok_expired_card": 5,
    "tok_unavailable_1": 7,
    "tok_unavailable_2": 5,
    "tok_timeout": 5,
}


@dataclass(frozen=True)
class Fault:
    """A fault ``at`` seconds into the run, lasting ``length`` seconds (0 for a signal); ``pick`` draws its target."""

    at: float
    kind: str
    length: float
    pick: float


@dataclass(frozen=True)
class Step:
    """One piece of the workload, sent ``at`` seconds into the run; ``size`` is how many of it."""

    at: float
    kind: str
    number: int
    size: int = 0
    mode: str = ""


@dataclass(frozen=True)
class Plan:
    seed: int
    duration: float
    postgres: bool
    faults: list[Fault] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(
            seed=data["seed"],
            duration=data["duration"],
            postgres=data["postgres"],
            faults=[Fault(**fault) for fault in data["faults"]],
            steps=[Step(**step) for step in data["steps"]],
            tokens=list(data["tokens"]),
        )


def make_plan(*, seed: int, duration: float, postgres: bool) -> Plan:
    """The workload and the faults of ``seed`` over ``duration`` seconds (``db_drop`` only on PostgreSQL)."""
    rng = random.Random(seed)
    tokens = rng.choices(list(TOKENS), weights=list(TOKENS.values()), k=ORDERS)
    return Plan(
        seed=seed,
        duration=duration,
        postgres=postgres,
        faults=_faults(rng, duration, postgres),
        steps=_steps(rng, duration),
        tokens=tokens,
    )


def _faults(rng: random.Random, duration: float, postgres: bool) -> list[Fault]:
    """One fault of each kind and a few more, one after another, spread over the run."""
    kinds = list(FAULTS) + (["db_drop"] if postgres else [])
    weights = {**EXTRA_WEIGHTS, **({"db_drop": 2} if postgres else {})}
    kinds += rng.choices(list(weights), weights=list(weights.values()), k=rng.randint(2, 4))
    rng.shuffle(kinds)
    lengths = [_length(rng, kind) for kind in kinds]
    gaps = [rng.uniform(1.0, 4.0) for _ in kinds]
    # Faults do not overlap: each one is over before the next begins, and the last one ends
    # before the workload does, so that the run ends on a system with every part back.
    start, room = 3.0, max(duration - 6.0, 1.0)
    scale = min(1.0, max(room - sum(lengths), 0.0) / sum(gaps))
    faults, at = [], start
    for kind, length, gap in zip(kinds, lengths, gaps, strict=True):
        faults.append(Fault(at=round(at, 2), kind=kind, length=round(length, 2), pick=round(rng.random(), 4)))
        at += length + gap * scale
    return faults


def _length(rng: random.Random, kind: str) -> float:
    if kind == "redis_kill":
        return rng.uniform(2.0, 5.0)  # down time before it is started again
    if kind == "broker_refuse":
        # Shorter than the heartbeat timeout the campaign runs with (see cluster.py): a worker
        # that cannot write its heartbeat for longer is taken for dead and its jobs put back.
        return rng.uniform(1.5, 3.0)
    if kind == "scheduler_kill":
        return rng.uniform(1.0, 3.0)  # before the scheduler is started again
    return 0.0


def _steps(rng: random.Random, duration: float) -> list[Step]:
    """The workload: order waves, probes, stock adjustments, poison jobs, an import, a price batch, a backfill."""
    early, middle = 0.3 * duration, 0.6 * duration
    steps = [Step(at=0.0, kind="orders", number=0, size=ORDERS // ORDER_WAVES)]
    steps += [
        Step(at=rng.uniform(1.0, middle), kind="orders", number=n, size=ORDERS // ORDER_WAVES)
        for n in range(1, ORDER_WAVES)
    ]
    steps += [
        Step(
            at=rng.uniform(0.0, duration - 2.0),
            kind="probes",
            number=n,
            size=PROBES_PER_ROUND,
            mode=rng.choice(["outbox", "direct"]),
        )
        for n in range(PROBE_ROUNDS)
    ]
    steps += [
        Step(at=rng.uniform(0.0, middle), kind="adjustments", number=n, size=ADJUSTMENTS_PER_ROUND)
        for n in range(ADJUSTMENT_ROUNDS)
    ]
    steps += [Step(at=rng.uniform(1.0, middle), kind="poison", number=n) for n in range(POISON_JOBS)]
    steps += [
        Step(at=rng.uniform(0.0, middle), kind="probe_batch", number=n, size=PROBES_PER_BATCH)
        for n in range(PROBE_BATCHES)
    ]
    # Unique jobs: each of these is sent twice, the second a moment after the first.
    imported, priced = rng.uniform(0.0, early), rng.uniform(0.0, early)
    steps += [
        Step(at=imported, kind="import", number=0, size=IMPORT_ROWS),
        Step(at=imported + rng.uniform(0.1, 2.0), kind="import_again", number=0),
        Step(at=priced, kind="price_batch", number=0, size=PRICE_ITEMS),
        Step(at=priced + rng.uniform(0.1, 2.0), kind="price_batch", number=1, size=PRICE_ITEMS),
        Step(at=rng.uniform(0.0, middle), kind="backfill", number=0, size=BACKFILL_DAYS),
    ]
    return sorted((Step(**{**asdict(step), "at": round(step.at, 2)}) for step in steps), key=lambda s: s.at)
