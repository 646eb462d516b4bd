"""Bucket sources never carry credentials into the registry, nor back out in a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_modelserve.errors import InvalidInput
from jupyter_modelserve.registry.model_registry import ModelRegistry
from jupyter_modelserve.registry.store import RegistryStore

SECRET = "wJalrXUtnFEMIK7MDENG"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    store = RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield ModelRegistry(store, tmp_path / "art")
    store.close()


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://AKIAEXAMPLE:{SECRET}@models/simple/1",
        f"gs://{SECRET}@models/simple/1",
        f"s3://models/simple/1?X-Amz-Signature={SECRET}",
        f"s3://models/simple/1#{SECRET}",
    ],
    ids=["userinfo", "user-only", "query", "fragment"],
)
def test_a_bucket_uri_with_credentials_a_query_or_a_fragment_is_refused_without_echo(
    registry: ModelRegistry, uri: str
) -> None:
    # Given a bucket URI that carries a secret
    # When it is registered
    with pytest.raises(InvalidInput) as refused:
        registry.register(uri, "simple")
    # Then the message names the rule and the settings to use, never the secret
    message = str(refused.value)
    assert "without credentials (user:secret@), a query (?) or a fragment (#)" in message
    assert "storage_secret" in message
    assert SECRET not in message
    # And nothing was recorded
    assert registry.store.list_registered_models() == []


def test_a_plain_bucket_uri_with_an_at_sign_in_its_path_is_kept(registry: ModelRegistry) -> None:
    # Given a key with '@' after the bucket (legal in S3 keys, no credentials)
    # When registered; Then it is recorded as given
    version = registry.register("s3://models/team@a/simple/1", "simple")
    assert version.source == "s3://models/team@a/simple/1"
