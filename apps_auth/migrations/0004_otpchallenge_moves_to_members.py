"""One-time codes belong to member authentication: the model leaves for members, which keeps
its table (`apps_auth_otpchallenge`); nothing in the database changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("apps_auth", "0003_idempotencyrecord")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OtpChallenge")],
        ),
    ]
