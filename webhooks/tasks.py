"""The worker's periodic job of its own (`manage.py worker` runs it): the recovery of jobs held
by a dead worker. Deliveries are not jobs: the worker finds them due in their table
(`webhooks.dispatch`)."""

import logging

from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status

logger = logging.getLogger(__name__)


@app.periodic(cron=f"* * * * * */{settings.WORKER_RECOVERY_SECONDS}", periodic_id="stalled")
@app.task(name="worker_jobs_recover", queueing_lock="worker_jobs_recover", pass_context=True)
async def worker_jobs_recover(context: JobContext, timestamp: int) -> None:
    """Puts back in the queue the jobs that a worker silent for `WORKER_STALLED_SECONDS` (killed,
    its machine gone) held: procrastinate's stalled-job recovery. A periodic job's whose next
    run is queued already is dropped instead."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.WORKER_STALLED_SECONDS
    )
    for job in stalled:
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            # A periodic job whose next run is queued already (its queueing lock): that run
            # does what this one would have.
            await manager.finish_job(job, status=Status.ABORTED, delete_job=True)
            logger.warning(
                "job %s held by a stalled worker: dropped, its next run is queued", job.call_string
            )
        else:
            logger.warning("job %s held by a stalled worker: queued again", job.call_string)


@app.task(name="webhook_deliver")
def webhook_deliver(delivery_id: int) -> None:
    """Jobs that servers of an earlier release queued for each delivery, during a rolling
    deployment: nothing to do, the delivery waits, due, in its row, and the worker's deliveries
    attempt it (`webhooks.dispatch`)."""
