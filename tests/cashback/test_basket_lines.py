"""A basket line read as it is, without DRF's field by field validation, is the line that
validation would have given: the shortcut takes only lines that validation takes unchanged."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from cashback.serializers import LineSerializer
from core.api.serializers import StrictSerializer

texts = st.one_of(
    st.text(max_size=70),
    st.text(alphabet="ABC-_ 9", min_size=0, max_size=70),
    st.integers(),
    st.none(),
    st.booleans(),
)
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=4),
    st.integers(min_value=-5, max_value=2 * 10**9),
    st.sampled_from(["12.50", " 3 ", "1e3", "-1", "abc", "", "0"]),
    st.none(),
    st.booleans(),
)
quantities = st.one_of(
    st.integers(min_value=-3, max_value=2 * 10**6),
    st.sampled_from(["2", 2.0, Decimal("2.5"), True, None]),
)
lines = st.fixed_dictionaries(
    {},
    optional={
        "sku": texts,
        "category": texts,
        "amount": amounts,
        "quantity": quantities,
        "price": st.just(1),
    },
)


def _validated(line: dict):
    """What DRF's field by field validation gives: the line, or its errors."""
    serializer = LineSerializer()
    try:
        return StrictSerializer.to_internal_value(serializer, line)
    except serializers.ValidationError as error:
        return error.detail


@given(lines)
def test_a_line_read_as_it_is_is_the_line_validation_gives(line):
    serializer = LineSerializer()
    plain = serializer._plain(line)
    if plain is not None:
        assert plain == dict(_validated(line))
    # Whichever way, the serializer answers as field by field validation does.
    data = LineSerializer(data=line)
    if data.is_valid():
        assert dict(data.validated_data) == dict(_validated(line))
    else:
        assert data.errors == _validated(line)


def test_a_plain_line_takes_the_shortcut():
    line = {"sku": "COF-1KG", "category": "coffee", "amount": Decimal("12.5"), "quantity": 2}
    assert LineSerializer()._plain(line) == line
    assert LineSerializer()._plain({"sku": " COF-1KG", "amount": 1}) is None  # trimmed by DRF
