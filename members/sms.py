"""SMS delivery for one-time codes, behind a small interface.

`CASHBACK_SMS_BACKEND` names the class. To plug a provider, write a class with the same
`send(to, body)` method that calls the provider's API and raise `SmsDeliveryError` on failure,
then point `CASHBACK_SMS_BACKEND` at it (e.g. `myproject.sms.TwilioSmsBackend`).
"""

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsDeliveryError(Exception):
    pass


class BaseSmsBackend:
    def send(self, to: str, body: str) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Writes the message to standard output, like Django's console email backend."""

    def send(self, to: str, body: str) -> None:
        print(f"SMS to {to}: {body}", flush=True)


class FileSmsBackend(BaseSmsBackend):
    """Appends each message as a line to a file in `CASHBACK_SMS_FILE_PATH`."""

    def send(self, to: str, body: str) -> None:
        directory = Path(settings.CASHBACK_SMS_FILE_PATH)
        directory.mkdir(parents=True, exist_ok=True)
        line = f"{datetime.now(UTC).isoformat()}\t{to}\t{body}\n"
        with open(directory / "messages.log", "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())


def sms_backend() -> BaseSmsBackend:
    return import_string(settings.CASHBACK_SMS_BACKEND)()
