"""The shop's admin, one module per concept; importing this package registers every model's admin."""

from orders.admin import customers, datasets, imports, orders, price_batches, products

__all__ = ["customers", "datasets", "imports", "orders", "price_batches", "products"]
