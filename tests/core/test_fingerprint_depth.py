"""The request digest reads a value of any depth without running out of stack: it is taken of
values that never went through the parser's depth limit too. Equal values digest alike, as they
always have, so that keys kept before still recognise their retries."""

import hashlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.fingerprint import digest


def _nested(levels: int, leaf, *, container=dict):
    value = leaf
    for _ in range(levels):
        value = {"a": value} if container is dict else [value]
    return value


@pytest.mark.parametrize("container", [dict, list])
@pytest.mark.parametrize("levels", [950, 5000, 100_000])
def test_a_value_of_any_depth_digests(levels, container):
    deep = digest(_nested(levels, Decimal("50.00"), container=container))
    assert deep == digest(_nested(levels, 50, container=container))
    assert deep != digest(_nested(levels + 1, 50, container=container))


def test_a_value_inside_itself_is_refused_not_digested_forever():
    looped: dict = {"a": [1]}
    looped["a"].append(looped)
    with pytest.raises(ValueError, match="contains itself"):
        digest(looped)


def test_one_value_twice_side_by_side_is_not_a_loop():
    shared = {"x": [1, 2]}
    assert digest({"a": shared, "b": [shared, shared]}) == digest(
        {"a": {"x": [1, 2]}, "b": [{"x": [1, 2]}, {"x": [1, 2]}]}
    )


def _digest_as_it_was(value) -> str:
    """The recursive digest the kept fingerprints were taken with."""

    def canonical(value):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal):
            number = Decimal(value)
            return {"#": format(number.normalize(), "f") if number else "0"}
        if isinstance(value, dict):
            return {str(key): canonical(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [canonical(item) for item in value]
        raise TypeError

    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(-3, 3), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_values)
def test_a_value_digests_as_it_always_has(value):
    assert digest(value) == _digest_as_it_was(value)


def test_what_is_not_json_is_refused():
    with pytest.raises(TypeError, match="Cannot digest set"):
        digest({"a": [{1, 2}]})
