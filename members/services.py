from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps_auth.models import App
from core.errors import InvalidInput, NotFound
from core.rows import fields_save
from members.errors import InvalidPin, PinLocked, PinNotSet
from members.models import Member
from members.selectors import member_get, member_match

PIN_MAX_ATTEMPTS = 5
PIN_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class MemberRef:
    """How a request names a member: by id, else by email and phone (lower-cased, E.164)."""

    member_id: int | None = None
    email: str | None = None
    phone: str | None = None
    name: str = ""

    @property
    def by_email_and_phone(self) -> bool:
        """Both given without an id: they must not name two different members."""
        return self.member_id is None and bool(self.email) and bool(self.phone)


def member_resolve(*, app: App, ref: MemberRef) -> Member:
    """The app's member `ref` names: by id, else the one its email or its phone names.
    Raises `NotFound`, and `MemberConflict` when the email and the phone name two members."""
    if ref.member_id is not None:
        return member_get(app=app, member_id=ref.member_id)
    member = member_match(app=app, email=ref.email, phone=ref.phone)
    if member is None:
        raise NotFound("Member not found.")
    return member


def member_new_fields(*, app: App, ref: MemberRef) -> dict:
    """The fields of the member an earn creates when neither its email nor its phone is the
    app's: both identifiers given, and the name."""
    return {"app": app, "name": ref.name, "email": ref.email, "phone": ref.phone}


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


def member_pin_unlock(*, member: Member) -> bool:
    """Lifts a PIN lock and forgets the wrong PINs counted so far (staff, in the back office).

    One UPDATE of a row that has something to clear: returns whether it had, so that a second
    unlock, or two at once, changes and records nothing more."""
    cleared = (
        Member.objects.filter(app_id=member.app_id, pk=member.pk)
        .exclude(pin_failed_attempts=0, pin_locked_until__isnull=True)
        .update(pin_failed_attempts=0, pin_locked_until=None)
    )
    member.pin_failed_attempts, member.pin_locked_until = 0, None
    return cleared > 0


def member_pin_check_unlocked(member: Member) -> None:
    """Raises `PinLocked` while the member's PIN is locked: no redeem of the member goes
    through then, with or without a PIN."""
    now = timezone.now()
    if member.pin_locked_until is not None and member.pin_locked_until > now:
        raise PinLocked.until(member.pin_locked_until, now=now)


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
        return PinLocked.until(locked.pin_locked_until, now=now)
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
