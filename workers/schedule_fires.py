"""The fires of recurring jobs that are due, each sent at most once, whichever scheduler leads.

- At most once. The leader lock alone cannot promise it (a leader that stalls may wake after its
  lock was taken), so a fire is claimed first, ``SET <ns>:scheduler:fired:<job>:<fire time> NX``:
  of two schedulers racing for one fire, only the claimant sends it.
- Claim, send, and release the claim if the send fails. A send that raised is taken as not
  sent: the claim is released (only if still ours) and the fire tried again with back-off, so a
  broker that is down delays a fire instead of losing it. Claiming after a successful send
  instead would let two schedulers both send before either claimed. The price of claiming
  first: a scheduler killed between its claim and its send loses that fire, which nobody else
  may send (at most once); and if the release fails too (Redis went away), the claim stays
  ours and this process sends the fire when it leads again.
- Paused jobs (``workers.schedule_pauses``): a paused job's fires are skipped, not owed, and
  recorded as its last run with the detail "paused"; resuming sends its next fire.
- Catch-up. On leading, each job's latest fire that is unclaimed and within the catch-up window
  is sent once; older misses are logged and skipped, so a job due every minute catches up one
  run. The job's last recorded fire (``workers.schedules``) says where its misses begin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

import redis
from django.utils import timezone

from workers.leader import LeaderLock
from workers.schedules import PAUSED, RecurringJob, last_run_record, last_runs, latest_fire
from workers.uniqueness import DuplicateJob

logger = logging.getLogger(__name__)

# Claim a fire for this token; answer who holds the claim (this token again for a fire it claimed
# before and could not send).
CLAIM = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return ARGV[1] end
return redis.call('get', KEYS[1])
"""

#: Claims outlive the catch-up window by a day at least, so a fire sent once is never claimed afresh.
MIN_CLAIM_TTL = timedelta(days=2)
#: The longest wait, in seconds, before a failed send is tried again.
MAX_SEND_BACKOFF = 30.0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class Fires:
    """What the leading scheduler sends: each job's due fire, claimed, sent once, and recorded.

    Parameters:
      client(redis.Redis): Where the claims and last runs live.
      jobs(list[RecurringJob]): What to send and when.
      token(str): The scheduler's own, which its claims hold.
      catch_up(timedelta): How old a missed fire may be and still be sent on leading.
      namespace(str): Prefix of the Redis keys.
      pauses(Callable): Answers the names of the paused jobs; asked every round, so it caches.
      longest_wait(float): The most seconds ``due`` ever asks to wait.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        jobs: list[RecurringJob],
        token: str,
        catch_up: timedelta,
        namespace: str,
        pauses: Callable[[], Collection[str]],
        longest_wait: float,
    ) -> None:
        self.client, self.jobs, self.token, self.namespace = client, jobs, token, namespace
        self.catch_up = catch_up
        self.pauses = pauses
        self.longest_wait = longest_wait
        self.claim_ttl = max(MIN_CLAIM_TTL, catch_up + timedelta(days=1))
        self.claim_script = client.register_script(CLAIM)
        self.release_script = client.register_script(LeaderLock.RELEASE)
        self.settled: dict[str, datetime] = {}  # per job: its latest fire sent, claimed by another, or skipped
        self.failures: dict[str, int] = {}  # per job: failed sends in a row
        self.retry_at: dict[str, datetime] = {}

    def settle_recorded(self) -> None:
        """Take the fires recorded by whoever led meanwhile as settled: misses are counted from there."""
        for name, run in last_runs(self.client, namespace=self.namespace).items():
            # A fire whose send failed is still owed, so it is settled only up to just before it.
            settled = run.sent or run.detail == PAUSED
            known = run.fire_time if settled else run.fire_time - timedelta(microseconds=1)
            if name not in self.settled or known > self.settled[name]:
                self.settled[name] = known

    def send_due(self, *, catching_up: bool, may_send: Callable[[], bool]) -> tuple[float, list[str]]:
        """Send every job's due fire while ``may_send`` says so; the seconds until the next one, and the
        jobs caught up."""
        now = timezone.now()
        floor = now - self.catch_up
        caught_up = []
        paused = self.pauses()
        for job in self.jobs:
            if not may_send():
                return 0.0, caught_up
            if self._fire_job(job, now=now, floor=floor, catching_up=catching_up, paused=job.name in paused):
                caught_up.append(job.name)
        return self._wait(now), caught_up

    def _fire_job(self, job: RecurringJob, *, now: datetime, floor: datetime, catching_up: bool, paused: bool) -> bool:
        known = self.settled.get(job.name)
        if catching_up and known is not None and known < floor:
            if missed := latest_fire(job.trigger, after=known, now=floor):
                logger.warning(
                    "%s: the run due at %s was missed and is older than the catch-up window (%s); skipped",
                    job.name,
                    missed.isoformat(),
                    self.catch_up,
                )
                known = self.settled[job.name] = missed
        after = max(known, floor) if known is not None else floor
        first = job.trigger.get_next_fire_time(after, after)
        if first is None or first > now or now < self.retry_at.get(job.name, now):
            return False
        fire = latest_fire(job.trigger, after=after, now=now)
        if known is not None and first < fire:
            logger.info(
                "%s: the runs due from %s until before %s were missed; only the latest is sent",
                job.name,
                first.isoformat(),
                fire.isoformat(),
            )
        if paused:
            logger.info("%s due at %s: paused, skipped", job.name, fire.isoformat())
            self._settle(job, fire, sent=False, detail=PAUSED)
            return False
        return self._send(job, fire, catching_up=catching_up)

    def _send(self, job: RecurringJob, fire: datetime, *, catching_up: bool) -> bool:
        key = f"{self.namespace}:scheduler:fired:{job.name}:{_iso(fire)}"
        owner = self.claim_script(keys=[key], args=[self.token, int(self.claim_ttl.total_seconds())]).decode()
        if owner != self.token:
            logger.info("%s due at %s: sent already by scheduler %s", job.name, fire.isoformat(), owner)
            self.settled[job.name] = fire
            return False
        try:
            message_id = job.send(fire)
        except DuplicateJob as error:
            # Its previous run is still queued or running: dropped on purpose, so the claim stays.
            logger.info(
                "%s due at %s: not sent, its previous run is still queued or running", job.name, fire.isoformat()
            )
            self._settle(job, fire, sent=False, detail=f"DuplicateJob: {error}")
            return False
        except Exception as error:
            failures = self.failures[job.name] = self.failures.get(job.name, 0) + 1
            delay = min(2.0 ** (failures - 1), MAX_SEND_BACKOFF)
            self.retry_at[job.name] = timezone.now() + timedelta(seconds=delay)
            detail = f"{type(error).__name__}: {error}"
            logger.warning(
                "Could not send %s due at %s (%s); trying again in %g s", job.name, fire.isoformat(), detail, delay
            )
            self.release_script(keys=[key], args=[self.token])
            self._record(job, fire, sent=False, detail=detail)
            return False
        self._settle(job, fire, sent=True, detail=message_id or "")
        verb = "Caught up" if catching_up else "Sent"
        logger.info("%s %s due at %s (message %s)", verb, job.name, fire.isoformat(), message_id)
        return True

    def _settle(self, job: RecurringJob, fire: datetime, *, sent: bool, detail: str) -> None:
        # Settled before the record is written: if Redis fails now, the fire is not sent twice.
        self.settled[job.name] = fire
        self.failures.pop(job.name, None)
        self.retry_at.pop(job.name, None)
        self._record(job, fire, sent=sent, detail=detail)

    def _record(self, job: RecurringJob, fire: datetime, *, sent: bool, detail: str) -> None:
        last_run_record(self.client, namespace=self.namespace, name=job.name, fire_time=fire, sent=sent, detail=detail)

    def _wait(self, now: datetime) -> float:
        upcoming = [fire for job in self.jobs if (fire := job.trigger.get_next_fire_time(now, now))]
        upcoming += self.retry_at.values()
        if not upcoming:
            return self.longest_wait
        seconds = (min(upcoming) - timezone.now()).total_seconds()
        return min(self.longest_wait, max(seconds, 0.01))
