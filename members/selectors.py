from apps_auth.models import App
from core.errors import NotFound
from members.models import Member


def member_get(*, app: App, member_id: int) -> Member:
    """The app's member. Raises `NotFound` for an unknown id or another app's member."""
    member = Member.objects.of_app(app_id=app.pk, member_id=member_id)
    if member is None:
        raise NotFound("Member not found.")
    return member


def member_find(*, app: App, email: str | None = None, phone: str | None = None) -> Member | None:
    """The app's member with this email (any case), else this phone (any format)."""
    return Member.objects.of_app(app_id=app.pk, email=email, phone=phone)
