"""Invariants of the shop's data: orders ended, charged at most once, confirmed once; stock, import, prices, reports."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from chaos.evidence import JobLog, Journal
from chaos.invariants import Check, examples

TERMINAL = {"processed", "failed", "cancelled"}


def orders_terminal(journal: Journal) -> Check:
    from orders.models import Order

    statuses = Counter(Order.objects.filter(pk__in=journal.expected["orders"]).values_list("status", flat=True))
    stuck = sum(count for status, count in statuses.items() if status not in TERMINAL)
    figures = ", ".join(f"{status} {count}" for status, count in sorted(statuses.items()))
    return Check(
        "every order terminal", stuck == 0 and sum(statuses.values()) == len(journal.expected["orders"]), figures
    )


def payments_charged_once(journal: Journal) -> Check:
    from orders.models import Order, Payment, SandboxCharge

    payments = list(Payment.objects.values("order_id", "status", "idempotency_key", "gateway_reference"))
    ledger = {
        row["idempotency_key"]: row
        for row in SandboxCharge.objects.values("idempotency_key", "charged", "reference", "calls")
    }
    # An order may hold several payments (a declined one retried on a new card), but one charge at most.
    per_order = Counter(payment["order_id"] for payment in payments if payment["status"] == "charged")
    doubled = [order for order, count in per_order.items() if count > 1]
    # Money taken must match a charged payment, and a charged payment must match money taken.
    mismatched = [
        p["idempotency_key"]
        for p in payments
        if (p["status"] == "charged") != bool(ledger.get(p["idempotency_key"], {}).get("charged"))
        or (p["status"] == "charged" and p["gateway_reference"] != ledger[p["idempotency_key"]]["reference"])
    ]
    unknown = sorted(set(ledger) - {p["idempotency_key"] for p in payments})
    processed = set(Order.objects.filter(status="processed").values_list("pk", flat=True))
    charged = {p["order_id"] for p in payments if p["status"] == "charged"}
    statuses = Counter(p["status"] for p in payments)
    figures = (
        f"{len(payments)} payments ({', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}), "
        f"ledger {len(ledger)} keys / {sum(r['charged'] for r in ledger.values())} charged / "
        f"{sum(r['calls'] for r in ledger.values())} calls, doubled {len(doubled)}, mismatched {len(mismatched)}, "
        f"charges without a payment {len(unknown)}, processed orders not charged {len(processed - charged)}"
    )
    ok = not doubled and not mismatched and not unknown and processed == charged
    return Check("every payment charged at most once", ok, figures + examples(doubled + mismatched + unknown))


def confirmations_sent_once(journal: Journal, subjects: Counter) -> Check:
    from mail.models import Mail
    from orders.models import Payment

    charged = set(Payment.objects.filter(status="charged").values_list("order_id", flat=True))
    deliveries = {d["key"]: d for d in Mail.objects.values("key", "status", "subject")}
    missing = [pk for pk in charged if f"order-confirmed:{pk}" not in deliveries]
    unsent = [pk for pk in charged if deliveries.get(f"order-confirmed:{pk}", {}).get("status") != "sent"]
    statuses = Counter(d["status"] for d in deliveries.values())
    # A delivery marked sent that the mail backend never saw was lost between the two.
    never_sent = [
        d["key"] for d in deliveries.values() if d["status"] == "sent" and not subjects[" ".join(d["subject"].split())]
    ]
    duplicates = sum(count - 1 for count in subjects.values() if count > 1)
    figures = (
        f"{len(charged)} charged orders, confirmations missing {len(missing)}, not sent {len(unsent)}; "
        f"all deliveries: {', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}; marked sent but never "
        f"handed to the backend {len(never_sent)}; SMTP-level duplicates {duplicates} (a figure, not a failure)"
    )
    ok = not missing and not unsent and not never_sent and statuses.get("pending", 0) == 0
    return Check(
        "every charged order has one confirmation, sent", ok, figures + examples(missing + unsent + never_sent)
    )


def stock_matches_audits(journal: Journal) -> Check:
    from django.db.models import Sum

    from orders.models import InventoryAudit, Product, StockAdjustment

    start = {int(pk): stock for pk, stock in journal.expected["start_stock"].items()}
    changes = dict(
        InventoryAudit.objects.filter(product_id__in=start)
        .values("product_id")
        .annotate(total=Sum("change"))
        .values_list("product_id", "total")
    )
    stock = dict(Product.objects.filter(pk__in=start).values_list("pk", "stock"))
    wrong = [pk for pk in start if stock[pk] != start[pk] + (changes.get(pk) or 0)]
    # Each adjustment asked is applied once (one audit of its change) or refused with nothing applied.
    wanted = {pk: status for step in journal.of("adjustments") for status in ("done", "refused") for pk in step[status]}
    asked = list(StockAdjustment.objects.filter(pk__in=wanted).select_related("audit"))
    amiss = [
        a.pk
        for a in asked
        if a.status != wanted[a.pk]
        or (a.audit is None) != (a.status == "refused")
        or (a.audit and a.audit.change != a.change)
    ]
    amiss += sorted(set(wanted) - {a.pk for a in asked})
    statuses = Counter(a.status for a in asked)
    reservations = InventoryAudit.objects.filter(reason="order_reservation").count()
    figures = (
        f"{len(start)} products, stock off its audits {len(wrong)}; {len(wanted)} stock adjustments asked "
        f"({', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}), not as expected {len(amiss)}; "
        f"{reservations} reservation audits"
    )
    return Check("stock equals start plus audits", not wrong and not amiss, figures + examples(wrong + amiss))


def import_counts_exact(journal: Journal, log: JobLog) -> Check:
    from orders.models import Import, Product

    expected = journal.expected["import"]
    imports = list(Import.objects.all())
    if len(imports) != 1:
        return Check("import counts exact", False, f"{len(imports)} imports, expected 1")
    done = imports[0]
    counts = (
        done.status,
        done.created_count,
        done.updated_count,
        done.invalid_rows,
        done.processed_rows,
        done.total_rows,
    )
    wanted = (
        "completed",
        expected["created"],
        expected["updated"],
        expected["invalid"],
        expected["rows"],
        expected["rows"],
    )
    products = {p.sku: p for p in Product.objects.filter(sku__in=expected["products"])}
    wrong = [
        sku
        for sku, (name, price, stock) in expected["products"].items()
        if sku not in products
        or (products[sku].name, products[sku].price, products[sku].stock) != (name, Decimal(price), stock)
    ]
    names = "status, created, updated, invalid, processed, total"
    figures = (
        f"({names}) {counts}, expected {wanted}; products not as in the file {len(wrong)}; "
        f"import_data sent twice, messages run {len(log.finished.get('import_data', ()))}"
    )
    return Check("import counts exact", counts == wanted and not wrong, figures + examples(wrong))


def price_batch_exact(journal: Journal, log: JobLog) -> Check:
    from orders.models import PriceBatch, Product
    from workers.models import BatchJob

    batch = PriceBatch.objects.select_related("job_batch").get(pk=journal.expected["price_batch"])
    items = list(batch.items.all())
    prices = dict(Product.objects.filter(pk__in=[item.product_id for item in items]).values_list("pk", "price"))
    unapplied = [item.pk for item in items if item.applied_at is None or prices[item.product_id] != item.new_price]
    job = batch.job_batch
    if job is None:
        return Check("price batch counts exact", False, f"{len(items)} items, never started")
    jobs = BatchJob.objects.filter(batch=job).count()
    counts = (job.status, job.total, job.succeeded, job.failed, jobs)
    wanted = ("succeeded", len(items), len(items), 0, len(items))
    figures = (
        f"(status, total, succeeded, failed, jobs) {counts}, expected {wanted}; items not applied {len(unapplied)}; "
        f"process_price_batch sent twice, messages run {len(log.finished.get('process_price_batch', ()))}"
    )
    return Check("price batch counts exact", counts == wanted and not unapplied, figures)


def backfill_exact(journal: Journal) -> Check:
    from datetime import date, timedelta

    from reports.models import Report
    from workers.models import Batch

    days = journal.expected["backfill"]
    first, last = date.fromisoformat(days["first"]), date.fromisoformat(days["last"])
    wanted = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    stored = set(Report.objects.filter(date__in=wanted).values_list("date", flat=True))
    batches = list(Batch.objects.filter(pk__in=[step["batch"] for step in journal.of("backfill")]))
    counts = [(b.status, b.total, b.succeeded, b.failed) for b in batches]
    ok = (
        stored == set(wanted) and bool(batches) and all(c == ("succeeded", len(wanted), len(wanted), 0) for c in counts)
    )
    return Check("report backfill exact", ok, f"{len(stored)} of {len(wanted)} days reported; batches {counts}")
