"""Input serializers never share their bound state."""

import copy

from cashback.serializers import EarnSerializer, HistoryQuerySerializer
from core.api.serializers import _shallow_copy


def test_each_serializer_binds_its_own_fields():
    first = EarnSerializer(data={"card_id": 0, "member_id": 1, "purchase_amount": 5})
    second = EarnSerializer(data={"card_id": 3, "email": "A@Example.com", "purchase_amount": "x"})

    assert not first.is_valid()
    assert not second.is_valid()
    assert set(first.errors) == {"card_id"}
    assert set(second.errors) == {"purchase_amount"}
    for serializer in (first, second):
        for name, field in serializer.fields.items():
            assert field.parent is serializer
            assert field.field_name == name


def test_fields_keep_their_validators_and_defaults():
    query = HistoryQuerySerializer(data={"card_id": "1", "member_id": "2", "limit": "101"})
    assert not query.is_valid()
    assert set(query.errors) == {"limit"}

    query = HistoryQuerySerializer(data={"card_id": "1", "member_id": "2"})
    assert query.is_valid()
    assert query.validated_data == {"card_id": 1, "member_id": 2, "limit": 20, "offset": 0}


def test_a_plain_field_is_copied_as_copy_copies_it():
    for serializer_class in (EarnSerializer, HistoryQuerySerializer):
        for field in serializer_class._declared_fields.values():
            clone, copied = _shallow_copy(field), copy.copy(field)
            assert clone is not field
            assert type(clone) is type(copied)
            assert vars(clone) == vars(copied)
