"""The shop's records, one module per concept; every model is importable from ``orders.models``."""

from orders.models.customers import Customer
from orders.models.datasets import DATASET_CHUNK_MAX, Dataset
from orders.models.imports import Import, ImportRowError
from orders.models.inventory import InventoryAudit, StockAdjustment
from orders.models.orders import Order, OrderItem
from orders.models.payments import Payment, SandboxCharge
from orders.models.price_batches import PriceBatch, PriceBatchItem
from orders.models.products import Product

__all__ = [
    "DATASET_CHUNK_MAX",
    "Customer",
    "Dataset",
    "Import",
    "ImportRowError",
    "InventoryAudit",
    "Order",
    "OrderItem",
    "Payment",
    "PriceBatch",
    "PriceBatchItem",
    "Product",
    "SandboxCharge",
    "StockAdjustment",
]
