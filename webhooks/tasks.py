"""The worker's jobs for webhooks (`manage.py worker` runs them): one attempt at a delivery, the
sweep for deliveries whose job was lost, and the recovery of jobs held by a dead worker."""

import logging

from django.conf import settings
from django.utils import timezone
from procrastinate import JobContext
from procrastinate.contrib.django import app

from webhooks.services import DELIVER_TASK, webhook_deliveries_sweep, webhook_delivery_attempt

logger = logging.getLogger(__name__)


@app.task(name=DELIVER_TASK, pass_context=True)
def webhook_deliver(context: JobContext, delivery_id: int) -> None:
    webhook_delivery_attempt(delivery_id=delivery_id, job_id=context.job.id)


@app.periodic(cron="* * * * *", periodic_id="every-minute")
@app.task(name="webhook_deliveries_sweep", queueing_lock="webhook_deliveries_sweep")
def webhook_sweep(timestamp: int) -> None:
    webhook_deliveries_sweep(as_of=timezone.now())


@app.periodic(cron=f"* * * * * */{settings.WORKER_RECOVERY_SECONDS}", periodic_id="stalled")
@app.task(name="worker_jobs_recover", queueing_lock="worker_jobs_recover", pass_context=True)
async def worker_jobs_recover(context: JobContext, timestamp: int) -> None:
    """Puts back in the queue the jobs that a worker silent for `WORKER_STALLED_SECONDS` (killed,
    its machine gone) held: procrastinate's stalled-job recovery. A delivery cut short this
    way is attempted again by its own job (at least once)."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.WORKER_STALLED_SECONDS
    )
    for job in stalled:
        logger.warning("job %s held by a stalled worker: queued again", job.call_string)
        await manager.retry_job(job)
