"""Each peer's own virtualenv under ~/.cache/jupyter-modelserve/bench-peers/<name>-<version>.

    .venv/bin/python -m benchmarks.peers.install [mlflow|kserve ...]

Pinned versions, installed once from PyPI with pip and kept; a lock keeps two runs from building
the same one at once. A venv is only used once its `.ready` marker exists, so a half-built one
(an interrupted install) is built again rather than half-used.
"""

from __future__ import annotations

import argparse
import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path.home() / ".cache" / "jupyter-modelserve" / "bench-peers"
# The same TensorFlow distribution as ours (tensorflow-serving-api requires `tensorflow`, not
# `tensorflow-cpu`): tensorflow-cpu imports ~1.9 s faster here, which would hand the peers a
# head start in every cold-start figure.
TENSORFLOW = "tensorflow==2.21.0"
PEERS: dict[str, tuple[str, list[str]]] = {
    # name: (version, pip requirements)
    "mlflow": ("3.17.2", ["mlflow==3.17.2", TENSORFLOW]),
    "kserve": ("0.21.0", ["kserve==0.21.0", TENSORFLOW]),
}


def venv_dir(name: str) -> Path:
    version, _ = PEERS[name]
    return CACHE / f"{name}-{version}"


def python_of(name: str) -> Path:
    return venv_dir(name) / "bin" / "python"


def ensure(name: str, timeout_s: float = 1800) -> Path:
    """The peer's venv python, building the venv first if it is not there yet."""
    folder = venv_dir(name)
    ready = folder / ".ready"
    _, requirements = PEERS[name]
    if _built_with(ready, requirements):
        return python_of(name)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _built_with(ready, requirements):  # another run built it while we waited
            return python_of(name)
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
        command = [str(python_of(name)), "-m", "pip", "install", "-q", *requirements]
        install = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if install.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(requirements)} failed:\n{install.stderr}")
        ready.write_text(" ".join(requirements) + "\n")
    return python_of(name)


def _built_with(ready: Path, requirements: list[str]) -> bool:
    """The venv is complete and holds exactly these pins (a changed pin rebuilds it)."""
    try:
        return ready.read_text().split() == requirements
    except FileNotFoundError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(PEERS), choices=sorted(PEERS))
    for name in parser.parse_args().names:
        print(f"{name}: {ensure(name)}")


if __name__ == "__main__":
    main()
