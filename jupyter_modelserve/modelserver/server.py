"""The model server process: flags, config (re)loading, signals and the HTTP listener.

Start-up is ordered for speed: TensorFlow (~2.5 s to import) starts importing on a background
thread at once, the port opens right away so status answers while models load, and each load
waits for the import only when it needs TensorFlow.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from ..tfserving.model_config import ModelConfig
from .config_proto import read_model_server_config
from .flags import USAGE, FlagError, Flags, parse_flags, request_policy
from .grpc_listen import listen
from .http import make_server
from .inline import InlineCalls
from .logs import log, setup_logging
from .manager import ModelManager
from .metrics import Metrics
from .routes import Api
from .tfimport import import_tensorflow, start_background_import


def read_configs(flags: Flags) -> list[ModelConfig]:
    """The models to serve, from the config file or from --model_name/--model_base_path."""
    if not flags.model_config_file:
        base_path = os.path.abspath(flags.model_base_path)
        return [ModelConfig(name=flags.model_name, base_path=base_path)]
    return read_model_server_config(flags.model_config_file)


class Watcher(threading.Thread):
    """Re-reads the config (on SIGHUP or every poll period) and rescans version folders."""

    def __init__(
        self, flags: Flags, manager: ModelManager, trigger: threading.Event | None = None
    ) -> None:
        super().__init__(name="modelserver-watcher", daemon=True)
        self.flags = flags
        self.manager = manager
        self.trigger = trigger if trigger is not None else threading.Event()  # set by SIGHUP

    def reload(self) -> None:
        if not self.flags.model_config_file:
            self.manager.poll()
            return
        try:
            configs = read_configs(self.flags)
        except (OSError, ValueError) as error:
            # Like TF Serving: a bad config on reload keeps the models already served.
            log.error("Not reloading %s: %s", self.flags.model_config_file, error)
            return
        self.manager.apply_config(configs)

    def run(self) -> None:
        config_every = self.flags.model_config_file_poll_wait_seconds
        if not self.flags.model_config_file:
            config_every = 0
        scan_every = self.flags.file_system_poll_wait_seconds
        now = time.monotonic()
        next_config = now + config_every if config_every else float("inf")
        next_scan = now + scan_every if scan_every else float("inf")
        while True:
            deadline = min(next_config, next_scan)
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            triggered = self.trigger.wait(timeout)  # a periodic timer, or woken by SIGHUP
            self.trigger.clear()
            now = time.monotonic()
            try:
                if triggered or now >= next_config:
                    if triggered:
                        log.info("Received SIGHUP: reloading the model config")
                    self.reload()
                    next_config = now + config_every if config_every else float("inf")
                elif now >= next_scan:
                    self.manager.poll()
            except Exception:  # keep watching: the next signal or poll may succeed
                log.exception("Reloading the model config failed")
            if now >= next_scan or triggered:
                next_scan = now + scan_every if scan_every else float("inf")


async def _serve(
    flags: Flags, manager: ModelManager, watcher: Watcher, configs: list[ModelConfig]
) -> None:
    threads = flags.rest_api_num_threads or os.cpu_count() or 4
    executor = ThreadPoolExecutor(threads, thread_name_prefix="modelserver-rest")
    sockets = tornado.netutil.bind_sockets(flags.rest_api_port, address=flags.rest_api_host)
    api = Api(manager)  # one for both front ends: one scrape shows REST and gRPC calls
    # Batched calls wait for their batch to fill: never on the event loop.
    inline = None if flags.enable_batching else InlineCalls()
    server = make_server(manager, executor, request_policy(flags), api, inline)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    # The backend reads the port from this line, which matches TF Serving's own. The port is
    # open before any model loads, so status answers (LOADING) while they do.
    log.info("Exporting HTTP/REST API at:%s:%d ...", flags.rest_api_host, port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, watcher.trigger.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    manager.apply_config(configs)
    watcher.start()
    grpc_server = _listen_grpc(flags)
    if grpc_server is not None:
        started = _start_grpc(grpc_server, flags, manager, executor, api.metrics)
        grpc_task = asyncio.create_task(started)
    await stop.wait()
    log.info("Shutting down the model server")
    server.stop()
    if grpc_server is not None:
        grpc_task.cancel()
        await grpc_server.stop(0.5)


def _listen_grpc(flags: Flags) -> Any:
    """The bound, not yet started gRPC server on --port; None when the port cannot be bound
    (logged: REST goes on alone, as a REST-only server is more use than none)."""
    try:
        server, port = listen(flags.rest_api_host, flags.port, flags.rest_api_max_body_bytes)
    except OSError as error:
        log.error("Not serving gRPC on %s:%d: %s", flags.rest_api_host, flags.port, error)
        return None
    # TF Serving's own line; the backend and tests read the port from it. The port is held from
    # now on; calls are answered once TensorFlow is imported and the services started.
    log.info("Running gRPC ModelServer at %s:%d ...", flags.rest_api_host, port)
    return server


async def _start_grpc(
    server: Any, flags: Flags, manager: ModelManager, executor: ThreadPoolExecutor, metrics: Metrics
) -> None:
    """Start the services once TensorFlow is imported (TF Serving's protos import it): REST and
    model loading never wait for this."""
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(executor, import_tensorflow)
        services = await loop.run_in_executor(
            executor, importlib.import_module, "jupyter_modelserve.modelserver.grpc_server"
        )
        await services.serve(server, manager, executor, metrics, flags.rest_api_max_body_bytes)
    except Exception:  # TF or tensorflow-serving-api missing or broken: REST goes on
        log.exception("Cannot start the gRPC services: not serving gRPC")
        await server.stop(0)


def main(argv: list[str] | None = None, reload_requested: threading.Event | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit status.

    `reload_requested` is set by a SIGHUP handler installed before the imports, if any.
    """
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in args):
        print(USAGE)
        return 0
    setup_logging()
    try:
        flags = parse_flags(args)
    except FlagError as error:
        print(f"ERROR: {error}\n{USAGE}", file=sys.stderr)
        return 2
    start_background_import()

    try:
        configs = read_configs(flags)
    except (OSError, ValueError) as error:
        log.error("Cannot read the model config %s: %s", flags.model_config_file, error)
        return 1
    if flags.model_config_file and flags.model_base_path:
        log.warning("--model_config_file is given: ignoring --model_name/--model_base_path")
    if not _start_batching(flags):
        return 1

    manager = ModelManager()
    watcher = Watcher(flags, manager, reload_requested)
    try:
        asyncio.run(_serve(flags, manager, watcher, configs))
    except OSError as error:
        log.error("Cannot listen on %s:%d: %s", flags.rest_api_host, flags.rest_api_port, error)
        return 1
    return 0


def _start_batching(flags: Flags) -> bool:
    """Turn on TF Serving-style batching when asked; False when its parameters are unusable."""
    if not flags.enable_batching:
        if flags.batching_parameters_file:
            log.warning(
                "--batching_parameters_file is given without --enable_batching: not batching"
            )
        return True
    from .batching import enable
    from .batching_config import read_batching_parameters

    try:
        parameters = read_batching_parameters(flags.batching_parameters_file)
    except (OSError, ValueError) as error:
        log.error(
            "Cannot read the batching parameters %s: %s", flags.batching_parameters_file, error
        )
        return False
    enable(parameters)
    log.info("Batching concurrent predicts: %s", parameters)
    return True


def run(reload_requested: threading.Event | None = None) -> None:
    """Entry point of `python -m jupyter_modelserve.modelserver`."""
    status = main(None, reload_requested)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: load threads may be inside TensorFlow, and TF's own atexit
    # work can take seconds or crash; the exit status is all the parent needs.
    os._exit(status)
