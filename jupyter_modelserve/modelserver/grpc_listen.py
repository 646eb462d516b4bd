"""The gRPC port, bound at start-up before TensorFlow is imported.

The services need TF Serving's generated modules, which import TensorFlow (seconds), but the port
is taken at once: no other process can take it meanwhile, and clients that connect early are
answered once the services start. This module imports gRPC only.
"""

from __future__ import annotations

import grpc


def listen(host: str, port: int, max_bytes: int) -> tuple[grpc.aio.Server, int]:
    """A gRPC server bound to host:port (0: a free port), not started; and its port.

    Its largest accepted message is `max_bytes`, the REST body limit, so one policy bounds both
    APIs. Raises OSError when the port cannot be bound. Call it on the running asyncio loop.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.so_reuseport", 0),  # a port held by another server is an error, not shared
        ]
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:  # how grpc reports a failed bind
        raise OSError(f"cannot bind {address}: {error}") from None
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    return server, bound
