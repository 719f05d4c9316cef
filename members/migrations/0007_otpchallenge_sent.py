"""One-time codes record whether they were sent for real (`sent`): a live-mode app's are, a
test-mode app's are not, and only sent codes count toward the ceiling across apps, on an index
of them alone.

An existing database keeps every code; each is marked by its app's mode now (a test-mode app's
code was never sent). The column's database default counts a code written by the release
before while this one is deployed, as that release counted every code. The index is built
without blocking the codes' writes (concurrently, outside a transaction) under a passing name,
and takes the old one's name once the old one is gone, so that the ceiling's count is never
without an index.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


def mark_test_mode_codes_unsent(apps, schema_editor):
    OtpChallenge = apps.get_model("members", "OtpChallenge")
    OtpChallenge.objects.using(schema_editor.connection.alias).exclude(app__mode="live").update(
        sent=False
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("apps_auth", "0007_indexes_lead_with_the_app"),
        ("members", "0006_indexes_lead_with_the_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="otpchallenge",
            name="sent",
            field=models.BooleanField(db_default=True),
        ),
        migrations.RunPython(
            mark_test_mode_codes_unsent, migrations.RunPython.noop, atomic=True, elidable=False
        ),
        AddIndexConcurrently(
            model_name="otpchallenge",
            index=models.Index(
                condition=models.Q(sent=True),
                fields=["destination_digest", "created_at"],
                name="otp_destination_sent",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="otpchallenge",
            name="otp_destination_recent",
        ),
        migrations.RenameIndex(
            model_name="otpchallenge",
            new_name="otp_destination_recent",
            old_name="otp_destination_sent",
        ),
    ]
