"""A member's identity is enforced by the database: email lower-cased and phone in E.164, each
unique per app (the email case-insensitively, by a unique index on lower(email)).

Existing rows are normalised first. When two members of one app turn out to share an email or a
phone once normalised, or a stored phone is not a valid number, nothing is merged or changed:
the migration stops and names them, so that an operator decides (gives each its own identity,
or merges them) and migrates again."""

import re
from collections import defaultdict

import django.db.models.functions.text
import phonenumbers
from django.conf import settings
from django.db import migrations, models

import members.models
import phonenumber_field.modelfields


class IdentityConflict(Exception):
    pass


E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _e164(phone: str, region: str) -> str | None:
    """The phone in E.164; one already written so is kept as it is (the library's metadata
    changes between releases, and the API checked it before writing it)."""
    if E164.match(phone):
        return phone
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identities(apps, schema_editor):
    Member = apps.get_model("members", "Member")
    members = Member.objects.using(schema_editor.connection.alias)
    region = settings.PHONENUMBER_DEFAULT_REGION
    emails, phones = defaultdict(list), defaultdict(list)
    problems, changes = [], {}
    for pk, app_id, email, phone in members.order_by("pk").values_list(
        "pk", "app_id", "email", "phone"
    ):
        # Blank values are no identity: they are stored as NULL, like a missing one.
        new_email = email.lower() if email else None
        new_phone = None
        if phone:
            new_phone = _e164(phone, region)
            if new_phone is None:
                problems.append(f"member {pk}: phone {phone!r} is not a valid number (region {region})")
        if new_email:
            emails[app_id, new_email].append(pk)
        if new_phone:
            phones[app_id, new_phone].append(pk)
        if (new_email, new_phone) != (email, phone):
            changes[pk] = {"email": new_email, "phone": new_phone}
    for label, seen in (("email", emails), ("phone", phones)):
        for (app_id, value), pks in seen.items():
            if len(pks) > 1:
                ids = ", ".join(map(str, pks))
                problems.append(f"app {app_id}: members {ids} share the {label} {value}")
    if problems:
        raise IdentityConflict(
            "Members' emails and phones could not be normalised (lower-cased email, E.164 phone) "
            "without merging members; nothing was changed. Give each member its own email and "
            "phone, or merge them, then run migrate again:\n  " + "\n  ".join(problems)
        )
    for pk, fields in changes.items():
        members.filter(pk=pk).update(**fields)


class Migration(migrations.Migration):
    dependencies = [("members", "0003_otpchallenge")]

    operations = [
        migrations.RunPython(normalise_identities, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="member", name="member_email_per_app"),
        migrations.AlterField(
            model_name="member",
            name="email",
            field=members.models.LowercaseEmailField(blank=True, max_length=254, null=True),
        ),
        migrations.AlterField(
            model_name="member",
            name="phone",
            field=phonenumber_field.modelfields.PhoneNumberField(blank=True, help_text="E.164", max_length=20, null=True, region=None),
        ),
        migrations.AddConstraint(
            model_name="member",
            constraint=models.UniqueConstraint(models.F("app"), django.db.models.functions.text.Lower("email"), condition=models.Q(("email__isnull", False)), name="member_email_per_app", violation_error_message="This app already has a member with this email."),
        ),
        migrations.AddConstraint(
            model_name="member",
            constraint=models.CheckConstraint(condition=models.Q(("email", django.db.models.functions.text.Lower("email"))), name="member_email_lower"),
        ),
        migrations.AddConstraint(
            model_name="member",
            constraint=models.CheckConstraint(condition=models.Q(("phone__regex", "^\\+[1-9][0-9]{6,14}$")), name="member_phone_e164"),
        ),
        migrations.AlterConstraint(
            model_name="member",
            name="member_phone_per_app",
            constraint=models.UniqueConstraint(condition=models.Q(("phone__isnull", False)), fields=("app", "phone"), name="member_phone_per_app", violation_error_message="This app already has a member with this phone."),
        ),
    ]
