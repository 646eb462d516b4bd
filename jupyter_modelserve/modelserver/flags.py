"""Command-line flags, spelled as `tensorflow_model_server` spells them (gflags style)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .guard import DEFAULT_MAX_BODY_BYTES, RequestPolicy, parse_allowed_hosts


class FlagError(ValueError):
    """A bad command line: the message says which flag and why."""


@dataclass
class Flags:
    rest_api_port: int = 0  # 0 picks a free port (TF Serving would disable REST instead)
    rest_api_host: str = "127.0.0.1"
    port: int = 8500  # gRPC, as TF Serving's default; 0 picks a free port (as REST's 0 does)
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0  # 0: read the file once, like TF Serving
    model_name: str = "default"
    model_base_path: str = ""
    file_system_poll_wait_seconds: float = 1  # rescan base paths for new versions; 0: never
    rest_api_num_threads: int = 0  # threads running predictions; 0: one per CPU
    enable_batching: bool = False  # TF Serving's server-side batching, off by default as there
    batching_parameters_file: str = ""  # BatchingParameters in text format; "": the defaults
    # Not TF Serving flags: guards of a server that listens unauthenticated on loopback.
    rest_api_allowed_hosts: str = ""  # more Host names to answer, besides the loopback ones
    rest_api_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


USAGE = """usage: python -m jupyter_modelserve.modelserver --rest_api_port=N \\
    (--model_config_file=FILE [--model_config_file_poll_wait_seconds=N]
     | --model_name=NAME --model_base_path=DIR)
    [--rest_api_host=127.0.0.1] [--port=N] [--file_system_poll_wait_seconds=N]
    [--rest_api_num_threads=N] [--rest_api_allowed_hosts=HOST[,HOST...]]
    [--rest_api_max_body_bytes=N] [--enable_batching[=true] [--batching_parameters_file=FILE]]
A TensorFlow Serving compatible model server: REST on --rest_api_port, and TF Serving's gRPC API
(PredictionService, ModelService.GetModelStatus) on --port (default 8500; 0 picks a free port),
both on --rest_api_host only. gRPC starts once TensorFlow is imported; a --port that cannot be
bound is logged and the server goes on with REST alone.

It answers only requests whose Host header names a loopback host (127.0.0.1, localhost,
[::1], any port) or the --rest_api_host address; others get 403, which stops DNS rebinding.
  --rest_api_allowed_hosts=a.example,*.corp.example  also answer these names ("*.d" allows
      every name under d, "*" allows any host). POSTs from web pages of other hosts (an
      Origin header) are refused too.
  --rest_api_max_body_bytes=N  largest request body (default 64 MiB); larger ones get 413
      (and the largest gRPC message: larger ones get RESOURCE_EXHAUSTED).
--enable_batching batches concurrent predicts of one signature into one call, as TF Serving
does, with --batching_parameters_file in TF Serving's BatchingParameters text format
(max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads).
POSTs must send JSON: Content-Type text/plain, application/x-www-form-urlencoded or
multipart/form-data get 415 (with curl: -H 'Content-Type: application/json')."""


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
        kind = types[name]
        if kind == "bool":  # gflags: a bare --flag is true; it never takes the next argument
            if value.lower() not in ({"true", "1", "false", "0"} if has_value else {""}):
                raise FlagError(f"flag '--{name}' is true or false, got {value!r}")
            setattr(flags, name, not has_value or value.lower() in ("true", "1"))
            continue
        if not has_value:
            if not args:
                raise FlagError(f"flag '--{name}' is missing its value")
            value = args.pop(0)
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
    for name in ("rest_api_port", "port"):
        if getattr(flags, name) > 65535:
            raise FlagError(f"--{name} must be at most 65535, got {getattr(flags, name)}")
    if flags.rest_api_max_body_bytes < 1:
        raise FlagError("--rest_api_max_body_bytes must be at least 1")
    try:
        parse_allowed_hosts(flags.rest_api_allowed_hosts)
    except ValueError as error:
        raise FlagError(f"--rest_api_allowed_hosts: {error}") from None
    return flags


def request_policy(flags: Flags) -> RequestPolicy:
    """The host allow-list and body limit the flags ask for (flags already checked)."""
    return RequestPolicy.build(
        extra_hosts=parse_allowed_hosts(flags.rest_api_allowed_hosts),
        bound_host=flags.rest_api_host,
        max_body_bytes=flags.rest_api_max_body_bytes,
    )
