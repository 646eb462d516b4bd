"""Relative model paths mean "in the Jupyter server's root_dir", in a kernel too.

A real `jupyter modelserve` server with its own root_dir starts a real kernel in a subfolder
(so the kernel's working folder is not root_dir); inside that kernel, jupyter_info finds the
server that launched it through Jupyter's runtime files, without ever showing its token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_client import BlockingKernelClient

from jupyter_modelserve import jupyter_info

from .servers import TOKEN, JupyterProcess

KERNEL_CODE = """
from jupyter_modelserve import jupyter_info
import os
print("ROOT", jupyter_info.root_dir())
print("CWD", os.getcwd())
print("INFO", repr(jupyter_info.server_info()))
print("PROXY", jupyter_info.proxy_url("churn model", 3))
"""


@pytest.fixture
def kernel_in_subfolder(
    tmp_path: Path,
) -> Iterator[tuple[JupyterProcess, Path, BlockingKernelClient]]:
    """A Jupyter server whose root_dir is tmp/root, and a kernel it started in root/sub."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    server = JupyterProcess(tmp_path, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    server.start(f"--ServerApp.root_dir={root}")
    kernel_id = None
    client = BlockingKernelClient()
    try:
        code, kernel = server.call("POST", "/api/kernels", {"name": "python3", "path": "sub"})
        assert code == 201, kernel
        kernel_id = kernel["id"]
        client.load_connection_file(str(tmp_path / "runtime" / f"kernel-{kernel_id}.json"))
        client.start_channels()
        client.wait_for_ready(timeout=120)
        yield server, root, client
    finally:
        client.stop_channels()
        if kernel_id is not None:
            requests.delete(  # 204 without a body, which server.call would parse
                f"{server.url}/api/kernels/{kernel_id}",
                headers={"Authorization": f"token {TOKEN}"},
                timeout=60,
            )
        server.stop()


def run_in_kernel(client: BlockingKernelClient, code: str) -> dict[str, str]:
    """Execute `code`, return its printed `KEY value` lines as a dict."""
    printed: list[str] = []

    def collect(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("ERROR " + "\n".join(message["content"]["traceback"]))

    reply = client.execute_interactive(code, output_hook=collect, timeout=120)
    assert reply["content"]["status"] == "ok", printed
    lines = "".join(printed).splitlines()
    return dict(line.split(" ", 1) for line in lines if " " in line)


def test_in_a_kernel_root_dir_is_the_launching_servers_and_the_token_stays_hidden(
    kernel_in_subfolder: tuple[JupyterProcess, Path, BlockingKernelClient],
) -> None:
    # Given a kernel that a Jupyter server with root_dir=root started in root/sub
    server, root, client = kernel_in_subfolder
    # When the kernel asks which server it belongs to
    answers = run_in_kernel(client, KERNEL_CODE)
    # Then root_dir is the server's, not the kernel's working folder
    assert answers["CWD"] == str(root / "sub")
    assert answers["ROOT"] == str(root)
    # And the server's info names it, with its token hidden from the repr
    assert f"'pid': {server.process.pid}" in answers["INFO"]  # type: ignore[union-attr]
    assert TOKEN not in answers["INFO"] and "<hidden>" in answers["INFO"]
    # And a serve's proxy URL goes through that server
    assert answers["PROXY"].startswith("http://")
    assert answers["PROXY"].endswith(
        f":{server.port}/modelserve/v1/models/churn%20model/versions/3:predict"
    )


def root_dir_in_a_fresh_process(tmp_path: Path, cwd: Path, config: dict[str, Any] | None) -> str:
    """What root_dir() says in a Python process that no Jupyter server launched."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "jupyter_server_config.json").write_text(json.dumps(config or {}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "0",
    }
    code = "from jupyter_modelserve import jupyter_info as j; print(j.root_dir())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_outside_jupyter_root_dir_is_the_configured_one_else_the_working_folder(
    tmp_path: Path,
) -> None:
    # Given the runtime file of a live process that is no ancestor of the one asking (a
    # sibling: another user's server, say)
    sibling = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / f"jpserver-{sibling.pid}.json").write_text(
        json.dumps({"pid": sibling.pid, "root_dir": "/nowhere", "token": "secret"})
    )
    work = tmp_path / "work"
    work.mkdir()
    try:
        # When a fresh process asks with c.ServerApp.root_dir configured, Then that is root_dir
        configured = tmp_path / "configured"
        config = {"ServerApp": {"root_dir": str(configured)}}
        assert root_dir_in_a_fresh_process(tmp_path, work, config) == str(configured)
    finally:
        sibling.communicate(b"\n", timeout=30)
    # And without it, the working folder
    assert root_dir_in_a_fresh_process(tmp_path, work, None) == str(work)


def test_a_runtime_file_of_an_ancestor_is_found_and_a_stale_one_ignored(tmp_path: Path) -> None:
    # Given the runtime file of a "server" that is this process's parent, and one of a pid
    # that is not our ancestor
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    parent = {"pid": os.getppid(), "root_dir": str(tmp_path), "url": "http://h:1/", "token": "t0k"}
    (runtime / "jpserver-1.json").write_text(json.dumps(parent))
    (runtime / "jpserver-2.json").write_text(json.dumps({"pid": 2**22 + 7, "root_dir": "/x"}))
    (runtime / "jpserver-3.json").write_text("{half a file")
    # When this process asks
    info = jupyter_info.server_info(runtime)
    # Then the parent's is the one, and its token shows in no repr or str
    assert info is not None and info["root_dir"] == str(tmp_path)
    assert "t0k" not in repr(info) and "t0k" not in str(info) and "t0k" not in f"{info}"
    # And once the parent's file is gone, no server is found
    (runtime / "jpserver-1.json").unlink()
    assert jupyter_info.server_info(runtime) is None


def test_a_leftover_runtime_file_whose_pid_an_ancestor_now_has_is_ignored(tmp_path: Path) -> None:
    # Given a runtime file naming this process's parent (the shell that ran pytest, say) and
    # written before that process started: a killed server's leftover whose pid was reused
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    leftover = runtime / "jpserver-1.json"
    leftover.write_text(json.dumps({"pid": os.getppid(), "root_dir": "/stale", "token": "t"}))
    started = jupyter_info._start_time(os.getppid())
    assert started is not None
    os.utime(leftover, (started - 3600, started - 3600))
    # When this process asks which server it belongs to, Then it belongs to none
    assert jupyter_info.server_info(runtime) is None
    # And the same file written after the parent started is believed
    os.utime(leftover, None)
    info = jupyter_info.server_info(runtime)
    assert info is not None and info["root_dir"] == "/stale"


def test_a_notebook_registers_a_path_of_the_file_browser_and_shares_the_proxy_url(
    kernel_in_subfolder: tuple[JupyterProcess, Path, BlockingKernelClient], half_plus_two: Path
) -> None:
    # Given a SavedModel at root/export, which the file browser shows as "export", and a
    # kernel whose notebook sits in root/sub
    server, root, client = kernel_in_subfolder
    shutil.copytree(half_plus_two, root / "export")

    # When the notebook registers "export" and serves it
    answers = run_in_kernel(
        client,
        "from jupyter_modelserve import api\n"
        "v = api.register('export', 'simple')\n"
        "s = api.serve('simple', v.version, timeout=120)\n"
        "print('STATE', s.state)\n"
        "print('PROXY', s.proxy_url)\n",
    )

    # Then the path was read from the server's root_dir, not the notebook's folder
    assert answers["STATE"] == "AVAILABLE", answers
    # And its proxy_url predicts through the Jupyter server, with the server's token only
    url = answers["PROXY"]
    assert url.endswith(f":{server.port}/modelserve/v1/models/simple/versions/1:predict"), url
    body = {"instances": [1.0, 2.0]}
    assert requests.post(url, json=body, timeout=60).status_code == 403
    answer = requests.post(url, json=body, headers={"Authorization": f"token {TOKEN}"}, timeout=60)
    assert answer.json() == {"predictions": [2.5, 3.0]}
    server.stop_model_server()
