"""Signal receivers of the orders app: an import's uploaded file goes when the import does."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from orders.models import Import


@receiver(post_delete, sender=Import, dispatch_uid="orders.import_file_delete")
def import_file_delete(sender, instance: Import, **kwargs) -> None:
    """Delete a deleted import's file from storage, once the deletion has committed."""
    if instance.file:
        transaction.on_commit(partial(instance.file.storage.delete, instance.file.name))
