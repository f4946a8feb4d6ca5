"""The project's settings without the JobHistory middleware: the no-op benchmark's baseline for its cost."""

from config.settings import *  # noqa: F403
from config.settings import DRAMATIQ_BROKER

DRAMATIQ_BROKER = {
    **DRAMATIQ_BROKER,
    "MIDDLEWARE": [name for name in DRAMATIQ_BROKER["MIDDLEWARE"] if not name.endswith(".JobHistory")],
}
