"""The settings the tests run with: the project's own, DEBUG off as in production, with one-time
codes delivered where a test can read them rather than to the server's output, which production
settings refuse: email to Django's test outbox (as pytest-django would anyway), SMS to a file."""

import os
import tempfile

os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
os.environ["CASHBACK_SMS_BACKEND"] = "members.sms.FileSmsBackend"
os.environ["CASHBACK_SMS_FILE_PATH"] = os.path.join(tempfile.gettempdir(), "cashback-test-sms")

from config.settings import *  # noqa: F403

# A replica alias on the test database itself, for the router's tests; reads use it only where
# a test turns REPLICA_READS on.
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}  # noqa: F405
REPLICA_READS = False

# The webhook tests' receivers listen on 127.0.0.1 for test-mode apps, which may post to loopback
# only where this is on (by default while DEBUG is, and these settings keep DEBUG off as in
# production); the tests that prove the refusal turn it off.
CASHBACK_WEBHOOK_ALLOW_LOOPBACK = True
