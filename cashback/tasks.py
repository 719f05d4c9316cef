"""Periodic jobs of the cashback lifecycle, run by the worker (every minute unless
`CASHBACK_LIFECYCLE_CRON` says otherwise): held cashback released when due, lots expired and
their warnings sent, members whose tier's retention ended moved to what their spend supports."""

import logging

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from cashback.services import cashback_expire_due, cashback_release_due
from cashback.services.tiers import cashback_tiers_review

logger = logging.getLogger(__name__)


@app.periodic(cron=settings.CASHBACK_LIFECYCLE_CRON, periodic_id="lifecycle")
@app.task(name="cashback_release_due", queueing_lock="cashback_release_due")
def cashback_release(timestamp: int) -> None:
    result = cashback_release_due(as_of=timezone.now())
    if result.released:
        logger.info("Released %s held earnings (%s).", result.released, result.amount)


@app.periodic(cron=settings.CASHBACK_LIFECYCLE_CRON, periodic_id="lifecycle")
@app.task(name="cashback_expire_due", queueing_lock="cashback_expire_due")
def cashback_expire(timestamp: int) -> None:
    result = cashback_expire_due(as_of=timezone.now())
    if result.expired or result.warned:
        logger.info(
            "Expired %s lots (%s); warned of %s expiring.",
            result.expired,
            result.amount,
            result.warned,
        )


@app.periodic(cron=settings.CASHBACK_LIFECYCLE_CRON, periodic_id="lifecycle")
@app.task(name="cashback_tiers_review", queueing_lock="cashback_tiers_review")
def cashback_tiers(timestamp: int) -> None:
    result = cashback_tiers_review(as_of=timezone.now())
    if result.changed:
        logger.info("Moved %s members to the tier their spend supports.", result.changed)
