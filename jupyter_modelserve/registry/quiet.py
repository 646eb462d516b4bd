"""Keep TensorFlow's export chatter out of a notebook cell.

Exporting a SavedModel logs `INFO:tensorflow:Assets written to: <staging folder>` through the
`tensorflow` logger; in IPython TensorFlow writes that logger to stdout, and absl's handler on
the root logger writes it again to stderr, so a cell showed the line twice, naming a staging
folder the user never chose. Its C++ side writes to the file descriptors directly, which
ipykernel forwards to the cell too. `quiet_tensorflow()` silences all three for the duration
of an export and restores each afterwards, whatever happens.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

# The loggers TensorFlow and Keras log through; absl's is where absl.logging writes.
_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Silence TensorFlow's logging and this process's stdout and stderr inside the block."""
    saved_levels = [(logger, logger.level) for logger in map(logging.getLogger, _LOGGERS)]
    for logger, _level in saved_levels:
        logger.setLevel(logging.ERROR)
    try:
        with (
            _quiet_descriptors(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            yield
    finally:
        for logger, level in saved_levels:
            logger.setLevel(level)


@contextlib.contextmanager
def _quiet_descriptors() -> Iterator[None]:
    """Point fds 1 and 2 at a scratch file (C++ logging writes there), then back.

    A scratch file rather than /dev/null keeps every write succeeding; its content is dropped.
    Where the descriptors cannot be duplicated (no fd 1 in some embedded interpreters) the
    block runs with them as they are: chatter is a nuisance, not a reason to fail an export.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield
        return
    try:
        with tempfile.TemporaryFile() as scratch:
            os.dup2(scratch.fileno(), 1)
            os.dup2(scratch.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
