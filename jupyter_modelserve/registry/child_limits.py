"""In a registration step's child process: the limits it sets on itself before it starts.

- RLIMIT_FSIZE: no file it writes grows past the registration's byte limit (with SIGXFSZ
  ignored, such a write fails with EFBIG instead of killing the process without a word). One
  byte over the limit: a file stopped at the cap is then over it, which the parent measures.
- RLIMIT_AS: its address space stays under `memory_cap(max_bytes)`, so a file that inflates
  in memory (a zip or HDF5 bomb, a tensor shape of 10^12) fails with MemoryError instead of
  waking the kernel's OOM killer, who might pick the Jupyter server. TensorFlow reserves far
  more address space than it uses (1.8 GiB peak to export a tiny model, measured with TF 2.21),
  so the cap is generous: a fixed base for TensorFlow itself, plus room for a few copies of the
  largest artifact a registration stores (the file, its weights in memory, the export).
"""

from __future__ import annotations

import resource
import signal

_TENSORFLOW_BASE = 8 * 1024**3
_ARTIFACT_COPIES = 4


def memory_cap(max_bytes: int) -> int:
    """The address space a child of a registration that stores `max_bytes` may reserve."""
    return _TENSORFLOW_BASE + _ARTIFACT_COPIES * max_bytes


def apply_limits(max_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cap = max_bytes + 1
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
    # Never raise a limit someone set for the server already.
    set_already = [v for v in resource.getrlimit(resource.RLIMIT_AS) if v != resource.RLIM_INFINITY]
    memory = min([memory_cap(max_bytes), *set_already])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
