"""Hostile SavedModel folders: links, devices, FIFOs, loops, huge files, broken artifact roots.

Every case goes through the real service (a real RegistryStore on SQLite and the LocalBackend,
no model server needed to register) or through REST on a real Jupyter server, with a real
half_plus_two SavedModel made hostile. Each one also checks that a refusal leaves nothing behind:
no staging folder, no version row, no registered model created on the way, no artifact folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.errors import (
    InvalidInput,
    ModelServeError,
    NotFound,
    PayloadTooLarge,
    ServerFault,
)
from jupyter_modelserve.registry import artifacts
from jupyter_modelserve.registry.model_registry import ModelRegistry
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.service import ServeService

from ..conftest import Api
from . import tally

QUICK = 10.0  # seconds a refusal may take at most: /dev/zero or a FIFO must never hang it


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    """A real registry on its own SQLite file and artifact root (no backend, no model server)."""
    store = RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield ModelRegistry(store, tmp_path / "artifacts")
    store.close()


@pytest.fixture
def model(half_plus_two: Path, tmp_path: Path) -> Path:
    """A private copy of half_plus_two to make hostile."""
    folder = tmp_path / "source" / "1"
    shutil.copytree(half_plus_two, folder)
    return folder


def call_within(seconds: float, function: Callable[[], Any]) -> Any:
    """Run `function` in a daemon thread; fail (instead of hanging the suite) past `seconds`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    assert time.monotonic() - started < seconds
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def staged(service: ModelRegistry) -> list[str]:
    staging = service.artifact_root / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def assert_nothing_left(service: ModelRegistry, name: str) -> None:
    assert staged(service) == [], "a staging folder was left behind"
    assert not (service.artifact_root / name).exists(), "an artifact folder was left behind"
    with pytest.raises(NotFound):
        service.store.get_registered_model(name)


def refused(service: ModelRegistry, folder: Path, name: str = "hostile") -> InvalidInput:
    """Register `folder` and expect a quick InvalidInput that leaves nothing behind."""
    tally.bad_input()
    with pytest.raises(InvalidInput) as caught:
        call_within(QUICK, lambda: service.register_saved_model(folder, name))
    assert_nothing_left(service, name)
    return caught.value


# -- links --------------------------------------------------------------------------------------


def test_a_link_to_dev_zero_is_refused_at_once(registry: ModelRegistry, model: Path) -> None:
    # Given a SavedModel whose variables folder holds a link to /dev/zero
    (model / "variables" / "zero").symlink_to("/dev/zero")

    # When it is registered
    error = refused(registry, model)

    # Then it is refused quickly, naming the entry and why, and nothing is left
    assert "variables/zero is a symbolic link to /dev/zero, outside the model folder" in str(error)
    assert "copy the file in instead" in str(error)


def test_a_link_to_a_file_outside_is_refused_and_nothing_of_it_is_copied(
    registry: ModelRegistry, model: Path
) -> None:
    # Given a SavedModel with a link to /etc/passwd among its assets
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "vocab.txt").symlink_to("/etc/passwd")

    # When it is registered
    error = refused(registry, model)

    # Then the link is named with its target, and no copy of /etc/passwd exists anywhere
    assert "assets/vocab.txt is a symbolic link to /etc/passwd, outside the model" in str(error)
    copied = [p for p in registry.artifact_root.rglob("*") if p.name == "vocab.txt"]
    assert copied == []


def test_a_relative_link_climbing_out_is_refused(
    registry: ModelRegistry, model: Path, tmp_path: Path
) -> None:
    # Given a secret next to the model folder, and a relative link that climbs out to it
    (tmp_path / "secret.txt").write_text("not for the model")
    (model / "variables" / "secret").symlink_to("../../../secret.txt")

    # When it is registered, Then it is refused naming where the link really leads
    error = refused(registry, model)
    assert f"variables/secret is a symbolic link to {tmp_path / 'secret.txt'}" in str(error)


def test_a_link_to_a_folder_outside_is_refused(
    registry: ModelRegistry, model: Path, tmp_path: Path
) -> None:
    # Given a folder outside the model with files in it, linked from inside
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"x" * 100)
    (model / "extra").symlink_to(outside)

    # When it is registered, Then it is refused, naming the link
    error = refused(registry, model)
    assert "extra is a symbolic link to" in str(error) and "outside the model" in str(error)


def test_a_link_loop_inside_the_folder_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a link inside the folder to the folder itself (a loop for any walker following it)
    (model / "variables" / "again").symlink_to("..")

    # When it is registered, Then it is refused as a link to a folder
    error = refused(registry, model)
    assert "variables/again is a symbolic link to a folder" in str(error)


def test_links_pointing_at_each_other_are_refused(registry: ModelRegistry, model: Path) -> None:
    # Given two links inside the folder that point at each other
    (model / "a").symlink_to("b")
    (model / "b").symlink_to("a")

    # When it is registered, Then it is refused, naming the first of them
    error = refused(registry, model)
    assert "a in the model folder" in str(error) and "cannot be resolved" in str(error)


def test_a_dangling_link_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a link to nothing
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "gone").symlink_to("missing-file")

    # When it is registered, Then it is refused saying its target does not exist
    error = refused(registry, model)
    assert "assets/gone" in str(error) and "missing-file, which does not exist" in str(error)


def test_a_saved_model_pb_linking_out_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a saved_model.pb that is a link to /dev/zero
    (model / "saved_model.pb").unlink()
    (model / "saved_model.pb").symlink_to("/dev/zero")

    # When it is registered, Then the same rules apply to it, quickly
    error = refused(registry, model)
    assert "saved_model.pb is a symbolic link to /dev/zero, outside" in str(error)


def test_a_link_to_a_file_inside_is_copied_as_that_file(
    registry: ModelRegistry, model: Path
) -> None:
    # Given a link inside the folder to one of its own regular files
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "index-copy").symlink_to("../variables/variables.index")

    # When it is registered
    version = call_within(QUICK, lambda: registry.register_saved_model(model, "linked"))

    # Then the stored copy holds a regular file with the linked file's bytes, and no link
    stored = Path(version.source) / "assets" / "index-copy"
    assert stat.S_ISREG(os.lstat(stored).st_mode)
    assert stored.read_bytes() == (model / "variables" / "variables.index").read_bytes()
    assert not [p for p in Path(version.source).rglob("*") if p.is_symlink()]
    assert staged(registry) == []


def test_the_named_folder_may_itself_be_a_link(
    registry: ModelRegistry, model: Path, tmp_path: Path
) -> None:
    # Given a link (the user's own choice) to a clean SavedModel folder
    pointer = tmp_path / "latest"
    pointer.symlink_to(model)

    # When it is registered through the link
    version = registry.register_saved_model(pointer, "via-link")

    # Then the resolved folder is copied
    assert (Path(version.source) / "saved_model.pb").is_file()
    assert (Path(version.source) / "variables" / "variables.index").is_file()


# -- special files ------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_hanging(registry: ModelRegistry, model: Path) -> None:
    # Given a FIFO in the variables folder (opening it for reading would block forever)
    os.mkfifo(model / "variables" / "pipe")

    # When it is registered, Then it is refused quickly, named as a FIFO
    error = refused(registry, model)
    assert "variables/pipe" in str(error) and "a FIFO (named pipe)" in str(error)


def test_a_saved_model_pb_that_is_a_fifo_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a saved_model.pb that is a FIFO
    (model / "saved_model.pb").unlink()
    os.mkfifo(model / "saved_model.pb")

    # When it is registered, Then it is refused quickly
    error = refused(registry, model)
    assert "saved_model.pb" in str(error) and "FIFO" in str(error)


def test_a_link_to_a_fifo_inside_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a FIFO inside the folder and a link to it (the link stays inside; its target is bad)
    os.mkfifo(model / "pipe")
    (model / "variables" / "to-pipe").symlink_to("../pipe")

    # When it is registered, Then it is refused quickly (the FIFO itself or the link to it)
    error = refused(registry, model)
    assert "FIFO" in str(error)


def test_a_socket_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a Unix socket in the folder (bound in a short path, then moved: sun_path is short)
    short = Path(tempfile.mkdtemp(prefix="ms"))
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(short / "s"))
        try:
            os.replace(short / "s", model / "variables" / "sock")
        except OSError as exc:
            pytest.skip(f"cannot move a socket into the test folder: {exc}")

        # When it is registered, Then it is refused, named as a socket
        error = refused(registry, model)
        assert "variables/sock" in str(error) and "a socket" in str(error)
    finally:
        server.close()
        shutil.rmtree(short, ignore_errors=True)


def test_a_device_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a character device node (like /dev/zero) made inside the folder
    try:
        os.mknod(model / "variables" / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("this process may not create device nodes")

    # When it is registered, Then it is refused quickly, named as a device
    error = refused(registry, model)
    assert "variables/zero" in str(error) and "a character device" in str(error)


def test_a_folder_nested_too_deep_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given 80 nested folders inside the model
    deep = model / "assets"
    for _ in range(80):
        deep = deep / "d"
    deep.mkdir(parents=True)

    # When it is registered, Then it is refused as too deep
    error = refused(registry, model)
    assert "folders deep" in str(error)


def test_an_unreadable_saved_model_pb_is_refused(registry: ModelRegistry, model: Path) -> None:
    # Given a saved_model.pb of garbage that claims a huge length-delimited field
    (model / "saved_model.pb").write_bytes(b"\x12\xff\xff\xff\xff\x0f" + b"\x00" * 64)

    # When it is registered, Then it is refused as unreadable, without reading gigabytes
    error = refused(registry, model)
    assert "has no readable saved_model.pb: truncated protobuf message" in str(error)


# -- size ---------------------------------------------------------------------------------------


def test_a_huge_sparse_file_is_refused_with_413_before_it_is_read(
    registry: ModelRegistry, model: Path
) -> None:
    # Given a limit of 1 MiB and a sparse file of 64 GiB in the model (no disk used)
    registry.max_artifact_bytes = 1024**2
    with open(model / "variables" / "huge.data", "wb") as huge:
        huge.truncate(64 * 1024**3)
    tally.bad_input()

    # When it is registered
    with pytest.raises(PayloadTooLarge) as caught:
        call_within(QUICK, lambda: registry.register_saved_model(model, "huge"))

    # Then the error names the limit and the setting, and nothing is left
    message = str(caught.value)
    assert "1 MiB (1048576 bytes)" in message
    assert "c.ModelServeApp.max_artifact_bytes" in message
    assert_nothing_left(registry, "huge")


def test_the_limit_is_on_the_sum_of_the_files(registry: ModelRegistry, model: Path) -> None:
    # Given a limit of 1 MiB and two files of 600 KiB each (each alone under the limit)
    registry.max_artifact_bytes = 1024**2
    for name in ("a.bin", "b.bin"):
        (model / "assets").mkdir(exist_ok=True)
        (model / "assets" / name).write_bytes(os.urandom(600 * 1024))
    tally.bad_input()

    # When it is registered, Then it is refused with 413 and nothing is left
    with pytest.raises(PayloadTooLarge, match="max_artifact_bytes"):
        registry.register_saved_model(model, "twice")
    assert_nothing_left(registry, "twice")


async def test_rest_a_folder_over_the_limit_answers_413_and_leaves_nothing(
    api: Api, service: ServeService, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose artifact limit is 64 KiB, and a model with a 1 MiB file
    monkeypatch.setattr(service.registry, "max_artifact_bytes", 64 * 1024)
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "big.bin").write_bytes(b"\x01" * 1024**2)
    tally.bad_input()
    tally.requests(2)

    # When it is registered through REST
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": "toolarge", "source": str(model), "modelType": "tensorflow"},
    )

    # Then the answer is 413 naming the limit and its setting, and nothing is left
    assert code == 413, envelope
    assert "64 KiB" in envelope["message"]
    assert "c.ModelServeApp.max_artifact_bytes" in envelope["message"]
    assert_nothing_left(service.registry, "toolarge")
    code, _ = await api("GET", "/api/v1/registered-model/toolarge")
    assert code == 404


async def test_rest_a_link_to_dev_zero_is_a_quick_400_and_leaves_nothing(
    api: Api, service: ServeService, model: Path
) -> None:
    # Given a model with a link to /dev/zero
    (model / "variables" / "zero").symlink_to("/dev/zero")
    tally.bad_input()
    tally.requests()

    # When it is registered through REST
    started = time.monotonic()
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": "zeros", "source": str(model), "modelType": "tensorflow"},
    )

    # Then it is refused at once, naming the link, and nothing is left
    assert time.monotonic() - started < QUICK
    assert code == 400, envelope
    assert "variables/zero is a symbolic link to /dev/zero" in envelope["message"]
    assert_nothing_left(service.registry, "zeros")


# -- our side failing ---------------------------------------------------------------------------


def test_an_unwritable_artifact_root_is_a_server_fault_that_names_it(
    tmp_path: Path, model: Path
) -> None:
    # Given an artifact root that is a file (root ignores permission bits; a file never works)
    blocked = tmp_path / "artifacts-file"
    blocked.write_text("not a folder")
    store = RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    registry = ModelRegistry(store, blocked)
    tally.fault()
    try:
        # When a valid model is registered
        with pytest.raises(ServerFault) as caught:
            registry.register_saved_model(model, "nowhere")

        # Then it is a server fault naming the folder and the setting, and no model was created
        assert str(blocked) in str(caught.value)
        assert "c.ModelServeApp.artifact_root" in str(caught.value)
        with pytest.raises(NotFound):
            registry.get_registered_model("nowhere")
        assert blocked.read_text() == "not a folder"
    finally:
        store.close()


async def test_rest_an_unwritable_artifact_root_answers_500_not_400(
    api: Api, service: ServeService, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose artifact root has become a file
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    monkeypatch.setattr(service.registry, "artifact_root", blocked)
    tally.fault()
    tally.requests(2)

    # When a valid model is registered through REST
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": "nowhere", "source": str(model), "modelType": "tensorflow"},
    )

    # Then the answer is a 500 that names the folder and the setting, and no model exists
    assert code == 500, envelope
    assert str(blocked) in envelope["message"]
    assert "c.ModelServeApp.artifact_root" in envelope["message"]
    code, _ = await api("GET", "/api/v1/registered-model/nowhere")
    assert code == 404


def test_a_failed_placement_removes_the_version_and_the_model_it_created(
    registry: ModelRegistry, model: Path
) -> None:
    # Given a file where the model's folder under the artifact root would go
    registry.artifact_root.mkdir(parents=True, exist_ok=True)
    (registry.artifact_root / "squatted").write_text("in the way")
    tally.fault()

    # When the model is registered
    with pytest.raises(ServerFault, match=r"c\.ModelServeApp\.artifact_root"):
        registry.register_saved_model(model, "squatted")

    # Then no version row, no registered model and no staging folder remain
    assert staged(registry) == []
    with pytest.raises(NotFound):
        registry.store.get_registered_model("squatted")
    assert (registry.artifact_root / "squatted").read_text() == "in the way"


def test_a_failed_registration_keeps_a_model_that_existed_before(
    registry: ModelRegistry, model: Path
) -> None:
    # Given a registered model created explicitly (no versions), and a file in its folder's way
    registry.create_registered_model("kept", "made by hand", ["mine"])
    registry.artifact_root.mkdir(parents=True, exist_ok=True)
    (registry.artifact_root / "kept").write_text("in the way")

    # When a version of it fails to register
    with pytest.raises(ServerFault):
        registry.register_saved_model(model, "kept")

    # Then the model stays as it was, with no version
    kept = registry.store.get_registered_model("kept")
    assert kept.description == "made by hand"
    assert registry.store.list_model_versions("kept") == []
    assert staged(registry) == []


def test_a_name_too_long_for_a_folder_fails_cleanly(registry: ModelRegistry, model: Path) -> None:
    # Given a name of 256 characters (a file name has at most 255 bytes)
    name = "a" * 256
    tally.bad_input()

    # When it is registered
    with pytest.raises(ModelServeError) as caught:
        registry.register_saved_model(model, name)

    # Then it is a client error and nothing is left: no model, no staging, no folder
    assert 400 <= caught.value.status < 500, caught.value
    assert_nothing_left(registry, name)
    assert registry.store.list_registered_models() == []


async def test_rest_a_name_too_long_for_a_folder_fails_cleanly(
    api: Api, service: ServeService, model: Path
) -> None:
    # Given a 256-character name
    name = "b" * 256
    tally.bad_input()
    tally.requests()

    # When it is registered through REST
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": name, "source": str(model), "modelType": "tensorflow"},
    )

    # Then it is a client error naming the name, and nothing is left
    assert 400 <= code < 500, envelope
    assert envelope["message"].startswith("name:")
    assert name not in {m.name for m in service.store.list_registered_models()}
    assert staged(service.registry) == []


# -- staging left by dead processes -------------------------------------------------------------


def test_staging_of_dead_processes_is_cleaned_while_live_ones_stay(registry: ModelRegistry) -> None:
    # Given staging folders of: a dead process here, this live process, another host (recent and
    # two days old), an old-style name (recent and two days old)
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = registry.artifact_root / ".staging"
    root.mkdir(parents=True)
    host = socket.gethostname()
    names = {
        "dead": f"{host}-{dead.pid}-{'d' * 32}",
        "live": artifacts.new_staging_folder(root).name,
        "other-host": f"elsewhere-1-{'e' * 32}",
        "other-host-old": f"elsewhere-2-{'f' * 32}",
        "old-style": "0" * 32,
        "old-style-old": "1" * 32,
    }
    for name in names.values():
        (root / name / "variables").mkdir(parents=True)
        (root / name / "variables" / "variables.data-00000-of-00001").write_bytes(b"\0" * 10)
    two_days_ago = time.time() - 2 * 24 * 3600
    for key in ("other-host-old", "old-style-old"):
        os.utime(root / names[key], (two_days_ago, two_days_ago))

    # When the staging folder is cleaned, as a server does at start
    removed = registry.clean_staging()

    # Then what dead processes left is gone, and a live process's copy stays
    gone = {names["dead"], names["other-host-old"], names["old-style-old"]}
    assert {p.name for p in removed} == gone
    assert set(staged(registry)) == set(names.values()) - gone
    assert names["live"] in staged(registry)


def test_cleaning_a_missing_staging_folder_does_nothing(registry: ModelRegistry) -> None:
    # Given a fresh artifact root, When staging is cleaned, Then nothing fails or is made
    assert registry.clean_staging() == []
    assert not (registry.artifact_root / ".staging").exists()


def test_the_staging_folder_of_a_killed_process_is_cleaned(registry: ModelRegistry) -> None:
    # Given a process that made a staging folder the way a registration does, then was killed
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from jupyter_modelserve.registry.artifacts import new_staging_folder; "
            "folder = new_staging_folder(Path(sys.argv[1])); folder.mkdir(); "
            "(folder / 'saved_model.pb').write_bytes(b'partial'); "
            "print(folder, flush=True); sys.stdin.read()",
            str(registry.artifact_root / ".staging"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    left = Path(child.stdout.readline().strip())
    child.kill()
    child.wait()
    tally.fault()
    assert left.name.startswith(f"{socket.gethostname()}-{child.pid}-") and left.is_dir()

    # When staging is cleaned, as the next server start does
    removed = registry.clean_staging()

    # Then the killed process's folder is gone
    assert removed == [left]
    assert staged(registry) == []


@pytest.mark.parametrize("source", ["~nosuchuser-modelserve/model", "models/\x00/1"])
def test_a_source_that_cannot_name_a_folder_is_a_400(registry: ModelRegistry, source: str) -> None:
    # Given a source naming an unknown user's home, or carrying a NUL byte
    # When it is registered
    with pytest.raises(InvalidInput) as raised:
        registry.register(source, "mymodel")
    tally.bad_input()

    # Then it is the client's mistake, said as such, and nothing is registered
    assert raised.value.message.startswith("source: ")
    assert not any(m.name == "mymodel" for m in registry.store.list_registered_models())
