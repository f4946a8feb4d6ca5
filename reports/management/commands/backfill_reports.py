"""Queue the daily reports of a range of days as one batch, and show its progress until it is done."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

from reports.management.arguments import USAGE_ERROR, ended_day
from reports.services.daily import report_daily_backfill
from workers.models import Batch

#: How often the progress is read from the batch, in seconds.
POLL_INTERVAL = 0.5


class Command(BaseCommand):
    help = "Generate the daily reports from --from to --to through the workers, with a progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", required=True, help="The first day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="last", required=True, help="The last day, YYYY-MM-DD, which must have ended.")
        parser.add_argument("--force", action="store_true", help="Compute again the reports stored already.")
        parser.add_argument("--mail", action="store_true", help="Also mail each report not mailed yet.")
        parser.add_argument("--timeout", type=float, help="Stop watching after this many seconds (default: never).")
        parser.add_argument("--no-wait", action="store_true", help="Queue the batch and return at once.")

    def handle(self, *args, **options) -> None:
        first = ended_day(options["first"], option="--from")
        last = ended_day(options["last"], option="--to")
        if first > last:
            raise CommandError(
                f"--from {first.isoformat()} is after --to {last.isoformat()}; the range runs forwards",
                returncode=USAGE_ERROR,
            )
        batch = report_daily_backfill(first=first, last=last, force=options["force"], mail=options["mail"])
        self.stdout.write(f"Batch {batch.pk}: {batch.total} daily report(s) queued, {first} to {last}.")
        if options["no_wait"]:
            return
        try:
            batch = self.watch(batch, timeout=options["timeout"])
        except KeyboardInterrupt:
            self.stdout.write(f"\nStopped watching; batch {batch.pk} goes on in the workers.")
            return
        cancelled = f", {batch.cancelled} cancelled" if batch.cancelled else ""
        self.stdout.write(f"Done: {batch.succeeded} succeeded, {batch.failed} failed{cancelled}.")
        if batch.failed:
            raise CommandError(f"{batch.failed} report(s) failed; see the dead letters in the admin.")
        if batch.status == Batch.Status.CANCELLED:
            raise CommandError(f"Batch {batch.pk} was cancelled; run the command again to compute the days left.")

    def watch(self, batch: Batch, *, timeout: float | None) -> Batch:
        """Draw the batch's progress until it finishes; raise CommandError if the timeout comes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with tqdm(total=batch.total, unit="report", file=_Stream(self.stderr), ascii=True) as bar:
            while True:
                batch.refresh_from_db()
                bar.update(batch.ended - bar.n)
                if batch.finished_at is not None:
                    return batch
                if deadline is not None and time.monotonic() >= deadline:
                    raise CommandError(
                        f"Timed out with {bar.n} of {batch.total} done; "
                        f"batch {batch.pk} goes on in the workers (Jobs > Batches in the admin)."
                    )
                time.sleep(POLL_INTERVAL)


class _Stream:
    """The command's output stream as tqdm writes to it: text as it is, no colour, no line ending added."""

    def __init__(self, output: OutputWrapper) -> None:
        self.output = output

    def write(self, text: str) -> None:
        self.output.write(text, style_func=_plain, ending="")

    def flush(self) -> None:
        self.output.flush()


def _plain(text: str) -> str:
    return text
