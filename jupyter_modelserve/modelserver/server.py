"""The model server process: flags, config (re)loading, signals and the HTTP listener.

Start-up is ordered for speed: TensorFlow (~2.5 s to import) starts importing on a background
thread at once, the port opens right away so status answers while models load, and each load
waits for the import only when it needs TensorFlow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import tornado.netutil

from ..tfserving.model_config import ModelConfig, parse_model_config_list
from .flags import USAGE, FlagError, Flags, parse_flags, request_policy
from .http import make_server
from .logs import log, setup_logging
from .manager import ModelManager
from .tfimport import start_background_import


def read_configs(flags: Flags) -> list[ModelConfig]:
    """The models to serve, from the config file or from --model_name/--model_base_path."""
    if not flags.model_config_file:
        base_path = os.path.abspath(flags.model_base_path)
        return [ModelConfig(name=flags.model_name, base_path=base_path)]
    with open(flags.model_config_file, encoding="utf-8") as f:
        return parse_model_config_list(f.read())


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
    server = make_server(manager, executor, request_policy(flags))
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
    await stop.wait()
    log.info("Shutting down the model server")
    server.stop()


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
    if flags.port:
        log.info("gRPC is not served by the built-in model server: ignoring --port=%d", flags.port)
    if flags.model_config_file and flags.model_base_path:
        log.warning("--model_config_file is given: ignoring --model_name/--model_base_path")

    manager = ModelManager()
    watcher = Watcher(flags, manager, reload_requested)
    try:
        asyncio.run(_serve(flags, manager, watcher, configs))
    except OSError as error:
        log.error("Cannot listen on %s:%d: %s", flags.rest_api_host, flags.rest_api_port, error)
        return 1
    return 0


def run(reload_requested: threading.Event | None = None) -> None:
    """Entry point of `python -m jupyter_modelserve.modelserver`."""
    status = main(None, reload_requested)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: load threads may be inside TensorFlow, and TF's own atexit
    # work can take seconds or crash; the exit status is all the parent needs.
    os._exit(status)
