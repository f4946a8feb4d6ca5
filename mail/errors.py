"""What may go wrong with a mail; the platform decides how it is retried."""


class MailBeingSent(Exception):
    """Another attempt claimed this mail moments ago and may be sending it; retried once its claim has lapsed."""
