"""Resuming cancelled long jobs from the admin: imports, datasets and price batches, each behind its permission."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orders.models import Dataset, Import, PriceBatch
from orders.tasks import import_data, process_large_dataset, process_price_batch
from tests.orders.factories import make_import, products_csv
from tests.support.users import login_staff
from workers.models import Batch

pytestmark = pytest.mark.django_db


def run_action(client, model: str, action: str, ids: list[int]):
    url = reverse(f"admin:orders_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": ids}, follow=True)


def test_resume_queues_a_cancelled_import_and_skips_a_finished_one(client, jobs, django_capture_on_commit_callbacks):
    login_staff(client, "view_import", "run_import")
    cancelled = make_import(products_csv("A,a,1,1"), status=Import.Status.CANCELLED, processed_rows=1)
    finished = make_import(products_csv("B,b,1,1"), status=Import.Status.COMPLETED)

    with django_capture_on_commit_callbacks(execute=True):
        page = run_action(client, "import", "resume_imports", [cancelled.pk, finished.pk]).content.decode()

    assert "1 import(s) resumed" in page and "1 import(s) skipped: finished or running." in page
    assert [job.args for job in jobs.enqueued(import_data)] == [(cancelled.pk,)]
    cancelled.refresh_from_db()
    assert cancelled.status == Import.Status.RUNNING


def test_resume_needs_the_permission_to_run_imports(client, jobs):
    login_staff(client, "view_import")
    cancelled = make_import(products_csv("A,a,1,1"), status=Import.Status.CANCELLED)

    page = run_action(client, "import", "resume_imports", [cancelled.pk]).content.decode()

    assert 'value="resume_imports"' not in page
    jobs.assert_nothing_enqueued()
    assert Import.objects.get().status == Import.Status.CANCELLED


def test_resume_queues_a_cancelled_dataset_after_its_cursor(client, jobs, django_capture_on_commit_callbacks):
    login_staff(client, "view_dataset", "run_dataset")
    dataset = Dataset.objects.create(description="Totals", status=Dataset.Status.CANCELLED, cursor=41, processed=41)

    with django_capture_on_commit_callbacks(execute=True):
        page = run_action(client, "dataset", "resume_datasets", [dataset.pk]).content.decode()

    assert "1 dataset(s) resumed after their last committed chunk." in page
    queued = [(job.args, job.kwargs) for job in jobs.enqueued(process_large_dataset)]
    assert queued == [((dataset.pk,), {"after_id": 41})]


def test_resume_queues_a_cancelled_price_batch(client, jobs, django_capture_on_commit_callbacks):
    login_staff(client, "view_pricebatch", "process_pricebatch")
    job_batch = Batch.objects.create(description="Price batch", status=Batch.Status.CANCELLED)
    cancelled = PriceBatch.objects.create(description="Winter", job_batch=job_batch, cursor=7)
    never_started = PriceBatch.objects.create(description="Spring")

    with django_capture_on_commit_callbacks(execute=True):
        page = run_action(client, "pricebatch", "resume_batches", [cancelled.pk, never_started.pk]).content.decode()

    assert "1 price batch(es) resumed" in page and "1 price batch(es) skipped: not cancelled." in page
    assert [job.args for job in jobs.enqueued(process_price_batch)] == [(cancelled.pk,)]
    assert Batch.objects.get().status == Batch.Status.RUNNING
