"""Object names never collide across instances, and always are DNS-1035 labels (pure)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings

DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
# Instances and model names as users write them: hyphens, case, '@', dots, long runs.
_TEXT = st.text(alphabet="ab-c.@Z_9", min_size=1, max_size=80)
_VERSION = st.integers(min_value=1, max_value=2**31 - 1)


def _name(instance: str, model: str, version: int) -> str:
    settings = ClusterSettings(instance=naming.instance_value(instance))
    return naming.object_name(ServeSpec(model, version, f"/m/{model}/1"), settings)


def test_instance_a_with_model_b_c_and_instance_a_b_with_model_c_do_not_collide() -> None:
    # Given the pair that both read ms-a-b-c-v1 when the instance is readable with a hyphen
    first = _name("a", "b-c", 1)
    second = _name("a-b", "c", 1)
    # Then they are two names (the first stays readable)
    assert first == "ms-a-b-c-v1"
    assert second != first


@settings(max_examples=400, deadline=None)
@given(st.tuples(_TEXT, _TEXT, _VERSION), st.tuples(_TEXT, _TEXT, _VERSION))
def test_distinct_serves_never_share_a_name_and_names_fit_dns_1035(
    one: tuple[str, str, int], other: tuple[str, str, int]
) -> None:
    # Given two (instance, model, version) triples
    # When each is named
    first, second = _name(*one), _name(*other)
    # Then every name is a DNS-1035 label of at most 63 characters
    assert DNS_1035.fullmatch(first) and len(first) <= 63
    assert DNS_1035.fullmatch(second) and len(second) <= 63
    # And distinct triples get distinct names
    if one != other:
        assert first != second


_SEGMENT = st.text(alphabet="abc-9", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(_SEGMENT, _SEGMENT, _SEGMENT, _VERSION)
def test_moving_a_hyphenated_piece_between_instance_and_model_changes_the_name(
    x: str, y: str, z: str, version: int
) -> None:
    # Given (x, y-z) and (x-y, z): the same text once the pieces are joined by hyphens
    one, other = (x, f"{y}-{z}", version), (f"{x}-{y}", z, version)
    # When both are named; Then the names differ
    assert _name(*one) != _name(*other)
