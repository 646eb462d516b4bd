"""A plain-HTTP proxy on loopback in front of the real API server that answers 500 for the
paths a test picks: a real failing read, with every other request going to the real server."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

# Not forwarded: hop-by-hop headers, and the proxy's own token (the upstream identity's is sent).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
NOT_FORWARDED = HOP_BY_HOP | {"authorization"}


def _upstream(kubeconfig: Path) -> tuple[str, int, ssl.SSLContext, dict[str, str]]:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    parts = urlsplit(cluster["server"])
    context = ssl.create_default_context()
    authority = cluster.get("certificate-authority-data")
    if authority:
        context.load_verify_locations(cadata=base64.b64decode(authority).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(
            cafile=str(kubeconfig.parent / cluster["certificate-authority"])
        )
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return parts.hostname or "127.0.0.1", parts.port or 443, context, headers


@contextmanager
def failing_proxy(kubeconfig: Path, fails: Callable[[str], bool], out: Path) -> Iterator[Path]:
    """A kubeconfig (written to `out`) for a proxy that answers 500 to the requests whose path
    and query `fails` picks and forwards the rest, as the identity of `kubeconfig` (a token)."""
    host, port, context, auth = _upstream(kubeconfig)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if fails(self.path):
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                          "message": "the proxy in front of the API server failed"}  # fmt: skip
                self._answer(500, {"Content-Type": "application/json"}, json.dumps(status).encode())
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
            headers.update(auth)
            connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                kept = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
                self._answer(answer.status, kept, data)
            finally:
                connection.close()

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "p", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
        ],
        "users": [{"name": "u", "user": {"token": "via-proxy"}}],
        "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
        "current-context": "p",
    }
    out.write_text(yaml.safe_dump(document))
    try:
        yield out
    finally:
        server.shutdown()
        server.server_close()
