"""Command-line flags, spelled as `tensorflow_model_server` spells them (gflags style)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class FlagError(ValueError):
    """A bad command line: the message says which flag and why."""


@dataclass
class Flags:
    rest_api_port: int = 0  # 0 picks a free port (TF Serving would disable REST instead)
    rest_api_host: str = "127.0.0.1"
    port: int = 0  # gRPC: accepted for compatibility, not served
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0  # 0: read the file once, like TF Serving
    model_name: str = "default"
    model_base_path: str = ""
    file_system_poll_wait_seconds: float = 1  # rescan base paths for new versions; 0: never
    rest_api_num_threads: int = 0  # threads running predictions; 0: one per CPU


USAGE = """usage: python -m jupyter_modelserve.modelserver --rest_api_port=N \\
    (--model_config_file=FILE [--model_config_file_poll_wait_seconds=N]
     | --model_name=NAME --model_base_path=DIR)
    [--rest_api_host=127.0.0.1] [--port=N] [--file_system_poll_wait_seconds=N]
    [--rest_api_num_threads=N]
A TensorFlow Serving compatible REST model server (gRPC is not served)."""


def parse_flags(argv: list[str]) -> Flags:
    """Parse `--flag=value` and `--flag value` (one or two dashes), as gflags does."""
    flags = Flags()
    types = {f.name: f.type for f in dataclasses.fields(Flags)}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-") or arg in ("-", "--"):
            raise FlagError(f"unexpected argument {arg!r}: every option is a --flag=value")
        name, has_value, value = arg.lstrip("-").partition("=")
        if name not in types:
            raise FlagError(f"unknown command line flag '{name}'")
        if not has_value:
            if not args:
                raise FlagError(f"flag '--{name}' is missing its value")
            value = args.pop(0)
        kind = types[name]
        try:
            if kind == "int":
                converted: object = int(value)
            elif kind == "float":
                converted = float(value)
            else:
                converted = value
        except ValueError:
            raise FlagError(f"flag '--{name}' expects a number, got {value!r}") from None
        if isinstance(converted, (int, float)) and converted < 0:
            raise FlagError(f"flag '--{name}' must not be negative, got {value!r}")
        setattr(flags, name, converted)
    if not flags.model_config_file and not flags.model_base_path:
        raise FlagError("either --model_config_file or --model_base_path is required")
    if flags.rest_api_port > 65535:
        raise FlagError(f"--rest_api_port must be at most 65535, got {flags.rest_api_port}")
    return flags
