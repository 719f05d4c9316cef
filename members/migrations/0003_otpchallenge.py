"""One-time codes move here from apps_auth, beside the member they authenticate, keeping their
table (`apps_auth_otpchallenge`), so nothing in the database changes."""

import django.db.models.deletion
from django.db import migrations, models

import members.models


def relabel(old: str, new: str):
    def move_content_type(apps, schema_editor):
        """Permissions and admin history follow the model to its app."""
        types = apps.get_model("contenttypes", "ContentType").objects.using(
            schema_editor.connection.alias
        )
        if not types.filter(app_label=new, model="otpchallenge").exists():
            types.filter(app_label=old, model="otpchallenge").update(app_label=new)

    return move_content_type


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0004_otpchallenge_moves_to_members"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("members", "0002_member_member_email_member_member_phone"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OtpChallenge",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("challenge_id", models.CharField(default=members.models.new_challenge_id, max_length=40, unique=True)),
                        ("channel", models.CharField(choices=[("email", "Email"), ("sms", "SMS")], max_length=5)),
                        ("destination_masked", models.CharField(max_length=254)),
                        ("code_hash", models.CharField(max_length=64)),
                        ("expires_at", models.DateTimeField()),
                        ("failed_attempts", models.PositiveSmallIntegerField(default=0)),
                        ("used_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("app", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="apps_auth.app")),
                        ("member", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="otp_challenges", to="members.member")),
                    ],
                    options={
                        "verbose_name": "OTP challenge",
                        "db_table": "apps_auth_otpchallenge",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["member", "created_at"], name="otp_member_recent")],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel("apps_auth", "members"), relabel("members", "apps_auth")),
    ]
