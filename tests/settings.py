"""The settings the tests run with: the project's own, DEBUG off as in production, with one-time
codes delivered where a test can read them rather than to the server's output, which production
settings refuse: email to Django's test outbox (as pytest-django would anyway), SMS to a file."""

import os
import tempfile

os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
os.environ["CASHBACK_SMS_BACKEND"] = "members.sms.FileSmsBackend"
os.environ["CASHBACK_SMS_FILE_PATH"] = os.path.join(tempfile.gettempdir(), "cashback-test-sms")

from config.settings import *  # noqa: F403
