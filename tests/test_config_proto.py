"""The built-in model server reads `--model_config_file` with protobuf's text_format, as TF Serving.

The text goes into tensorflow-serving-api's `ModelServerConfig`; refusals carry TF Serving's own
wording (server_core.cc), so a config behaves the same on both servers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from jupyter_modelserve.modelserver.config_proto import (
    MAX_CONFIG_BYTES,
    parse_model_server_config,
    read_model_server_config,
)
from jupyter_modelserve.modelserver.flags import parse_flags
from jupyter_modelserve.modelserver.server import read_configs
from jupyter_modelserve.tfserving.model_config import (
    ModelConfig,
    VersionPolicy,
    render_model_config_list,
)

from .test_model_config import RENDERED


def test_what_the_jupyter_side_renders_parses_with_the_library() -> None:
    # Given every shape the Jupyter side renders
    text = render_model_config_list(RENDERED)
    # When TF Serving's own parser reads it
    proto = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    # Then the proto holds exactly those models, field for field
    entries = proto.model_config_list.config
    assert [(e.name, e.base_path, e.model_platform) for e in entries] == [
        (c.name, c.base_path, c.model_platform) for c in RENDERED
    ]
    assert entries[1].model_version_policy.latest.num_versions == 3
    assert entries[2].model_version_policy.WhichOneof("policy_choice") == "all"
    assert entries[3].model_version_policy.WhichOneof("policy_choice") == "specific"
    assert list(entries[4].model_version_policy.specific.versions) == [7, 2]
    assert dict(entries[5].version_labels) == {"stable": 1, "canary": 2}


@pytest.mark.parametrize("configs", [RENDERED, [], [RENDERED[0]]])
def test_rendered_configs_round_trip_through_the_model_server(configs: list[ModelConfig]) -> None:
    # Given configs rendered by the Jupyter side
    text = render_model_config_list(configs)
    # When the model server parses them / Then it serves exactly what was rendered
    assert parse_model_server_config(text) == configs


def test_the_variants_tf_serving_accepts() -> None:
    # Given text-format spellings TF Serving accepts but the renderer never writes
    text = """
    # the served models
    model_config_list: {
      config: <
        name: "first"  # double quotes
        base_path: "/models/" 'first'
        model_platform: "tensorflow"
        model_version_policy: { latest: { num_versions: 2 } }
      >,
      config { name: 'second'; base_path: 'gs://bucket/second'; model_platform: 'tensorflow'
               model_version_policy { specific { versions: [3, 4] } }
               version_labels { key: 'stable', value: 3 }
               version_labels { key: "canary" value: 4 } }
      config { name: 'third' base_path: '/m/3' model_platform: 'tensorflow'
               model_version_policy { all {} } }
      config { name: 'fourth' base_path: '/m/4' model_type: TENSORFLOW
               model_version_policy { latest {} } }
      config { name: 'fifth' base_path: '/m/5' model_platform: 'tensorflow'
               logging_config { sampling_config { sampling_rate: 0.5 } } }
    }
    """
    # When parsed
    first, second, third, fourth, fifth = parse_model_server_config(text)
    # Then each means what it means to TF Serving
    assert first == ModelConfig("first", "/models/first", version_policy=VersionPolicy.latest(2))
    assert second.base_path == "gs://bucket/second"  # a URI is not a relative path
    assert second.version_policy == VersionPolicy.specific([3, 4])
    assert second.version_labels == {"stable": 3, "canary": 4}
    assert third.version_policy == VersionPolicy.all()
    # `latest {}` has num_versions 0, which TF Serving serves as 1; model_type is the old platform
    assert fourth == ModelConfig("fourth", "/m/4", version_policy=VersionPolicy.latest(1))
    # No policy at all is TF Serving's default, the latest version; logging is ignored
    assert fifth == ModelConfig("fifth", "/m/5")


def entry(fields: str) -> str:
    return f"model_config_list {{ config {{ {fields} }} }}"


OK = "name: 'a' base_path: '/a' model_platform: 'tensorflow'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # protobuf's own parse errors, prefixed as TF Serving's ParseProtoTextFile prefixes them
        (
            entry(OK + " colour: 'red'"),
            "Invalid protobuf file: '<string>': 1:.*has no field named \"colour\"",
        ),
        (
            entry("name: 1 base_path: '/a'"),
            "Invalid protobuf file: '<string>': 1:36 : .*Expected string but found: '1'",
        ),
        (entry("name: 'a' name: 'b'"), 'should not have multiple "name" fields'),
        (entry(OK) + " }", "Invalid protobuf file: .*Expected identifier or number"),
        (
            entry(OK + " model_version_policy { latest {} all {} }"),
            "Invalid protobuf file: .*oneof",
        ),
        ("model_config_lst { }", 'has no field named "model_config_lst"'),
        # ServerCore::ReloadConfig's checks, in its words
        ("", "sets no model_config_list: taking no action for empty config"),
        ("# only a comment\n", "taking no action for empty config"),
        (
            "custom_model_config { }",
            "Missing custom_model_config_loader in ServerCore Options",
        ),
        (
            f"model_config_list {{ config {{ {OK} }} config {{ {OK} }} }}",
            "Illegal to list model a multiple times in config list",
        ),
        (
            entry("name: 'a' base_path: 'models/a' model_platform: 'tensorflow'"),
            r"Expected model a to have an absolute path or URI; got base_path\(\)=models/a",
        ),
        (
            entry("name: 'x'"),
            r"Expected model x to have an absolute path or URI; got base_path\(\)=$",
        ),
        (
            entry("name: 'a' base_path: '/a'"),
            "Illegal setting neither ModelServerConfig::model_type .deprecated. nor "
            "ModelServerConfig::model_platform.",
        ),
        (
            entry(OK + " model_type: TENSORFLOW"),
            "Illegal setting both ModelServerConfig::model_type .deprecated. and",
        ),
        (
            entry("name: 'a' base_path: '/a' model_type: OTHER"),
            "ModelServerConfig::model_type choice 2 not supported.",
        ),
        (
            entry("name: 'a' base_path: '/a' model_platform: 'pytorch'"),
            "Model a requests unsupported platform pytorch",
        ),
        # Our own: the name is in every URL; versions are folder numbers
        (entry("base_path: '/a' model_platform: 'tensorflow'"), "has an empty name"),
        (
            entry(OK + " model_version_policy { specific { versions: -1 } }"),
            "Model a: specific versions must not be negative",
        ),
    ],
)
def test_bad_configs_are_refused_as_tf_serving_words_it(text: str, message: str) -> None:
    # Given a config TF Serving refuses / When parsed / Then a ValueError says why, as TF Serving
    with pytest.raises(ValueError, match=message):
        parse_model_server_config(text)


def test_read_configs_reads_the_file_the_jupyter_side_wrote(tmp_path: Path) -> None:
    # Given the model server started with --model_config_file on a rendered file
    config_file = tmp_path / "models.config"
    config_file.write_text(render_model_config_list(RENDERED))
    flags = parse_flags(["--rest_api_port=0", f"--model_config_file={config_file}"])
    # When it reads its config / Then it gets the rendered models
    assert read_configs(flags) == RENDERED


def test_read_configs_reads_a_file_written_for_tf_serving(tmp_path: Path) -> None:
    # Given a config file written by hand for tensorflow_model_server, not by the renderer
    config_file = tmp_path / "models.config"
    config_file.write_text(
        'model_config_list: { config: { name: "m", base_path: "/m",\n'
        "  model_type: TENSORFLOW } }  # the old platform field\n"
    )
    flags = parse_flags(["--rest_api_port=0", f"--model_config_file={config_file}"])
    # When the model server reads its config / Then the library's parse is what it serves
    assert read_configs(flags) == [ModelConfig("m", "/m")]


def test_a_file_that_is_too_large_or_not_utf8_is_refused(tmp_path: Path) -> None:
    # Given a config file one byte over the bound (valid text: a long comment), and one not UTF-8
    large, binary = tmp_path / "large.config", tmp_path / "binary.config"
    large.write_text("#" * MAX_CONFIG_BYTES + "\n")
    binary.write_bytes(b"model_config_list { config { name: '\xff' } }")
    # When read / Then each is refused without parsing, naming the file
    with pytest.raises(ValueError, match=f"'{large}': larger than {MAX_CONFIG_BYTES} bytes"):
        read_model_server_config(str(large))
    with pytest.raises(ValueError, match=f"'{binary}': not UTF-8"):
        read_model_server_config(str(binary))
