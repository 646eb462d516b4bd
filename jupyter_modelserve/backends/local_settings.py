"""What a Jupyter server's admin sets for the local backend (`c.LocalBackend.*`)."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Int, List, Unicode, observe
from traitlets.config import LoggingConfigurable

DEFAULT_REST_PORT = 8501  # TF Serving's
DEFAULT_GRPC_PORT = 8500  # TF Serving's


class LocalSettings(LoggingConfigurable):
    """The local backend's settings; `LocalBackend` subclasses it, so they are configured as
    `c.LocalBackend.<name>`."""

    rest_api_port = Int(
        DEFAULT_REST_PORT,
        config=True,
        help="REST port of the model server on 127.0.0.1; 0 picks a free port at start. Left at "
        "its default, a port taken by another program (a second user's server) is replaced by "
        "a free one, kept for this data folder; a port set explicitly is used or refused.",
    )
    grpc_port = Int(
        DEFAULT_GRPC_PORT,
        config=True,
        help="gRPC port (TF Serving's gRPC API) of the model server on 127.0.0.1; 0 picks a "
        "free port at start. Chosen as rest_api_port is: a default port taken by another "
        "program gives way to a free one kept for this data folder; an explicit one is used or "
        "refused.",
    )
    server_command = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Command that starts the model server (TF Serving's flags are appended). Empty: "
        "the built-in server, or tensorflow_model_server when use_tensorflow_model_server is set.",
    )
    use_tensorflow_model_server = Bool(
        False,
        config=True,
        help="Run `tensorflow_model_server` when it is on PATH. Off by default: it has no flag "
        "to bind 127.0.0.1 and listens on every interface, unauthenticated.",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="Folder for the model server's config, log, pid file and lock. "
        "Default: `server/` under the modelserve data folder.",
    )
    status_timeout = Float(
        5.0,
        config=True,
        help="Seconds one status read may wait for the model server (also bounded by the "
        "service's list deadline).",
    )
    niceness = Int(
        5,
        config=True,
        help="Scheduling niceness of the model server process (0: as the Jupyter server), so "
        "loading models never starves the Jupyter server and kernels on the same machine.",
    )
    port_release_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for a crashed model server's port to close before restarting on it.",
    )
    enable_batching = Bool(
        False,
        config=True,
        help="Start the model server with TF Serving's --enable_batching: concurrent predicts "
        "of one model run as one batched call (off by default, as in TF Serving). Takes effect "
        "when the model server next starts (`jupyter modelserve stop-server`, then serve).",
    )
    batching_parameters_file = Unicode(
        "",
        config=True,
        help="TF Serving's --batching_parameters_file, passed with enable_batching: a "
        "BatchingParameters text proto (max_batch_size, batch_timeout_micros, "
        "num_batch_threads, max_enqueued_batches). Empty: TF Serving's defaults.",
    )
    allowed_hosts = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Host names the built-in model server answers besides loopback ones (it refuses any "
        "other Host header, against DNS rebinding); '*' allows any.",
    )

    _port_explicit = False
    _grpc_port_explicit = False

    @observe("rest_api_port")
    def _remember_explicit_port(self, change: Any) -> None:
        # Only a value that came from config or code fires this; the default does not.
        self._port_explicit = True

    @observe("grpc_port")
    def _remember_explicit_grpc_port(self, change: Any) -> None:
        self._grpc_port_explicit = True
