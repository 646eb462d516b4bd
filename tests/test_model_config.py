"""The Jupyter side's model_config_list: rendering it, and reading back only its own rendering.

What TF Serving accepts is checked with the library itself in tests/test_config_proto.py.
"""

from __future__ import annotations

import pytest

from jupyter_modelserve.tfserving.model_config import (
    ModelConfig,
    VersionPolicy,
    parse_model_config_list,
    render_model_config_list,
)

SIMPLE = """\
model_config_list {
  config {
    name: 'simple'
    base_path: '/abs/path/simple'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
  }
}
"""

# Every shape the renderer writes: each policy kind, labels, and strings needing escapes.
RENDERED = [
    ModelConfig("a", "/m/a"),
    ModelConfig("b", "/m/b", version_policy=VersionPolicy.latest(3)),
    ModelConfig("c", "/m/c", version_policy=VersionPolicy.all()),
    ModelConfig("d", "/m/d", version_policy=VersionPolicy.specific([])),
    ModelConfig("f", "/m/f", version_policy=VersionPolicy.specific([7, 2])),
    ModelConfig("e", "/m/e", version_labels={"stable": 1, "canary": 2}),
    ModelConfig('it\'s \\ "odd"\n\r\té', "/models/x'y\\z", model_platform="tensorflow"),
]


def test_render_matches_tf_serving_layout() -> None:
    # Given one model with two pinned versions
    configs = [
        ModelConfig("simple", "/abs/path/simple", version_policy=VersionPolicy.specific([1, 2]))
    ]
    # When rendered / Then it is the layout TF Serving's documentation shows
    assert render_model_config_list(configs) == SIMPLE


@pytest.mark.parametrize("config", RENDERED)
def test_round_trip(config: ModelConfig) -> None:
    # Given a config rendered by the Jupyter side
    text = render_model_config_list([config])
    # When read back / Then it is the same config
    assert parse_model_config_list(text) == [config]


def test_round_trip_of_several_of_none_and_of_a_thousand() -> None:
    # Given lists of several, of no and of 1,000 models (the local backend's file at scale)
    many = [ModelConfig(f"m{i}", f"/m/{i}", version_labels={"x": i}) for i in range(1000)]
    for configs in (RENDERED, [], many):
        # When rendered and read back / Then nothing is lost or reordered
        assert parse_model_config_list(render_model_config_list(configs)) == configs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Valid text protos, but not the renderer's form: the Jupyter side never reads those.
        ("", "line 1: not a model_config_list"),
        ("model_config_list: {\n}\n", "line 1: not a model_config_list"),
        (SIMPLE.replace("'simple'", '"simple"'), "line 2: not a config entry"),
        (SIMPLE.replace("  config {", "  # the model\n  config {"), "line 2: not a config entry"),
        (SIMPLE.replace("    model_platform: 'tensorflow'\n", ""), "line 2: not a config entry"),
        # Damaged renderings.
        (SIMPLE[:60], "line 1: not a model_config_list"),  # cut mid-write
        (SIMPLE.replace("  }\n", ""), "line 2: not a config entry"),
        (SIMPLE.replace("'simple'", "'sim\\tple'"), r"line 2: escape \\t is not one"),
        (SIMPLE.replace("specific {", "newest {"), "line 2: unknown model_version_policy"),
        (
            SIMPLE.replace("specific { versions: 1 versions: 2 }", "latest { num_versions: 0 }"),
            "line 2: latest num_versions must be at least 1",
        ),
    ],
)
def test_anything_but_its_own_rendering_is_refused_naming_the_line(text: str, message: str) -> None:
    # Given text the renderer did not write / When read back / Then a ValueError names the line
    with pytest.raises(ValueError, match=message):
        parse_model_config_list(text)


def test_a_model_listed_twice_is_refused_at_its_line() -> None:
    # Given a rendering listing the same model twice (TF Serving refuses that too)
    text = render_model_config_list([ModelConfig("a", "/a"), ModelConfig("a", "/b")])
    # When read back / Then the second entry's line is named
    with pytest.raises(ValueError, match="line 8: model name 'a' appears twice"):
        parse_model_config_list(text)


def test_labels_alone_do_not_change_the_servables() -> None:
    base = ModelConfig("a", "/a", version_labels={"stable": 1})
    assert base.same_servables(ModelConfig("a", "/a", version_labels={"stable": 2}))
    assert not base.same_servables(ModelConfig("a", "/b"))
    assert not base.same_servables(ModelConfig("a", "/a", version_policy=VersionPolicy.all()))


def test_version_policy_validates() -> None:
    with pytest.raises(ValueError):
        VersionPolicy("newest")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        VersionPolicy.latest(0)
    assert VersionPolicy.specific([2, 1]).versions == (2, 1)
