"""The model_config_list text format: rendering, parsing what TF Serving accepts, errors."""

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


def test_render_matches_tf_serving_layout() -> None:
    configs = [
        ModelConfig("simple", "/abs/path/simple", version_policy=VersionPolicy.specific([1, 2]))
    ]
    assert render_model_config_list(configs) == SIMPLE


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig("a", "/m/a"),
        ModelConfig("b", "/m/b", version_policy=VersionPolicy.latest(3)),
        ModelConfig("c", "/m/c", version_policy=VersionPolicy.all()),
        ModelConfig("d", "/m/d", version_policy=VersionPolicy.specific([])),
        ModelConfig("e", "/m/e", version_labels={"stable": 1, "canary": 2}),
        ModelConfig('it\'s \\ "odd"\n', "C:\\models\\x'y", model_platform="tensorflow"),
    ],
)
def test_round_trip(config: ModelConfig) -> None:
    text = render_model_config_list([config])
    assert parse_model_config_list(text) == [config]


def test_round_trip_of_several_and_of_none() -> None:
    configs = [ModelConfig("a", "/a"), ModelConfig("b", "/b", version_policy=VersionPolicy.all())]
    assert parse_model_config_list(render_model_config_list(configs)) == configs
    assert parse_model_config_list(render_model_config_list([])) == []


def test_parses_the_variants_tf_serving_accepts() -> None:
    text = """
    # the served models
    model_config_list: {
      config: <
        name: "first"  # double quotes
        base_path: "/models/" 'first'
        model_version_policy: { latest: { num_versions: 2 } }
      >,
      config { name: 'second'; base_path: '/models/second';
               model_version_policy { specific { versions: [3, 4] } }
               version_labels { key: 'stable', value: 3 }
               version_labels { key: "canary" value: 4 } }
      config { name: 'third' base_path: '/m/3' model_version_policy { all {} } }
      config { name: 'fourth' base_path: '/m/4' model_version_policy { latest {} } }
    }
    """
    first, second, third, fourth = parse_model_config_list(text)
    assert first == ModelConfig("first", "/models/first", version_policy=VersionPolicy.latest(2))
    assert second.version_policy == VersionPolicy.specific([3, 4])
    assert second.version_labels == {"stable": 3, "canary": 4}
    assert third.version_policy == VersionPolicy.all()
    assert fourth.version_policy == VersionPolicy.latest(1)
    assert first.model_platform == "tensorflow"


def test_string_escapes() -> None:
    text = r"""model_config_list { config { name: 'a\'b\\c\x41\101\n' base_path: "/p\"q" } }"""
    [config] = parse_model_config_list(text)
    assert config.name == "a'b\\cAA\n"
    assert config.base_path == '/p"q'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no model_config_list"),
        ("model_config_list { config { name: 'a' } }", "missing a non-empty base_path"),
        ("model_config_list { config { base_path: '/a' } }", "missing a non-empty name"),
        ("model_config_list { config { name: 'a' base_path: '/a' }", "unexpected end of input"),
        ("model_config_list { config { name: 'a base_path: '/a' } }", "line 1"),
        ("model_config_list { config { name: 'a' base_path: '/a' colour: 'red' } }", "'colour'"),
        ("model_config_list { config { name: 1 base_path: '/a' } }", "name must be a quoted"),
        ("model_config_list { config { name: 'a' name: 'b' base_path: '/a' } }", "given twice"),
        ("model_config_lst { }", "unknown field 'model_config_lst'"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' "
            "base_path: '/b' } }",
            "appears twice",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a'\n"
            "  model_version_policy { latest { num_versions: 0 } } } }",
            "line 2",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' "
            "model_version_policy { latest {} all {} } } }",
            "exactly one",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' "
            "model_version_policy { specific { versions: 'x' } } } }",
            "versions must be an integer",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' "
            "version_labels { key: 'stable' } } }",
            "both key and value",
        ),
        ("model_config_list { config { name: 'a\\q' base_path: '/a' } }", "invalid escape"),
        ("model_config_list { config { name 'a' base_path: '/a' } }", "expected ':'"),
        ("model_config_list { config { name: 'a' base_path: '/a' } } }", "expected a field name"),
        ("model_config_list { config { name: 'a' base_path: '/a' } } @", "unexpected text"),
    ],
)
def test_malformed_input_raises_a_clear_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
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
