"""The move of e-mail deliveries and report mails into mail: every row, as it was, and sendable."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mail.models import Mail
from mail.services import mail_send
from reports.selectors import report_daily_figures

BEFORE = [
    ("orders", "0011_dataset_verbose_name"),
    ("reports", "0002_payment_order_status_index"),
    ("mail", "0001_initial"),
]
AFTER = [("orders", "0012_email_deliveries_to_mail"), ("reports", "0003_report_mails_to_mail")]
QUEUED_AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def before_the_move(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(executor_leaf_nodes())


def executor_leaf_nodes():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_deliveries_keep_their_ids_and_report_mails_get_their_message_written_out(before_the_move):
    # Given an e-mail delivery sent, one pending, and a report's mail pending, before mail had an app
    apps = before_the_move
    delivery = apps.get_model("orders", "EmailDelivery")
    sent = delivery.objects.create(key="order-confirmed:1", to="a@example.com", subject="Confirmed", body="Hello")
    delivery.objects.filter(pk=sent.pk).update(status="sent", attempts=1, sent_at=QUEUED_AT, created_at=QUEUED_AT)
    pending = delivery.objects.create(key="order-failed:2", to="b@example.com", subject="Failed", body="Sorry")
    report = apps.get_model("reports", "Report").objects.create(
        type="daily",
        date=date(2026, 11, 26),
        data=report_daily_figures(day=date(2026, 11, 26)),
    )
    apps.get_model("reports", "ReportMail").objects.create(
        key="report-mailed:daily:2026-11-26", report=report, recipients=["owner@example.com", "accounts@example.com"]
    )

    # When the move runs
    migrate(AFTER)

    # Then every mail is there as it was, the deliveries under their own ids
    moved = {m.key: m for m in Mail.objects.all()}
    assert set(moved) == {"order-confirmed:1", "order-failed:2", "report-mailed:daily:2026-11-26"}
    first, second = moved["order-confirmed:1"], moved["order-failed:2"]
    assert (first.pk, first.to, first.status, first.attempts, first.sent_at) == (
        sent.pk,
        ["a@example.com"],
        "sent",
        1,
        QUEUED_AT,
    )
    assert first.created_at == QUEUED_AT
    assert (second.pk, second.to, second.subject, second.body, second.status) == (
        pending.pk,
        ["b@example.com"],
        "Failed",
        "Sorry",
        "pending",
    )
    report_mail = moved["report-mailed:daily:2026-11-26"]
    assert report_mail.to == ["owner@example.com", "accounts@example.com"]
    assert report_mail.subject == "Daily report for 2026-11-26 (Europe/Berlin): 0 orders, revenue 0.00"
    assert report_mail.pk not in (sent.pk, pending.pk)

    # And a pending one still goes out once, the report's with its HTML and CSV
    mail_send(mail_id=report_mail.pk)
    [message] = mail.outbox
    assert message.alternatives[0][1] == "text/html"
    assert [attachment[0] for attachment in message.attachments] == ["daily-report-2026-11-26.csv"]

    # And a new mail takes an id past the moved ones
    assert Mail.objects.create(key="new", to=["c@example.com"], subject="s", body="b").pk > max(moved_ids(moved))


def moved_ids(moved: dict) -> list[int]:
    return [m.pk for m in moved.values()]


def test_the_move_goes_back(before_the_move):
    apps = before_the_move
    apps.get_model("orders", "EmailDelivery").objects.create(key="k:1", to="a@example.com", subject="s", body="b")
    migrate(AFTER)

    apps = migrate(BEFORE)

    assert list(apps.get_model("orders", "EmailDelivery").objects.values_list("key", "to")) == [
        ("k:1", "a@example.com")
    ]
    assert not apps.get_model("mail", "Mail").objects.exists()
