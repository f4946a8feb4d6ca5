"""Scenario recovery: how soon the platform gets over a killed worker, a crash loop and an outage's outbox."""

from __future__ import annotations

import json
import os
import sys
import time

import redis

from bench import harness, report
from bench.harness import Options
from bench.workloads.counter import CRASHES, RAN

BACKLOG = 5_000
RELAY_ROWS = 100_000
#: Each figure's target, in seconds.
TARGETS = {"killed": 30.0, "crash_loop": 30.0, "relay": 30.0}

METHOD = """\
One private redis-server (append-only) and the project's settings (DEBUG off; heartbeat timeout,
housekeeping interval and every other setting at their defaults), on the database of
DATABASE_URL (a scratch database) or SQLite.

- Killed worker: {backlog:,} jobs of 50 ms wait on `default`. A lone `rundramatiq` worker (1 x 8
  threads) takes its share; then a supervised `runworkers` (1 x 8) starts beside it, and once
  both work the first is SIGKILLed. The clock runs from the kill until every message the killed
  worker held (its ack set at the kill) has run on the other, while the backlog still waits.
- Crash loop: a job that SIGKILLs its worker, sent to two supervised worker processes. The clock
  runs from its third crash until the worker log says it went to the dead letters.
- Outbox: {rows:,} jobs left in the outbox by an outage (rows older than the relay's age), and
  one call of `outbox_relay()`, as a housekeeping round makes once the broker answers again.
  The clock covers that call; the queue must then hold every job and the outbox none."""


def run(options: Options) -> None:
    directory = options.workdir / "recovery"
    with harness.private_redis(directory / "redis") as server:
        env = harness.project_env(
            dict(os.environ), var_dir=directory / "var", redis_url=server.url, scratch_database_name="bench_recovery"
        )
        env["BENCH_REDIS_URL"] = server.url
        harness.migrate(env, log_path=directory.with_suffix(".migrate.log"))
        client = redis.Redis.from_url(server.url)
        figures = {
            "relay": _relay(env, directory),
            "killed": _killed_worker(env, directory, client),
            "crash_loop": _crash_loop(env, directory, client),
        }
    harness.drop_scratch_databases()
    headers = ["recovery", "measured", "target", "verdict"]
    labels = {
        "killed": f"a killed worker's messages run again ({BACKLOG:,} jobs waiting)",
        "crash_loop": "a crash-looping job is a dead letter, after its last crash",
        "relay": f"{RELAY_ROWS:,} outbox rows relayed",
    }
    rows = [
        [labels[name], f"{seconds:.1f} s", f"<= {TARGETS[name]:.0f} s", _verdict(seconds, TARGETS[name])]
        for name, seconds in figures.items()
    ]
    print("\n" + report.table(headers, rows))
    if options.doc is not None:
        body = "\n\n".join(
            [
                "## recovery: a killed worker, a crash loop, an outbox left by an outage",
                report.table(headers, rows, markdown=True),
                "How it is measured:\n\n" + METHOD.format(backlog=BACKLOG, rows=RELAY_ROWS),
                report.machine_section(),
            ]
        )
        report.write_section(options.doc, "recovery", body)


def _verdict(seconds: float, target: float) -> str:
    return "met" if seconds <= target else "not met"


def _helper(env: dict, directory, *args: str) -> dict:
    return harness.run_json(
        [sys.executable, "-m", "bench.workloads.recovery", *args], env=env, log_path=directory.with_suffix(".log")
    )


def _relay(env: dict, directory) -> float:
    result = _helper(env, directory, "relay", str(RELAY_ROWS))
    if result["sent"] != RELAY_ROWS or result["queued"] != RELAY_ROWS or result["left"]:
        raise RuntimeError(f"outbox relay: {result}")
    print(f"outbox: {RELAY_ROWS:,} rows relayed in {result['seconds']:.1f} s", flush=True)
    return result["seconds"]


def _workers(env: dict, directory, name: str, *args: str) -> harness.Worker:
    return harness.Worker(
        [sys.executable, "manage.py", *args], env=env, log_path=directory.parent / f"recovery-{name}.log"
    ).start()


def _killed_worker(env: dict, directory, client) -> float:
    client.flushdb()
    _helper(env, directory, "backlog", str(BACKLOG), "0.05")
    lone = _workers(env, directory, "lone", "rundramatiq", "--processes", "1", "--threads", "8")
    harness.wait_until(lambda: client.scard(RAN) >= 50, timeout=120, what="the lone worker at work")
    [acks] = list(client.scan_iter(match="dramatiq:__acks__.*.default"))
    other = _workers(env, directory, "other", "runworkers", "--processes", "1", "--threads", "8")
    harness.wait_until(lambda: client.scard(acks) and client.scard(RAN) >= 400, timeout=120, what="two workers")
    held = [id_.decode() for id_ in client.smembers(acks)]
    lone.kill()
    killed_at = time.monotonic()
    bodies = client.hmget("dramatiq:default.msgs", held)
    # Signed bodies wrap the message: {"sig": ..., "body": {...}} (workers/signing.py).
    message_ids = {json.loads(body)["body"]["message_id"] for body in bodies if body}
    harness.wait_until(
        lambda: all(client.sismember(RAN, id_) for id_ in message_ids),
        timeout=300,
        what="the killed worker's messages",
        interval=0.1,
    )
    seconds = time.monotonic() - killed_at
    waiting = client.llen("dramatiq:default")
    print(f"killed worker: {len(message_ids)} held messages ran again after {seconds:.1f} s; {waiting:,} still waiting")
    other.stop()
    return seconds


def _crash_loop(env: dict, directory, client) -> float:
    client.flushdb()
    workers = _workers(env, directory, "crash", "runworkers", "--processes", "2", "--threads", "4")
    message_id = _helper(env, directory, "crash")["message_id"]
    log = directory.parent / "recovery-crash.log"

    def dead_lettered() -> bool:
        return f"Dead-lettering message {message_id}" in log.read_text(errors="replace")

    harness.wait_until(dead_lettered, timeout=300, what="the crash-looping job in the dead letters", interval=0.1)
    seconds = time.time() - float(client.lindex(CRASHES, -1))
    crashes = client.llen(CRASHES)
    print(f"crash loop: {crashes} crashes, dead letter {seconds:.1f} s after the last", flush=True)
    workers.stop()
    if crashes != 3:
        raise RuntimeError(f"the crash-looping job ran {crashes} times, expected 3")
    return seconds
