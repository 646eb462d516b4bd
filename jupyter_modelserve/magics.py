"""The `%serve` magic: the shortest path from a trained model to a live endpoint.

%load_ext jupyter_modelserve
%serve register model --name churn      # a Keras model variable, a SavedModel folder or a URI
s = %serve churn 1                      # waits until AVAILABLE, with progress
%serve predict churn 1 [[0.1, 0.2, 0.3]]
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
import sys
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import api
from .errors import InvalidInput, ModelServeError, ServeFailed, ServerFault
from .results import signature_lines
from .schemas import (
    ServeState,
    ServeView,
    validate_model_name,
    validate_version,
    validate_wait_seconds,
)
from .servestate import not_ready, settled

SUBCOMMANDS = ("delete", "list", "status", "logs", "register", "predict")


class Logs(list[str]):
    """Log lines that display as lines, not as a Python list."""

    def __repr__(self) -> str:
        return "\n".join(self) or "(no log lines)"


@magics_class
class ServeMagics(Magics):
    @magic_arguments()
    @argument(
        "words",
        nargs="*",
        help="NAME VERSION | delete NAME VERSION | list | status NAME VERSION | "
        "logs NAME VERSION | register SOURCE --name NAME | predict NAME VERSION DATA",
    )
    @argument("--no-wait", action="store_true", help="return at once instead of waiting")
    @argument("--timeout", type=float, default=api.DEFAULT_TIMEOUT, help="seconds to wait")
    @argument("--name", help="registered model name (register)")
    @argument("--description", help="description of the new version (register)")
    @argument("--tail", type=int, default=100, help="how many log lines (logs)")
    @line_magic
    def serve(self, line: str) -> Any:
        """Serve registered TensorFlow models from this notebook.

        %serve NAME VERSION [--no-wait] [--timeout S]
            Serve a registered version and wait until it is AVAILABLE; returns a Serve
            (url, state, signature, predict(), logs(), delete()) and shows its signature
            and a request that works.
        %serve delete NAME VERSION      stop serving it
        %serve list                     every serve, with state and url
        %serve status NAME VERSION      one serve, with its traffic (requests, p50/p99)
        %serve logs NAME VERSION [--tail N]
        %serve register SOURCE --name NAME [--description TEXT]
            SOURCE: a Keras model variable, a SavedModel folder, a .keras or .h5 file, an
            s3:// or gs:// folder, or an MLflow runs:/ or models:/ URI.
        %serve predict NAME VERSION DATA
            DATA: a variable (numpy arrays and DataFrames work), TF Serving's `instances`
            as JSON, or a Python expression such as x[:2].

        An error fails the cell with one line saying what to do. A serve that ends FAILED
        is still returned, so `s = %serve simple 1` then `s.reason` and `s.logs()` work.
        """
        try:
            return self._run(line)
        except ServerFault:
            raise  # a fault on our side: its traceback is what a bug report needs
        except ModelServeError as error:
            raise _one_line(error) from None

    def _run(self, line: str) -> Any:
        # Split on blanks only: str.split() would also split on "\x1c" or "\u2028", quietly
        # turning "evil\u2028" into the valid name "evil" instead of refusing it.
        words = re.split(r"[ \t]+", line.strip(" \t"), maxsplit=3)
        if len(words) == 4 and words[0] == "predict":
            # DATA is JSON or Python: shlex would eat its quotes and argparse its minus signs.
            return self._predict(words[1], words[2], words[3])
        try:
            # shlex, not parse_argstring: that keeps quotes ('a b' stays "'a b'").
            args = self.serve.parser.parse_args(shlex.split(line))
        except (UsageError, ValueError) as exc:  # bad options, unbalanced quotes: one line
            raise InvalidInput(f"{exc}; see %serve?") from None
        return self._dispatch(args)

    def _dispatch(self, args: Any) -> Any:
        words: list[str] = args.words
        if not words:
            raise InvalidInput("say what to serve: %serve NAME VERSION (see %serve?)")
        command, rest = (words[0], words[1:]) if words[0] in SUBCOMMANDS else ("create", words)
        if command == "create":
            _check_not_a_typo(words)
        if command == "list":
            _expect(rest, 0, "%serve list")
            return api.serves()
        if command == "register":
            _expect(rest, 1, "%serve register SOURCE --name NAME")
            if not args.name:
                raise InvalidInput("--name: say which model this is a version of")
            name = validate_model_name(args.name, "--name")
            return api.register(self._source(rest[0]), name, args.description)
        if command == "predict":  # with DATA it never gets here (see serve)
            raise InvalidInput("usage: %serve predict NAME VERSION DATA")
        _expect(rest, 2, f"%serve {'' if command == 'create' else command + ' '}NAME VERSION")
        name, version = _name(rest[0]), _version(rest[1])
        if command == "delete":
            api.delete(name, version)
            print(f"Stopped serving {name} version {version}")
            return None
        if command == "status":
            return api.get(name, version)
        if command == "logs":
            return Logs(api.get(name, version).logs(args.tail))
        timeout = validate_wait_seconds(args.timeout, "--timeout")
        return self._create(name, version, wait=not args.no_wait, timeout=timeout)

    def _predict(self, name: str, version: str, data: str) -> Any:
        name, number = _name(name), _version(version)
        instances = self._data(data.strip())
        return api.get(name, number).predict(instances)

    def _create(self, name: str, version: int, wait: bool, timeout: float) -> api.Serve:
        service = api.service()
        if not wait:
            return api.Serve(service.create(name, version), service)
        progress = _Progress(f"{name} version {version}", timeout)
        try:
            view = service.create(name, version, wait=timeout, on_progress=progress.show)
        except ServeFailed as failed:
            # Not raised: the cell hands the FAILED serve back, so .reason and .logs() work.
            progress.done(ServeState.FAILED)
            _warn(str(failed))
            return api.get(name, version)
        except BaseException:
            progress.done(None)
            raise
        progress.done(view.state)
        handle = api.Serve(view, service)
        if not settled(view):
            # Not an error yet: the serve goes on, so hand it back to keep watching it.
            _warn(not_ready(view, timeout))
        elif view.state is ServeState.AVAILABLE:
            _show_how_to_call(handle)
        return handle

    def _source(self, word: str) -> Any:
        value = self.shell.user_ns.get(word) if self.shell is not None else None
        return value if value is not None else word

    def _data(self, text: str) -> Any:
        """DATA: a variable, JSON, or a Python expression evaluated in the user's namespace."""
        namespace = self.shell.user_ns if self.shell is not None else {}
        if text in namespace:
            return namespace[text]
        try:
            return json.loads(text)
        except RecursionError:
            raise InvalidInput("DATA: nested too deeply") from None
        except ValueError as exc:  # not JSON (or an integer of more digits than int() takes)
            json_problem = str(getattr(exc, "msg", exc))
        if self.shell is None:
            raise InvalidInput(f"DATA: neither a variable nor JSON ({json_problem})")
        try:
            # The user's own kernel and namespace: the same trust as typing it in a cell.
            return self.shell.ev(text)
        except Exception as exc:
            raise InvalidInput(
                f"DATA: neither a variable, JSON ({json_problem}) nor a Python expression "
                f"that evaluates ({type(exc).__name__}: {exc}); e.g. [[1.0, 2.0]] or x[:2]"
            ) from None


class _Progress:
    """A progress bar when widgets can render (a kernel with a frontend), else one text line.

    Nothing shows before the first progress report, so a create that fails at once (an unknown
    model) prints its error line alone.
    """

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.started = time.monotonic()
        self.timeout = timeout
        self._bar: Any = None
        self._widgets = _widgets_render()
        self._line_open = False  # a text progress line waits for its end

    def show(self, view: ServeView) -> None:
        state, reason = view.state.value, view.reason
        elapsed = time.monotonic() - self.started
        if self._widgets and self._bar is None:
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.FloatProgress(
                min=0.0,
                max=self.timeout,
                description=f"Serving {self.label}",
                style={"description_width": "initial"},
            )
            display(self._bar)
        if self._bar is not None:
            self._bar.value = min(elapsed, self.timeout)
            self._bar.description = f"{self.label}: {state}"
            return
        detail = f" ({reason})" if reason else ""
        sys.stdout.write(f"\rServing {self.label}: {state}{detail} [{elapsed:.0f}s]")
        sys.stdout.flush()
        self._line_open = True

    def done(self, state: ServeState | None) -> None:
        """Close the bar, or end the text line with the state reached (None: no serve, the
        error says why)."""
        if self._bar is not None:
            self._bar.close()
        elif state is not None:
            sys.stdout.write(f"\rServing {self.label}: {state.value}\n")
        elif self._line_open:  # end it, so the error line starts on a line of its own
            sys.stdout.write("\n")
        sys.stdout.flush()


def _widgets_render() -> bool:
    """True inside a kernel (a frontend can show widgets), false on a terminal IPython."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:  # a kernel without the notebook extra: the text line will do
        return False
    return True


def _expect(words: list[str], count: int, usage: str) -> None:
    if len(words) != count:
        raise InvalidInput(f"usage: {usage}")


def _name(word: str) -> str:
    return validate_model_name(word, "NAME")


def _version(word: str) -> int:
    return validate_version(word, "VERSION")


def _warn(message: str) -> None:
    """One line on stderr for what is not an error: the cell goes on."""
    print(f"%serve: {message}", file=sys.stderr)


def _show_how_to_call(handle: api.Serve) -> None:
    """What a caller needs next: the signature and a request that works."""
    signature = handle.signature
    lines = signature_lines(signature) if signature is not None else []
    print("\n".join([*lines, "try it: " + handle.curl()]))


def _check_not_a_typo(words: list[str]) -> None:
    """`%serve stauts m 2` is a mistyped subcommand, not a serve of model 'stauts' version 'm'.

    A first word is taken as a model name when a version follows it; otherwise, if it is close
    to a subcommand, that is the likelier meaning.
    """
    if len(words) == 2 and words[1].isdigit():
        return
    close = difflib.get_close_matches(words[0].lower(), SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        raise InvalidInput(f"unknown subcommand {words[0]!r}: did you mean {close[0]}?")


_ONE_LINE_CLASSES: dict[type[ModelServeError], type[ModelServeError]] = {}


def _render_one_line(self: ModelServeError) -> list[str]:
    return [f"%serve: {self}"]


def _reduce_to_base(self: ModelServeError) -> tuple[Any, tuple[str]]:
    # Pickled (joblib, ipyparallel) as the plain error: the one-line class exists only here.
    return (type(self).__mro__[1], (self.message,))


def _one_line(error: ModelServeError) -> ModelServeError:
    """`error`, shown by IPython as `%serve: message` alone, without a traceback of our
    internals (IPython asks an exception for `_render_traceback_`). An instance of a subclass
    of its class, so `except api.NotFound` around a `%serve` still catches it."""
    cls = type(error)
    if cls not in _ONE_LINE_CLASSES:
        namespace = {
            "_render_traceback_": _render_one_line,
            "__reduce__": _reduce_to_base,
            "__module__": cls.__module__,
        }
        _ONE_LINE_CLASSES[cls] = type(cls.__name__, (cls,), namespace)
    return _ONE_LINE_CLASSES[cls](error.message)


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(ServeMagics)
