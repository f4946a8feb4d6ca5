"""Every console page, in the order of the console's tabs; importing this module registers them."""

from workers.console import overview  # noqa: F401
from workers.console import scheduled  # noqa: F401
