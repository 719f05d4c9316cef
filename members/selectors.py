from django.db.models import Q

from apps_auth.models import App
from core.errors import NotFound
from members.errors import MemberConflict
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


def member_match(*, app: App, email: str | None = None, phone: str | None = None) -> Member | None:
    """The app's member this email and this phone name: the one either names, in one query;
    None when neither does. Raises `MemberConflict` when they name two different members."""
    if not (email and phone):
        return member_find(app=app, email=email, phone=phone)
    found = list(Member.objects.filter(app=app).filter(Q(email=email) | Q(phone=phone))[:2])
    if len(found) == 2:
        by_email, by_phone = found if found[0].email == email.lower() else found[::-1]
        raise MemberConflict(
            details={"email_member_id": by_email.pk, "phone_member_id": by_phone.pk}
        )
    return found[0] if found else None
