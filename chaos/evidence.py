"""What a run left to check it by: the workload's journal, Redis's keys, the mailbox files and the workers' log."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

#: The separator Django's file-based e-mail backend writes after each message.
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"
JOB_LINE = re.compile(
    r"job (started|finished|failed) actor=(\S+) queue=\S+ message_id=(\S+)"
    r"|Dead-lettering message (\S+) of \S+: started"
)


@dataclass
class Journal:
    """What the workload sent: the seeded expectations and one record per step."""

    expected: dict
    steps: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, workdir: Path) -> Journal:
        sent = workdir / "sent.jsonl"
        lines = sent.read_text().splitlines() if sent.exists() else []
        return cls(json.loads((workdir / "expected.json").read_text()), [json.loads(line) for line in lines])

    def of(self, kind: str) -> list[dict]:
        return [step for step in self.steps if step["kind"] == kind]

    def probe_keys(self) -> tuple[list[str], list[str]]:
        """Keys of the probes that were sent (committed or accepted by the broker), and of those whose send failed."""
        sent, unsent = [], []
        for step in self.of("probes") + self.of("probe_batch"):
            (sent if step.get("sent", True) else unsent).extend(step["keys"])
        return sent, unsent


def redis_leftovers(client, namespace: str = "dramatiq") -> dict[str, int]:
    """Messages still in the broker: waiting in a queue, delayed, held in a worker's ack set, or stored unclaimed.

    Dead-lettered messages (``<queue>.XQ``) are where failed jobs belong and are not counted, nor are
    the keys that hold no message (doorbells, lane rotations). Jobs waiting in a fair lane count as queued.
    """
    left = {"queued": 0, "delayed": 0, "unacked": 0, "stored": 0}
    for raw in client.scan_iter(match=f"{namespace}:*", count=1000):
        key = raw.decode()
        kind = client.type(raw).decode()
        # Dead letters are where failed jobs belong; a queue's doorbell and its lanes' rotation hold
        # wake-ups and lane names, not messages (workers/dramatiq_internals/redis_broker.py, lanes.py).
        if ".XQ" in key or ":__doorbell__." in key or key.endswith(".lanes"):
            continue
        if kind == "list":
            left["delayed" if key.endswith(".DQ") else "queued"] += client.llen(raw)
        elif kind == "set" and ":__acks__." in key:
            left["unacked"] += client.scard(raw)
        elif kind == "hash" and key.endswith(".msgs"):
            left["stored"] += client.hlen(raw)
    return left


def mailbox_subjects(directory: Path) -> Counter:
    """How often each subject was handed to the mail backend (the file-based one writes every message it sends)."""
    subjects: Counter = Counter()
    for path in sorted(directory.glob("*")):
        for chunk in path.read_bytes().split(MAIL_SEPARATOR):
            if chunk.strip():
                subjects[" ".join(str(message_from_bytes(chunk.strip())["Subject"]).split())] += 1
    return subjects


@dataclass
class JobLog:
    """The workers' job log lines: what happened to each message, in order, and which ran to their end.

    ``events`` lists per message id "started", "finished", "failed" (JobLog's lines) and
    "crashed" (CrashGuard dead-lettering it). A run cut short by another job's crash before its
    start line was written is not in it.
    """

    events: dict[str, list[str]] = field(default_factory=dict)
    finished: dict[str, Counter] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> JobLog:
        log = cls()
        text = path.read_text(errors="replace") if path.exists() else ""
        for event, actor, message_id, crashed_id in JOB_LINE.findall(text):
            if crashed_id:
                log.events.setdefault(crashed_id, []).append("crashed")
                continue
            log.events.setdefault(message_id, []).append(event)
            if event == "finished":
                log.finished.setdefault(actor, Counter())[message_id] += 1
        return log

    def starts(self, message_id: str) -> int:
        return self.events.get(message_id, []).count("started")

    def crash_loop(self, message_id: str) -> tuple[int, int]:
        """Starts in a row before the message was first dead-lettered as crashed, and starts after that."""
        events = self.events.get(message_id, [])
        cut = events.index("crashed") if "crashed" in events else len(events)
        before = 0
        for event in events[:cut]:
            before = before + 1 if event == "started" else 0  # an ending resets the count, as CrashGuard does
        return before, events[cut:].count("started")
