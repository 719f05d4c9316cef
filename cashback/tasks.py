"""Periodic jobs of the cashback lifecycle, run by the worker every minute: pending cashback
released when due, lots expired and their warnings sent."""

import importlib
import logging

from django.utils import timezone
from procrastinate.contrib.django import app

logger = logging.getLogger(__name__)


def _services():
    # Imported when the job runs, not when the worker starts.
    return importlib.import_module("cashback.services")


@app.periodic(cron="* * * * *", periodic_id="every-minute")
@app.task(name="cashback_release_due", queueing_lock="cashback_release_due")
def cashback_release(timestamp: int) -> None:
    result = _services().cashback_release_due(as_of=timezone.now())
    logger.info("cashback released: %s", result)


@app.periodic(cron="* * * * *", periodic_id="every-minute")
@app.task(name="cashback_expire_due", queueing_lock="cashback_expire_due")
def cashback_expire(timestamp: int) -> None:
    result = _services().cashback_expire_due(as_of=timezone.now())
    logger.info("cashback expired: %s", result)
