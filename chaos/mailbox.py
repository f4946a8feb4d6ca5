"""A file-based e-mail backend whose directory comes from CHAOS_MAIL_DIR, so the campaign can count every mail sent."""

from __future__ import annotations

import os

from django.core.mail.backends.filebased import EmailBackend as FileBackend


class EmailBackend(FileBackend):
    """Django's file-based backend (one file per connection, every message written out) in ``$CHAOS_MAIL_DIR``.

    Like SMTP, writing the file is the point of no return: a worker killed after it and before
    the delivery is marked sent sends the mail again, which the campaign counts as a duplicate.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("file_path", os.environ["CHAOS_MAIL_DIR"])
        super().__init__(*args, **kwargs)
