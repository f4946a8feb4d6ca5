"""Stock adjustments and their audits, without a broker."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from orders.errors import InvalidRequest, OutOfStock
from orders.models import InventoryAudit, OrderItem, Product
from orders.services.inventory import inventory_adjust
from tests.orders.factories import make_order, make_product

pytestmark = pytest.mark.django_db


def test_an_adjustment_changes_stock_and_writes_its_audit():
    product = make_product(stock=5)
    audit = inventory_adjust(product_id=product.pk, change=-3, reason="adjustment", note="damaged")
    product.refresh_from_db()
    assert product.stock == 2
    assert (audit.change, audit.stock_after, audit.reason, audit.note) == (-3, 2, "adjustment", "damaged")


def test_an_adjustment_below_zero_is_refused_and_changes_nothing():
    product = make_product(sku="MUG-1", stock=2)
    with pytest.raises(OutOfStock, match=r"MUG-1: stock 2 cannot change by -3 \(it would be -1\)"):
        inventory_adjust(product_id=product.pk, change=-3, reason="adjustment")
    product.refresh_from_db()
    assert product.stock == 2
    assert not InventoryAudit.objects.exists()


def test_the_same_idempotency_key_applies_once():
    product = make_product(stock=0)
    first = inventory_adjust(product_id=product.pk, change=4, reason="restock", idempotency_key="k1")
    again = inventory_adjust(product_id=product.pk, change=4, reason="restock", idempotency_key="k1")
    product.refresh_from_db()
    assert product.stock == 4
    assert first.pk == again.pk
    assert InventoryAudit.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "reason", "message"),
    [
        (0, "restock", "non-zero whole number, got 0"),
        ("3", "restock", "non-zero whole number, got '3'"),
        (True, "restock", "non-zero whole number, got True"),
        (2, "gift", "unknown reason 'gift'"),
    ],
)
def test_nonsense_adjustments_are_refused_with_a_clear_message(change, reason, message):
    product = make_product(stock=1)
    with pytest.raises(InvalidRequest, match=message):
        inventory_adjust(product_id=product.pk, change=change, reason=reason)


def test_the_database_itself_refuses_negative_stock_and_non_positive_quantities():
    product = make_product(stock=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock=-1)
    order = make_order(items=[])
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderItem.objects.create(order=order, product=product, quantity=-2, unit_price=product.price)


def test_the_database_refuses_a_repeated_audit_key_and_takes_any_number_of_audits_without_one():
    product = make_product(stock=0)
    InventoryAudit.objects.create(product=product, change=1, stock_after=1, reason="restock", idempotency_key="k1")
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryAudit.objects.create(product=product, change=1, stock_after=2, reason="restock", idempotency_key="k1")
    InventoryAudit.objects.bulk_create(
        InventoryAudit(product=product, change=1, stock_after=2 + n, reason="import") for n in range(3)
    )
    assert InventoryAudit.objects.filter(idempotency_key=None).count() == 3


def test_an_audited_product_cannot_be_deleted():
    # The audit's product is kept by the ORM, not by a foreign key in the database
    product = make_product(stock=0)
    inventory_adjust(product_id=product.pk, change=2, reason="restock")
    with pytest.raises(ProtectedError):
        product.delete()
    assert Product.objects.filter(pk=product.pk).exists()
