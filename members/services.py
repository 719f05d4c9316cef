from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps_auth.models import App
from core.errors import InvalidInput, NotFound
from core.rows import fields_save
from members.errors import InvalidPin, PinLocked, PinNotSet
from members.models import Member
from members.selectors import member_find, member_get

PIN_MAX_ATTEMPTS = 5
PIN_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class MemberRef:
    """How a request names a member: by id, else email, else phone (lower-cased, E.164)."""

    member_id: int | None = None
    email: str | None = None
    phone: str | None = None
    name: str = ""


def member_resolve(*, app: App, ref: MemberRef) -> Member:
    """The app's member `ref` names: by id, else email, else phone. Raises `NotFound`."""
    if ref.member_id is not None:
        return member_get(app=app, member_id=ref.member_id)
    member = member_find(app=app, email=ref.email, phone=ref.phone)
    if member is None:
        raise NotFound("Member not found.")
    return member


def member_new_fields(*, app: App, ref: MemberRef) -> dict:
    """The fields of the member an earn creates for an unknown email or phone: that email, else
    that phone, and the name given."""
    named = {"email": ref.email} if ref.email else {"phone": ref.phone}
    return {"app": app, "name": ref.name, **named}


def member_pin_change(*, member: Member, pin: str, current_pin: str | None = None) -> Member:
    """Sets the member's PIN; changing one in force needs it, checked like a redeem's PIN.

    Raises `InvalidInput` when `current_pin` is missing, and `InvalidPin` or `PinLocked`.
    """
    if member.has_pin:
        if current_pin is None:
            raise InvalidInput(details={"current_pin": ["Required to change the PIN."]})
        member_pin_verify(member=member, pin=current_pin)
    return member_pin_set(member=member, pin=pin)


def member_pin_set(*, member: Member, pin: str) -> Member:
    member.set_pin(pin)
    member.pin_failed_attempts = 0
    member.pin_locked_until = None
    fields_save(member, "pin_hash", "pin_failed_attempts", "pin_locked_until")
    return member


def member_pin_verify(*, member: Member, pin: str) -> None:
    """Checks the PIN, counting misses in the database; 5 in a row lock it for 15 minutes.

    The count is committed before the error is raised, so a miss counts even though the request
    then fails. Raises `PinNotSet`, `PinLocked` or `InvalidPin`.
    """
    error = _pin_check_and_count(member=member, pin=pin)
    if error is not None:
        raise error


@transaction.atomic(durable=True)
def _pin_check_and_count(*, member: Member, pin: str) -> Exception | None:
    locked = Member.objects.select_for_update().get(app_id=member.app_id, pk=member.pk)
    if not locked.has_pin:
        return PinNotSet()
    now = timezone.now()
    if locked.pin_locked_until and locked.pin_locked_until > now:
        return PinLocked()
    if locked.pin_matches(pin):
        if locked.pin_failed_attempts or locked.pin_locked_until:
            locked.pin_failed_attempts = 0
            locked.pin_locked_until = None
            fields_save(locked, "pin_failed_attempts", "pin_locked_until")
        return None
    locked.pin_failed_attempts += 1
    attempts_left = PIN_MAX_ATTEMPTS - locked.pin_failed_attempts
    if attempts_left == 0:
        locked.pin_failed_attempts = 0
        locked.pin_locked_until = now + PIN_LOCK
    fields_save(locked, "pin_failed_attempts", "pin_locked_until")
    return InvalidPin(details={"attempts_left": attempts_left})
