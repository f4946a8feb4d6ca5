"""Invariants of the job platform: callbacks once, crash loops stopped, dead letters explained, nothing lost or left."""

from __future__ import annotations

from collections import Counter

from chaos.evidence import JobLog, Journal
from chaos.invariants import Check, examples

MAX_CRASHES = 3


def callbacks_once(journal: Journal, log: JobLog) -> Check:
    """Each finished batch sent one ``on_complete``, and one ``on_success`` if none of its jobs failed, never else."""
    from workers.models import Batch, BatchJob

    batches = list(Batch.objects.exclude(on_complete="", on_success=""))
    wanted = Counter()
    for batch in batches:
        wanted[batch.on_complete] += batch.on_complete != "" and batch.finished_at is not None
        wanted[batch.on_success] += batch.on_success != "" and batch.status == Batch.Status.SUCCEEDED
    wanted.pop("", None)
    # A callback is one message (the outbox may hand the same message over twice, never a second
    # one) that ran to its end. A worker killed between a job's end and its acknowledgement runs
    # it again: that is how every job is delivered (at least once), so it is a figure here.
    finished = {actor: log.finished.get(actor, Counter()) for actor in wanted}
    ran = {actor: len(messages) for actor, messages in finished.items()}
    twice = sum(1 for messages in finished.values() for count in messages.values() if count > 1)
    # The counters follow the job rows, and a finished batch has no pending job.
    miscounted = [
        b.pk
        for b in batches
        if b.finished_at is None
        or (b.total, b.succeeded, b.failed, b.cancelled)
        != (
            BatchJob.objects.filter(batch=b).count(),
            *(
                BatchJob.objects.filter(batch=b, status=status).count()
                for status in ("succeeded", "failed", "cancelled")
            ),
        )
    ]
    outcomes = Counter(b.status for b in batches)
    figures = (
        f"{len(batches)} batches with callbacks ({', '.join(f'{s} {n}' for s, n in sorted(outcomes.items()))}); "
        f"callback messages run, by actor: {ran}, expected {dict(wanted)}; ran to their end more than once {twice}; "
        f"batches unfinished or miscounted {len(miscounted)}"
    )
    ok = ran == dict(wanted) and not miscounted and bool(batches)
    return Check("each batch callback run once", ok, figures + examples(miscounted))


def crash_loops_dead_lettered(journal: Journal, log: JobLog) -> Check:
    """Each poison job is a dead letter "crashed" after ``max_crashes`` starts in a row, and never starts again.

    The starts are the job log's; a start cut short by another job's crash before its line was
    written is not counted, so fewer than ``max_crashes`` may show where two poison jobs ran together.
    """
    from workers.models import DeadLetter

    poison = [step["message_id"] for step in journal.of("poison")]
    letters = set(DeadLetter.objects.filter(reason="crashed").values_list("message_id", flat=True))
    loops = {mid: log.crash_loop(mid) for mid in poison}
    wrong = [mid for mid, (before, after) in loops.items() if mid not in letters or before > MAX_CRASHES or after]
    figures = (
        f"{len(poison)} poison jobs, starts in a row before the dead letter {[b for b, _ in loops.values()]} "
        f"(max_crashes {MAX_CRASHES}), starts after it {[a for _, a in loops.values()]}, "
        f"all starts {[log.starts(mid) for mid in poison]}"
    )
    return Check(
        "every crash-looping job dead-lettered as crashed", not wrong and bool(poison), figures + examples(wrong)
    )


def only_crash_loops_crashed(journal: Journal, log: JobLog) -> Check:
    """No other job is dead-lettered as "crashed": a job that never took its worker down must not be failed for it.

    A job running beside a poison job dies with it; if the two keep being put back and fetched
    together, the bystander reaches ``max_crashes`` too.
    """
    from workers.models import DeadLetter

    poison = {step["message_id"] for step in journal.of("poison")}
    bystanders = list(DeadLetter.objects.filter(reason="crashed").exclude(message_id__in=poison))
    figures = ", ".join(
        f"{letter.actor_name} {letter.message_id} (job log: {log.starts(letter.message_id)} start(s))"
        for letter in bystanders[:5]
    )
    return Check(
        "no job dead-lettered as crashed but the crash-looping ones",
        not bystanders,
        f"{len(bystanders)} other jobs dead-lettered as crashed" + (f": {figures}" if figures else ""),
    )


def dead_letters_have_reasons(journal: Journal) -> Check:
    from workers.models import DeadLetter

    reasons = Counter(DeadLetter.objects.values_list("reason", "actor_name"))
    blank = sum(count for (reason, _), count in reasons.items() if not reason)
    figures = ", ".join(f"{actor} {reason} {count}" for (reason, actor), count in sorted(reasons.items())) or "none"
    return Check("every dead letter has a reason", blank == 0, figures)


def probes_took_effect(journal: Journal, store) -> Check:
    from workers.models import DeadLetter

    sent, unsent = journal.probe_keys()
    runs = {key: store.llen(key) for key in sent}
    dead = {letter["message"]["args"][0] for letter in DeadLetter.objects.filter(actor_name="noop").values("message")}
    lost = [key for key, count in runs.items() if count == 0 and key not in dead]
    twice = sum(1 for count in runs.values() if count > 1)
    landed = sum(1 for key in unsent if store.llen(key))
    figures = (
        f"{len(sent)} probes sent, took effect {sum(1 for c in runs.values() if c)}, dead letters "
        f"{len(dead & set(sent))}, lost {len(lost)}; ran more than once {twice}; sends refused {len(unsent)} "
        f"(of which ran anyway {landed})"
    )
    return Check("every probe took effect or is a dead letter", not lost, figures + examples(lost))


def nothing_left(journal: Journal, leftovers: dict[str, int]) -> Check:
    from workers.models import OutboxMessage

    outbox = OutboxMessage.objects.count()
    figures = ", ".join(f"{name} {count}" for name, count in leftovers.items()) + f", outbox {outbox}"
    return Check("no message left behind", not any(leftovers.values()) and outbox == 0, figures)
