"""Idempotency fingerprints were a plain SHA-256 of the request, from which a PIN or a one-time
code in the body could be searched out; they are now keyed with a server secret (HMAC-SHA256 of
that digest). Kept records are re-keyed in place, so a retry sent before the upgrade still
replays after it."""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations

BATCH = 1000


def key_fingerprints(apps, schema_editor):
    IdempotencyRecord = apps.get_model("apps_auth", "IdempotencyRecord")
    key = f"idempotency:{settings.SECRET_KEY}".encode()
    records = IdempotencyRecord.objects.using(schema_editor.connection.alias)
    batch = []
    for record in records.only("pk", "request_fingerprint").iterator(chunk_size=BATCH):
        plain = record.request_fingerprint.encode()
        record.request_fingerprint = hmac.new(key, plain, hashlib.sha256).hexdigest()
        batch.append(record)
        if len(batch) == BATCH:
            records.bulk_update(batch, ["request_fingerprint"])
            batch = []
    records.bulk_update(batch, ["request_fingerprint"])


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0004_otpchallenge_moves_to_members"),
        # The records' table was made by cashback's first migrations, where the model began.
        ("cashback", "0005_idempotencyrecord_moves_to_apps_auth"),
    ]

    # Backwards, kept keys simply stop matching (a retry answers 409, never runs twice).
    operations = [migrations.RunPython(key_fingerprints, migrations.RunPython.noop)]
