"""Members' and one-time codes' unique constraints and indexes lead with the app, as their
distribution by app needs (Citus); a code is unique within its app."""

import django.db.models.deletion
import members.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0007_indexes_lead_with_the_app"),
        ("members", "0005_otpchallenge_destination_digest"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="member",
            name="member_email",
        ),
        migrations.RemoveIndex(
            model_name="member",
            name="member_phone",
        ),
        migrations.RemoveIndex(
            model_name="otpchallenge",
            name="otp_member_recent",
        ),
        migrations.AlterField(
            model_name="otpchallenge",
            name="challenge_id",
            field=models.CharField(default=members.models.new_challenge_id, max_length=40),
        ),
        migrations.AlterField(
            model_name="otpchallenge",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="otp_challenges",
                to="members.member",
            ),
        ),
        migrations.AddIndex(
            model_name="member",
            index=models.Index(fields=["app", "email"], name="member_email"),
        ),
        migrations.AddIndex(
            model_name="otpchallenge",
            index=models.Index(fields=["app", "member", "created_at"], name="otp_member_recent"),
        ),
        migrations.AddConstraint(
            model_name="otpchallenge",
            constraint=models.UniqueConstraint(
                fields=("app", "challenge_id"), name="otp_challenge_per_app"
            ),
        ),
    ]
