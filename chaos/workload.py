"""The campaign's workload, run inside the project: the plan's steps, each sent on time.

``python -m chaos.workload WORKDIR``, once ``chaos.seed`` has written the data, sends each step
of ``WORKDIR/plan.json`` at its offset, through the domain's services and the platform's
enqueue functions, and appends what was committed or sent to ``WORKDIR/sent.jsonl``.
A step whose database write fails (a dropped connection) is tried again: every step is built so
that trying it again does nothing twice (fixed message ids, services that move only pending rows).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.seed import IMPORT_FILE, ORDER_PRODUCTS

logger = logging.getLogger("chaos.workload")


@dataclass(frozen=True)
class Run:
    """What every step is given: the plan, what the seed wrote, and the run's directory."""

    plan: object
    expected: dict
    workdir: Path


def drive(workdir: Path, plan) -> dict:
    """Send each step at its offset from now; returns how many steps were sent."""
    run = Run(plan, json.loads((workdir / "expected.json").read_text()), workdir)
    journal = (workdir / "sent.jsonl").open("a")
    started = time.monotonic()
    for step in plan.steps:
        time.sleep(max(0.0, step.at - (time.monotonic() - started)))
        record = attempt(lambda step=step: STEPS[step.kind](step, run), what=f"{step.kind} {step.number}")
        record = {"kind": step.kind, "number": step.number, "at": round(time.monotonic() - started, 2), **record}
        journal.write(json.dumps(record) + "\n")
        journal.flush()
        logger.info("step %s %s sent at +%.1fs", step.kind, step.number, record["at"])
    return {"steps": len(plan.steps)}


def attempt(action, *, what: str, tries: int = 60):
    """Run ``action``; on a database error (a dropped connection, a locked file) reconnect and run it again."""
    from django.db import Error, connections

    for number in range(1, tries + 1):
        try:
            return action()
        except Error as error:
            logger.warning("%s: %s: %s (try %d); again", what, type(error).__name__, error, number)
            for connection in connections.all():
                try:
                    connection.close()
                except Error:
                    pass
            if number == tries:
                raise
            time.sleep(0.5)


def _orders(step, run: Run) -> dict:
    from orders.services.orders import order_queue_processing

    ids = run.expected["orders"][step.number * step.size : (step.number + 1) * step.size]
    return {"queued": order_queue_processing(order_ids=ids), "orders": ids}


def _probes(step, run: Run) -> dict:
    from tests.support.tasks import noop
    from workers.enqueue import build_message

    keys = [f"chaos:probe:{step.number}:{n}" for n in range(step.size)]
    messages = [build_message(noop, (key,), {}) for key in keys]
    return {"keys": keys, "mode": step.mode, **_send(messages, in_transaction=step.mode == "outbox")}


def _adjustments(step, run: Run) -> dict:
    """A restock of some products, as the admin's "Adjust stock" asks it; the first round also asks a
    removal from a scarce product that its stock cannot give (it must be refused, not applied)."""
    from orders.models import InventoryAudit
    from orders.services.inventory import stock_adjustment_request

    rng = random.Random(run.plan.seed * 1000 + step.number)
    ids = sorted(int(pk) for pk in run.expected["start_stock"])
    restocked = stock_adjustment_request(
        product_ids=rng.sample(ids[:ORDER_PRODUCTS], step.size),
        change=rng.randint(1, 5),
        reason=InventoryAudit.Reason.RESTOCK,
    )
    refused = []
    if step.number == 0:
        refused = stock_adjustment_request(
            product_ids=[ids[ORDER_PRODUCTS]], change=-1000, reason=InventoryAudit.Reason.ADJUSTMENT
        )
    return {"done": [a.pk for a in restocked], "refused": [a.pk for a in refused]}


def _poison(step, run: Run) -> dict:
    from tests.support.tasks import kills_its_worker
    from workers.enqueue import build_message

    message = build_message(kills_its_worker, (f"chaos:poison:{step.number}",), {})
    return {"message_id": message.message_id, "key": message.args[0], **_send([message], in_transaction=True)}


def _send(messages: list, *, in_transaction: bool) -> dict:
    """Through the outbox in a transaction (sent after commit, or by the relay), or at once; whether it went."""
    from django.db import transaction

    from workers.outbox import outbox_add

    if in_transaction:
        with transaction.atomic():
            outbox_add(messages)
        return {"sent": True}
    try:
        outbox_add(messages)
    except Exception as error:  # the broker refused or was away: the caller knows it was not sent
        logger.warning("direct send of %d message(s) failed: %s: %s", len(messages), type(error).__name__, error)
        return {"sent": False, "error": type(error).__name__}
    return {"sent": True}


def _probe_batch(step, run: Run) -> dict:
    from django.db import transaction

    from tests.support.tasks import batch_complete, batch_success, noop
    from workers.batches import batch_add, batch_open, batch_seal

    keys = [f"chaos:batch-probe:{step.number}:{n}" for n in range(step.size)]
    with transaction.atomic():
        batch = batch_open(
            description=f"Chaos probes {step.number}", on_complete=batch_complete, on_success=batch_success
        )
        batch_add(batch, [noop.message(key) for key in keys])
        batch_seal(batch)
    return {"batch": batch.pk, "keys": keys}


def _import(step, run: Run) -> dict:
    from django.core.files.base import ContentFile

    from orders.models import Import
    from orders.services.imports import import_start

    # Looked up first: a try after a commit whose answer was lost must not start a second import.
    found = Import.objects.filter(file__endswith=IMPORT_FILE).first()
    if found is None:
        content = (run.workdir / IMPORT_FILE).read_bytes()
        found = import_start(product_import=Import(file=ContentFile(content, name=IMPORT_FILE)))
    return {"import": found.pk}


def _import_again(step, run: Run) -> dict:
    from django.db import transaction

    from orders.models import Import
    from orders.tasks import import_data
    from workers.enqueue import enqueue_on_commit

    product_import = Import.objects.get(file__endswith=IMPORT_FILE)
    with transaction.atomic():
        enqueue_on_commit(import_data, product_import.pk)
    return {"import": product_import.pk}


def _price_batch(step, run: Run) -> dict:
    from django.db import transaction

    from orders.tasks import process_price_batch
    from workers.enqueue import enqueue_on_commit

    with transaction.atomic():
        enqueue_on_commit(process_price_batch, run.expected["price_batch"])
    return {"price_batch": run.expected["price_batch"]}


def _backfill(step, run: Run) -> dict:
    from datetime import date

    from reports.services.daily import report_daily_backfill

    days = run.expected["backfill"]
    batch = report_daily_backfill(first=date.fromisoformat(days["first"]), last=date.fromisoformat(days["last"]))
    return {"batch": batch.pk}


STEPS = {
    "orders": _orders,
    "probes": _probes,
    "adjustments": _adjustments,
    "poison": _poison,
    "probe_batch": _probe_batch,
    "import": _import,
    "import_again": _import_again,
    "price_batch": _price_batch,
    "backfill": _backfill,
}


def main(argv: list[str]) -> None:
    import os

    import django

    workdir = Path(argv[0])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from chaos.plan import Plan

    plan = Plan.from_dict(json.loads((workdir / "plan.json").read_text()))
    print(json.dumps(drive(workdir, plan)))


if __name__ == "__main__":
    main(sys.argv[1:])
