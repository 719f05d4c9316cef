"""The back office's roles, as groups with Django permissions. Kept in step by `migrate`."""

from django.contrib.auth.models import Group, Permission

VIEW_MODELS = [
    ("apps_auth", "app"),
    ("cards", "card"),
    ("members", "member"),
    ("cashback", "wallet"),
    ("cashback", "ledgerentry"),
]

ROLES = {
    # Answers members' questions and corrects mistakes; a large correction waits for another
    # member of Support to approve it.
    "Support": [("cashback", "adjust_wallet"), ("cashback", "view_adjustmentrequest")],
    # Reports the liability and reconciles.
    "Finance": [("cashback", "export_ledger"), ("cashback", "view_dashboard")],
}


def roles_ensure(**kwargs) -> None:
    """Creates the Support and Finance groups and gives each exactly its permissions."""
    views = [(app, f"view_{model}") for app, model in VIEW_MODELS]
    for name, extra in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in views + extra
        ]
        group.permissions.set(wanted)
