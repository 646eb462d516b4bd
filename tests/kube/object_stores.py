"""Stand-in object stores on loopback for the model download tests: S3 and GCS.

- :class:`MotoS3`: moto's server (a real HTTP S3 with IAM, from an environment of its own) with
  authentication ON, so a request without a valid key is refused as by AWS: the first requests
  (seeding: an IAM user with an access key and a policy, the bucket, the objects) run
  unauthenticated, every later one must be signed by that key.
- :class:`FakeGcs`: the part of GCS's JSON API rclone reads (object get and list, media
  download) behind an OAuth token endpoint, as a service account key file uses it: a request
  without the token it issued is a 401.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from filelock import FileLock

from .fixtures import wait_for

MAX_OBJECTS = 100  # a SavedModel has a handful of files; bound what a test can seed


def files_of(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative key, path) of every file under `folder`, sorted."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# moto needs botocore, which pins python-dateutil<3, and the kubernetes client >= 37 needs >= 3:
# they cannot share the test environment. moto's server therefore runs from an environment of
# its own, built once per machine in the cache (like scripts/test-cluster's binaries), and the
# seeding runs there too, as a script.
MOTO_VERSION = "5.2.5"
_SEED_SCRIPT = r"""
import json, sys
import boto3
from botocore.exceptions import ClientError
plan = json.load(sys.stdin)
def client(service):
    return boto3.client(service, endpoint_url=plan["endpoint"], region_name="us-east-1",
                        aws_access_key_id="seed", aws_secret_access_key="seed")
iam = client("iam")
iam.create_user(UserName="model-reader")
policy = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam.put_user_policy(UserName="model-reader", PolicyName="read", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName="model-reader")["AccessKey"]
s3 = client("s3")
s3.create_bucket(Bucket=plan["bucket"])
for name, path in plan["objects"]:
    with open(path, "rb") as f:
        s3.put_object(Bucket=plan["bucket"], Key=name, Body=f.read())
try:  # from here on, only signed requests: an anonymous list is refused
    client("s3").list_objects_v2(Bucket=plan["bucket"])
    refused = False
except ClientError:
    refused = True
print(json.dumps({"key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"],
                  "refused": refused}))
"""


def moto_environment() -> Path:
    """The folder of a virtual environment with `moto[server]`, built on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "jupyter-modelserve" / f"moto-{MOTO_VERSION}"
    done = root / ".complete"
    with FileLock(f"{root}.lock", timeout=900):
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
            subprocess.run(
                [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 f"moto[server]=={MOTO_VERSION}"],
                check=True, timeout=900,
            )  # fmt: skip
            done.touch()
    return root


class MotoS3:
    """moto_server on loopback with one bucket holding `folder` under `prefix`, keys enforced."""

    def __init__(self, bucket: str, prefix: str, folder: Path, workdir: Path) -> None:
        self.bucket, self.prefix, self.folder = bucket, prefix.strip("/"), folder
        self.files = list(files_of(folder))[:MAX_OBJECTS]
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.key_id = ""
        self.secret_key = ""
        self._env = moto_environment()
        # Seeding takes: create_user, put_user_policy, create_access_key, create_bucket, puts.
        self._unauthenticated = 4 + len(self.files)
        self._log = (workdir / "moto.log").open("w")
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self._unauthenticated)}
        self._process = subprocess.Popen(
            [str(self._env / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def __enter__(self) -> MotoS3:
        wait_for(self._answers, timeout=30, what=f"moto_server on {self.endpoint}")
        self._seed()
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._log.close()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _seed(self) -> None:
        plan = {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "objects": [[f"{self.prefix}/{name}", str(path)] for name, path in self.files],
        }
        done = subprocess.run(
            [str(self._env / "bin" / "python"), "-c", _SEED_SCRIPT],
            input=json.dumps(plan), capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        seeded = json.loads(done.stdout.strip().splitlines()[-1])
        self.key_id, self.secret_key = seeded["key_id"], seeded["secret"]
        if not seeded["refused"]:
            raise AssertionError("moto_server accepted an unsigned request after seeding")


class FakeGcs:
    """GCS's JSON API for one bucket, on loopback, behind a token endpoint."""

    def __init__(self, bucket: str, prefix: str, folder: Path, *, public: bool = False) -> None:
        self.bucket, self.public = bucket, public
        self.objects = {
            f"{prefix.strip('/')}/{relative}": path.read_bytes()
            for relative, path in list(files_of(folder))[:MAX_OBJECTS]
        }
        self.token = secrets.token_urlsafe(16)
        self.requests: list[tuple[str, int]] = []  # (path, status) of every request
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the test reads `requests`
                pass

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
                self.rfile.read(length)
                if self.path.split("?")[0] == "/token":
                    store._send(self, 200, {"access_token": store.token, "token_type": "Bearer",
                                            "expires_in": 3600})  # fmt: skip
                else:
                    store._send(self, 404, {"error": {"code": 404, "message": "no such route"}})

            def do_GET(self) -> None:
                store._get(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGcs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def service_account_key(self) -> str:
        """A service account key file (JSON) whose token_uri is this store's token endpoint."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps({
            "type": "service_account", "project_id": "test", "private_key_id": "k1",
            "private_key": pem, "client_email": "reader@test.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"{self.endpoint}/token",
        })  # fmt: skip

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        ctype = "application/octet-stream" if isinstance(body, bytes) else "application/json"
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        self.requests.append((handler.path, status))

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if not self.public and handler.headers.get("Authorization") != f"Bearer {self.token}":
            denied = "Anonymous caller does not have storage.objects.list access"
            self._send(handler, 401, {"error": {"code": 401, "message": denied}})
            return
        parts = url.path.split("/")  # ['', 'storage', 'v1', 'b', bucket, 'o', name?]
        if parts[1:4] != ["storage", "v1", "b"] or len(parts) < 6 or parts[4] != self.bucket:
            self._send(handler, 404, {"error": {"code": 404, "message": "Not Found"}})
            return
        if len(parts) == 6:
            self._send(handler, 200, self._list(query.get("prefix", ""), query.get("delimiter")))
            return
        name = urllib.parse.unquote("/".join(parts[6:]))
        if name not in self.objects:
            self._send(handler, 404, {"error": {"code": 404, "message": "No such object"}})
        elif query.get("alt") == "media":
            self._send(handler, 200, self.objects[name])
        else:
            self._send(handler, 200, self._resource(name))

    def _resource(self, name: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(name, safe="")
        return {
            "kind": "storage#object", "bucket": self.bucket, "name": name,
            "size": str(len(self.objects[name])), "updated": "2026-01-01T00:00:00.000Z",
            "contentType": "application/octet-stream",
            "mediaLink": f"{self.endpoint}/storage/v1/b/{self.bucket}/o/{quoted}?alt=media",
        }  # fmt: skip

    def _list(self, prefix: str, delimiter: str | None) -> dict[str, Any]:
        items, prefixes = [], set()
        for name in sorted(self.objects):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            else:
                items.append(self._resource(name))
        return {"kind": "storage#objects", "items": items, "prefixes": sorted(prefixes)}
