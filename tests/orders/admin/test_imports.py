"""The import admin: staff with the permission upload a CSV and follow its progress and row errors."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from orders.models import Import, InventoryAudit, Product
from orders.tasks import import_data
from tests.orders.factories import make_import, make_product, products_csv
from tests.support.users import login_staff
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db

ADD_URL = "admin:orders_import_add"


def staff(client, *codenames: str) -> User:
    return login_staff(client, "view_import", *codenames)


def upload(client, content: bytes, *, name: str = "products.csv", content_type: str = "text/csv", dry_run=False):
    data = {"file": SimpleUploadedFile(name, content, content_type=content_type)}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(reverse(ADD_URL), data)


def test_staff_with_the_permission_upload_a_csv_and_its_job_is_queued_after_commit(
    client, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a clerk who may run imports
    user = staff(client, "run_import")
    assert 'type="file"' in client.get(reverse(ADD_URL)).content.decode()

    # When they upload a CSV
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, products_csv("MUG-1,Mug,7.50,4", "BAD-1,Bad,x,1"))

    # Then the import is saved as theirs and its job queued once
    assert response.status_code == 302
    product_import = Import.objects.get()
    assert (product_import.created_by, product_import.status, product_import.dry_run) == (user, "pending", False)
    jobs.assert_enqueued(import_data, product_import.pk, queue="low", count=1)

    # And once it has run, the list and the page show its progress and the row errors
    perform_jobs()
    listing = client.get(reverse("admin:orders_import_changelist")).content.decode()
    assert '<progress value="100" max="100" title="100%"></progress> 100%' in listing
    page = client.get(reverse("admin:orders_import_change", args=[product_import.pk])).content.decode()
    assert "&#x27;x&#x27; is not a number such as 12.50" in page
    assert Product.objects.get().sku == "MUG-1"


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/vnd.ms-excel", "text/plain"])
def test_a_csv_sent_with_a_generic_type_is_taken(client, jobs, content_type):
    staff(client, "run_import")
    response = upload(client, products_csv("MUG-1,Mug,7.50,4"), content_type=content_type)
    assert response.status_code == 302
    assert Import.objects.count() == 1


def test_a_dry_run_upload_is_saved_as_one(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "run_import")
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, products_csv("MUG-1,Mug,7.50,4"), dry_run=True)
    assert Import.objects.get().dry_run is True


def test_without_the_permission_nobody_uploads(client, jobs, django_capture_on_commit_callbacks):
    # Given a clerk who may only look at imports
    staff(client)
    assert "orders/import/add/" not in client.get(reverse("admin:orders_import_changelist")).content.decode()

    # When they try to upload anyway
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, products_csv("MUG-1,Mug,7.50,4"))

    # Then they are refused and nothing is saved or queued
    assert response.status_code == 403
    assert client.get(reverse(ADD_URL)).status_code == 403
    assert not Import.objects.exists()
    jobs.assert_nothing_enqueued()


def test_an_upload_over_the_limit_is_refused_with_the_sizes(client, jobs, settings):
    # Given a limit of 100 bytes
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    staff(client, "run_import")

    # When a clerk uploads 150 bytes
    response = upload(client, products_csv(*["MUG-1,Mug,1.00,1"] * 8))

    # Then the form says why, and nothing is saved or queued
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["file"] == [
        "The file is 157 bytes; uploads are limited to 100 bytes."
    ]
    assert not Import.objects.exists()
    jobs.assert_nothing_enqueued()


@pytest.mark.parametrize(
    ("name", "content_type", "content", "error"),
    [
        (
            "products.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            b"PK\x03\x04",
            "Upload a .csv file; products.xlsx is not one.",
        ),
        ("products.csv", "image/png", b"\x89PNG\r\n", "Upload a CSV file; this one was sent as image/png."),
        ("products.csv", "text/csv", b"sku\x00n\x00", "This file is binary (it contains NUL bytes), not a CSV."),
    ],
)
def test_a_file_that_is_not_a_csv_is_refused(client, jobs, name, content_type, content, error):
    staff(client, "run_import")
    response = upload(client, content, name=name, content_type=content_type)
    assert response.context["adminform"].form.errors["file"] == [error]
    assert not Import.objects.exists()


def test_a_running_import_shows_how_far_it_got(client):
    staff(client)
    make_import(products_csv("MUG-1,Mug,1,1"), status=Import.Status.RUNNING, total_rows=200, processed_rows=50)
    listing = client.get(reverse("admin:orders_import_changelist")).content.decode()
    assert '<progress value="25" max="100" title="25%"></progress> 25%' in listing


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (products_csv(), "The file has a header but no rows."),
        (products_csv("MUG-1,Mug,1.00,1", header="sku,title,price,stock"), "The header is not right: missing name"),
    ],
    ids=["header-only", "wrong-column"],
)
def test_a_file_that_cannot_be_imported_fails_with_its_reason_and_no_platform_failure(
    client, perform_jobs, django_capture_on_commit_callbacks, caplog, content, reason
):
    # Given a clerk who uploads a file the job cannot import
    caplog.set_level(logging.INFO)
    staff(client, "run_import")
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, content)

    # When the worker runs it
    assert perform_jobs() == 1

    # Then the import failed with the reason, shown on its page
    product_import = Import.objects.get()
    assert product_import.status == Import.Status.FAILED
    assert product_import.failure_message.startswith(reason)
    page = client.get(reverse("admin:orders_import_change", args=[product_import.pk])).content.decode()
    assert escape(reason) in page

    # And the job ended normally: no dead letter, no error or traceback in the log
    assert not DeadLetter.objects.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_dry_run_shows_what_it_would_create_and_update(client, perform_jobs, django_capture_on_commit_callbacks):
    # Given a product, and a clerk who dry-runs a file that would update it and create another
    make_product(sku="MUG-1", stock=1)
    staff(client, "run_import")
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, products_csv("MUG-1,Mug,7.50,4", "CUP-1,Cup,3,10"), dry_run=True)

    # When the worker runs it
    perform_jobs()

    # Then the list shows one to create and one to update, and nothing was written
    listing = client.get(reverse("admin:orders_import_changelist")).content.decode()
    assert '<td class="field-created">1</td>' in listing
    assert '<td class="field-updated">1</td>' in listing
    assert list(Product.objects.values_list("sku", "stock")) == [("MUG-1", 1)]


def test_an_import_leaves_an_audit_row_for_each_stock_it_changed(
    client, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a product with stock 1, and a clerk who imports a file restocking it and adding another
    make_product(sku="MUG-1", stock=1)
    staff(client, "run_import", "view_inventoryaudit")
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, products_csv("MUG-1,Mug,7.50,4", "CUP-1,Cup,3,10"))
    perform_jobs()
    product_import = Import.objects.get()

    # When they filter the inventory audit by "import"
    url = reverse("admin:orders_inventoryaudit_changelist") + "?reason__exact=import"
    listing = client.get(url).content.decode()

    # Then both changes are there, from this import
    audits = InventoryAudit.objects.filter(reason="import").order_by("product__sku")
    assert [(a.product.sku, a.change, a.stock_after, a.note) for a in audits] == [
        ("CUP-1", 10, 10, f"import #{product_import.pk}"),
        ("MUG-1", 3, 4, f"import #{product_import.pk}"),
    ]
    assert '<td class="field-change">3</td>' in listing
    assert '<td class="field-change">10</td>' in listing


def test_the_list_shows_the_failure_reason_and_counts_with_thousands_separators(client):
    # Given a large import that completed and one that failed
    staff(client)
    make_import(
        products_csv("MUG-1,Mug,1,1"),
        status=Import.Status.COMPLETED,
        total_rows=1_234_567,
        processed_rows=1_234_567,
        created_count=1_200_000,
        updated_count=34_567,
    )
    make_import(products_csv(), status=Import.Status.FAILED, failure_message="The file has a header but no rows.")

    # When a clerk opens the list
    listing = client.get(reverse("admin:orders_import_changelist")).content.decode()

    # Then the counts read with separators and the failure says why
    assert '<td class="field-rows">1,234,567</td>' in listing
    assert '<td class="field-created">1,200,000</td>' in listing
    assert '<td class="field-updated">34,567</td>' in listing
    assert '<td class="field-failure">The file has a header but no rows.</td>' in listing


def test_the_upload_form_picks_csv_files_and_offers_a_sample_that_imports_cleanly(
    client, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a clerk on the upload form
    staff(client, "run_import")
    form = client.get(reverse(ADD_URL)).content.decode()

    # Then its file picker asks for .csv files, and it links a sample file
    assert 'accept=".csv,text/csv"' in form
    sample_url = reverse("admin:orders_import_sample")
    assert f'<a href="{sample_url}" download>Download a sample file</a>' in form

    # When they download the sample and upload it as it is
    sample = client.get(sample_url)
    assert sample["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="products-sample.csv"' in sample["Content-Disposition"]
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, sample.content, name="products-sample.csv")
    perform_jobs()

    # Then it imports without an error
    product_import = Import.objects.get()
    assert (product_import.status, product_import.created_count, product_import.error_count) == ("completed", 4, 0)


def test_the_sample_is_not_for_staff_without_import_permissions(client):
    login_staff(client)
    assert client.get(reverse("admin:orders_import_sample")).status_code == 403


def test_the_list_shows_the_file_by_the_name_it_was_uploaded_with(client, jobs, django_capture_on_commit_callbacks):
    # Given two uploads of files with the same name, one with spaces and accents in it
    staff(client, "run_import")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            upload(client, products_csv("MUG-1,Mug,7.50,4"), name="Catalogue été 2026.csv")

    # When a clerk opens the list
    listing = client.get(reverse("admin:orders_import_changelist")).content.decode()

    # Then both show the name as uploaded, though storage renamed its copies
    assert listing.count('<td class="field-file_name">Catalogue été 2026.csv</td>') == 2
    assert len(set(Import.objects.values_list("file", flat=True))) == 2
