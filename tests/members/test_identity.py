"""A member's identity holds whatever the way in (API, admin, ORM, raw SQL): email stored
lower-cased and phone in E.164, each unique per app, enforced by the database."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from psycopg import sql

from members.models import Member
from tests.factories import AppFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.com", "pw"))
    return client


def admin_add(admin_client, app, **fields):
    form = {"app": app.pk, "name": "", "email": "", "phone": "", **fields}
    # The member page's wallet inline (cashback's), empty.
    form |= {"wallets-TOTAL_FORMS": "0", "wallets-INITIAL_FORMS": "0"}
    return admin_client.post(reverse("admin:members_member_add"), form)


def test_the_admin_stores_email_lower_cased_and_phone_in_e164(admin_client, merchant):
    response = admin_add(admin_client, merchant.app, email="Bob@Example.COM", phone="20 123 456")

    assert response.status_code == 302
    member = Member.objects.get()
    assert member.email == "bob@example.com"
    assert str(member.phone) == "+21620123456"


def test_the_admin_refuses_the_twins_of_a_member(admin_client, merchant):
    admin_add(admin_client, merchant.app, email="Bob@Example.COM", phone="20 123 456")

    by_email = admin_add(admin_client, merchant.app, email="bob@example.com")
    by_phone = admin_add(admin_client, merchant.app, phone="+216 20 123 456")

    assert by_email.status_code == 200
    assert "This app already has a member with this email." in by_email.content.decode()
    assert by_phone.status_code == 200
    assert "This app already has a member with this phone." in by_phone.content.decode()
    assert Member.objects.count() == 1


def test_the_admin_refuses_a_phone_that_is_not_a_number(admin_client, merchant):
    response = admin_add(admin_client, merchant.app, phone="12")
    assert response.status_code == 200
    assert Member.objects.count() == 0


def test_the_orm_normalises_saves_and_lookups(merchant):
    member = Member.objects.create(app=merchant.app, email="Amira@Example.com", phone="20123456")

    stored = Member.objects.values_list("email", "phone").get(pk=member.pk)
    assert stored == ("amira@example.com", "+21620123456")
    assert Member.objects.get(app=merchant.app, email="AMIRA@example.COM") == member
    assert Member.objects.get(app=merchant.app, phone="20 123 456") == member
    Member.objects.filter(pk=member.pk).update(email="NEW@Example.com")
    assert Member.objects.values_list("email", flat=True).get(pk=member.pk) == "new@example.com"


def test_the_database_refuses_twins_in_one_app_but_not_across_apps(merchant):
    MemberFactory.create(app=merchant.app, email="bob@example.com", phone="+21620123456")

    for twin in ({"email": "BOB@example.com"}, {"phone": "20 123 456"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Member.objects.create(app=merchant.app, **twin)
    other = AppFactory.create()
    assert Member.objects.create(app=other, email="Bob@example.com", phone="20123456").pk


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "Bob@Example.com"), ("phone", "20 123 456"), ("phone", "0021620123456")],
)
def test_the_database_refuses_what_bypasses_the_model(merchant, column, value):
    insert = sql.SQL(
        "INSERT INTO members_member (app_id, name, {}, pin_hash, pin_failed_attempts, "
        "created_at) VALUES (%s, '', %s, '', 0, now())"
    ).format(sql.Identifier(column))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert.as_string(), [merchant.app.pk, value])


def test_earn_finds_the_member_whatever_the_case_or_format(api, merchant, card):
    member = MemberFactory.create(app=merchant.app, email="bob@example.com", phone="+21620123456")

    for ref in ({"email": "BOB@Example.com"}, {"phone": "20 123 456"}, {"phone": "+216 20123456"}):
        response = api.post(
            "/api/v1/cashback/cashback/earn", {"card_id": card.pk, "purchase_amount": 20, **ref}
        )
        assert response.status_code == 200
        assert response.json()["data"]["member_id"] == member.pk
    assert Member.objects.count() == 1
