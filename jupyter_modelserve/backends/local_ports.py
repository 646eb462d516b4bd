"""Which ports a (re)started local model server binds, for REST and for gRPC.

The last port used when possible, so urls already handed out stay valid. After a crash the dead
process's socket may take a moment to close: wait for it rather than move. A port set explicitly
is used or refused; a default one (TF Serving's 8501/8500), when another program (a second
user's server) has it, gives way to a free port, which is then kept for the data folder.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from ..errors import BackendUnavailable
from .process import HOST, free_port, port_in_use, wait_until_free


@dataclass(frozen=True)
class PortSetting:
    wanted: int  # the setting's value; 0: any free port
    explicit: bool  # set by config or code, not left at its default
    setting: str  # its name, for messages: "c.LocalBackend.rest_api_port"


def choose_port(
    setting: PortSetting,
    last: int | None,
    release_timeout: float,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    taken: Collection[int] = (),
) -> int:
    """The port to start on; `taken`: ports already chosen for the other API of this server."""
    wanted = setting.wanted
    if setting.explicit and wanted:
        if wanted in taken:
            raise BackendUnavailable(
                f"{setting.setting} = {wanted} is the model server's other port too; set "
                "different ports for REST and gRPC"
            )
        if last == wanted:
            wait_until_free(last, release_timeout)
        if port_in_use(wanted):
            raise BackendUnavailable(
                f"port {wanted} on {HOST} is in use by another program, so the model server "
                f"cannot start; set {setting.setting} to a free port (or 0 to pick one)"
            )
        return wanted
    for port in dict.fromkeys(p for p in (last, wanted) if p and p not in taken):
        if port == last and wait_until_free(port, release_timeout):
            return port
        if not port_in_use(port):
            return port
    port = free_port()
    while port in taken:  # the OS just handed the other one out: ask again
        port = free_port()
    if wanted:
        log.info("Port %s on %s is taken: the model server uses %s", wanted, HOST, port)
    return port
