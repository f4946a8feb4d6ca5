"""Every console page, in the order of the console's tabs; importing this module registers them."""
# ruff: noqa: I001 - the order of the imports is the order of the tabs

from workers.console import overview  # noqa: F401
from workers.console import queues  # noqa: F401
from workers.console import running  # noqa: F401
from workers.console import limits  # noqa: F401
from workers.console import scheduled  # noqa: F401
from workers.console import workers_page  # noqa: F401
from workers.console import history  # noqa: F401
from workers.console import metrics  # noqa: F401
from workers.console import schedule  # noqa: F401
