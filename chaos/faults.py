"""The faults themselves: each takes the cluster and one planned fault, does it, and says what it did."""

from __future__ import annotations

import os
import signal
import time

import redis

from chaos.cluster import Cluster
from chaos.plan import Fault

#: How long a worker fault waits for a worker process to be alive, in seconds.
WAIT_FOR_WORKER = 8.0


def inject(cluster: Cluster, fault: Fault) -> str:
    """Do ``fault`` to the cluster (waiting out its length) and describe it in one line."""
    return FAULTS[fault.kind](cluster, fault)


def _signal_worker(cluster: Cluster, fault: Fault, signum: int) -> str:
    # Right after a crash the supervisor may be backing off: wait a little for a worker to hit.
    deadline = time.monotonic() + WAIT_FOR_WORKER
    while not (pids := cluster.worker_pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not pids:
        return f"{signal.Signals(signum).name}: no worker process alive for {WAIT_FOR_WORKER:.0f} s"
    pid = pids[int(fault.pick * len(pids))]
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return f"{signal.Signals(signum).name}: worker process {pid} had exited already"
    return f"{signal.Signals(signum).name} worker process {pid} (of {len(pids)} alive)"


def worker_kill(cluster: Cluster, fault: Fault) -> str:
    return _signal_worker(cluster, fault, signal.SIGKILL)


def worker_term(cluster: Cluster, fault: Fault) -> str:
    return _signal_worker(cluster, fault, signal.SIGTERM)


def redis_kill(cluster: Cluster, fault: Fault) -> str:
    """kill -9 of redis-server, started again from its append-only file after ``length`` seconds."""
    cluster.kill_redis(down=fault.length)
    return f"kill -9 Redis, started again after {fault.length:.1f} s"


def broker_refuse(cluster: Cluster, fault: Fault) -> str:
    """Redis refuses every write (as when it is out of memory) for ``length`` seconds."""
    client = redis.Redis.from_url(cluster.redis.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        time.sleep(fault.length)
    finally:
        client.config_set("maxmemory", 0)
        client.close()
    return f"Redis refused writes (maxmemory 1, noeviction) for {fault.length:.1f} s"


def db_drop(cluster: Cluster, fault: Fault) -> str:
    dropped = cluster.database.drop_connections()
    return f"pg_terminate_backend of {dropped} connection(s) to the scratch database"


def scheduler_kill(cluster: Cluster, fault: Fault) -> str:
    """SIGKILL the leading scheduler (it cannot give its lock up), started again after ``length`` seconds."""
    victim, led = cluster.schedulers.kill_leader(fault.pick)
    time.sleep(fault.length)
    victim.start()
    role = "the leader" if led else "none led"
    return f"SIGKILL scheduler {victim.number} ({role}), started again after {fault.length:.1f} s"


FAULTS = {
    "worker_kill": worker_kill,
    "worker_term": worker_term,
    "redis_kill": redis_kill,
    "broker_refuse": broker_refuse,
    "db_drop": db_drop,
    "scheduler_kill": scheduler_kill,
}
