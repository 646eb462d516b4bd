"""TF Serving's `model_config_list` text-protobuf format, without TensorFlow or protobuf.

The local backend writes this file for both the built-in model server and the real
`tensorflow_model_server`, so it must stay importable without TensorFlow. The parser reads the
subset of protobuf text format that a `ModelServerConfig` with a `model_config_list` uses: single or
double quoted strings (adjacent literals concatenate), `#` comments, optional `:` before a message,
`{}` or `<>` braces, optional `,`/`;` separators and `[a, b]` lists for repeated scalars.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Union

PolicyKind = Literal["latest", "all", "specific"]

__all__ = [
    "ModelConfig",
    "VersionPolicy",
    "parse_model_config_list",
    "render_model_config_list",
]


@dataclass(frozen=True)
class VersionPolicy:
    """Which numbered version folders under a base path are served."""

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"version policy kind must be latest, all or specific: {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"latest num_versions must be at least 1, got {self.num_versions}")
        if any(v < 0 for v in self.versions):
            raise ValueError(f"versions must not be negative: {self.versions}")
        # A list given by a caller is normalised so equality and hashing behave.
        object.__setattr__(self, "versions", tuple(self.versions))

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, versions: Sequence[int]) -> VersionPolicy:
        return cls("specific", versions=tuple(versions))


@dataclass(frozen=True)
class ModelConfig:
    """One `config { ... }` entry of a `model_config_list`."""

    name: str
    base_path: str
    model_platform: str = "tensorflow"
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    version_labels: dict[str, int] = field(default_factory=dict)

    def same_servables(self, other: ModelConfig) -> bool:
        """True when only labels differ, so a reload must keep the loaded versions as they are."""
        return (self.name, self.base_path, self.model_platform, self.version_policy) == (
            other.name,
            other.base_path,
            other.model_platform,
            other.version_policy,
        )


# ---------------------------------------------------------------------------------------------
# Rendering


def _quote(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    )
    return f"'{escaped}'"


def _render_policy(policy: VersionPolicy) -> str:
    if policy.kind == "latest":
        return f"latest {{ num_versions: {policy.num_versions} }}"
    if policy.kind == "all":
        return "all {}"
    versions = " ".join(f"versions: {v}" for v in policy.versions)
    return f"specific {{ {versions} }}" if versions else "specific {}"


def render_model_config_list(configs: Sequence[ModelConfig]) -> str:
    """Render `configs` as a ModelServerConfig text proto that TF Serving accepts."""
    lines = ["model_config_list {"]
    for config in configs:
        lines += [
            "  config {",
            f"    name: {_quote(config.name)}",
            f"    base_path: {_quote(config.base_path)}",
            f"    model_platform: {_quote(config.model_platform)}",
            f"    model_version_policy {{ {_render_policy(config.version_policy)} }}",
        ]
        for label, version in sorted(config.version_labels.items()):
            lines.append(f"    version_labels {{ key: {_quote(label)} value: {version} }}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Parsing: tokens -> generic (field, value) tree -> dataclasses

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+))(?![\w.])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>:\[\],;])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a"}
_ESCAPES.update({"b": "\b", "f": "\f", "v": "\v", "?": "?"})
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")

Scalar = Union[str, int]  # noqa: UP007 (a runtime alias: `|` cannot take a forward ref)
Value = Union[Scalar, "Message"]


@dataclass
class Message:
    fields: list[tuple[str, Value, int]]  # (name, value, line of the field name)


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _unescape(body: str, line: int) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x":
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise ValueError(f"line {line}: invalid escape sequence \\{code} in string")

    return _ESCAPE.sub(replace, body)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 20].split("\n")[0]
            raise ValueError(f"line {line}: unexpected text {snippet!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise ValueError(f"line {last}: unexpected end of input (missing '}}'?)")
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == text:
            self.pos += 1
            return True
        return False

    def message(self, close: str | None) -> Message:
        fields: list[tuple[str, Value, int]] = []
        while True:
            token = self.peek()
            if token is None:
                if close is not None:
                    self.take()  # raises "unexpected end of input"
                return Message(fields)
            if close is not None and token.kind == "punct" and token.text == close:
                self.pos += 1
                return Message(fields)
            name = self.take()
            if name.kind != "ident":
                raise ValueError(f"line {name.line}: expected a field name, got {name.text!r}")
            colon = self.accept(":")
            if self.accept("{"):
                fields.append((name.text, self.message("}"), name.line))
            elif self.accept("<"):
                fields.append((name.text, self.message(">"), name.line))
            elif not colon:
                raise ValueError(f"line {name.line}: expected ':' or '{{' after {name.text!r}")
            elif self.accept("["):
                while not self.accept("]"):
                    fields.append((name.text, self.scalar(), name.line))
                    self.accept(",")
            else:
                fields.append((name.text, self.scalar(), name.line))
            if not self.accept(","):
                self.accept(";")

    def scalar(self) -> Scalar:
        token = self.take()
        if token.kind == "number":
            return int(token.text, 0) if "x" in token.text.lower() else int(token.text)
        if token.kind == "string":
            parts = [_unescape(token.text[1:-1], token.line)]
            # Adjacent string literals concatenate, as in C and protobuf text format.
            while (nxt := self.peek()) is not None and nxt.kind == "string":
                self.pos += 1
                parts.append(_unescape(nxt.text[1:-1], nxt.line))
            return "".join(parts)
        if token.kind == "ident":
            return token.text
        raise ValueError(f"line {token.line}: expected a value, got {token.text!r}")


def _check_fields(msg: Message, where: str, allowed: set[str], repeated: set[str]) -> None:
    seen: set[str] = set()
    for name, _, line in msg.fields:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ValueError(f"line {line}: unknown field {name!r} in {where} (known: {known})")
        if name in seen and name not in repeated:
            raise ValueError(f"line {line}: field {name!r} given twice in {where}")
        seen.add(name)


def _string(value: Value, name: str, line: int) -> str:
    if not isinstance(value, str) or isinstance(value, Message):
        raise ValueError(f"line {line}: {name} must be a quoted string")
    return value


def _integer(value: Value, name: str, line: int) -> int:
    if not isinstance(value, int):
        raise ValueError(f"line {line}: {name} must be an integer, got {value!r}")
    return value


def _message(value: Value, name: str, line: int) -> Message:
    if not isinstance(value, Message):
        raise ValueError(f"line {line}: {name} must be a message {{ ... }}")
    return value


def _parse_policy(msg: Message, line: int) -> VersionPolicy:
    _check_fields(msg, "model_version_policy", {"latest", "all", "specific"}, set())
    if len(msg.fields) != 1:
        raise ValueError(
            f"line {line}: model_version_policy needs exactly one of latest/all/specific"
        )
    kind, value, kline = msg.fields[0]
    body = _message(value, kind, kline)
    if kind == "all":
        _check_fields(body, "all", set(), set())
        return VersionPolicy.all()
    if kind == "latest":
        _check_fields(body, "latest", {"num_versions"}, set())
        num = [_integer(v, "num_versions", ln) for _, v, ln in body.fields] or [1]
        if num[0] < 1:
            raise ValueError(f"line {kline}: latest num_versions must be at least 1")
        return VersionPolicy.latest(num[0])
    _check_fields(body, "specific", {"versions"}, {"versions"})
    versions = tuple(_integer(v, "versions", ln) for _, v, ln in body.fields)
    if any(v < 0 for v in versions):
        raise ValueError(f"line {kline}: specific versions must not be negative")
    return VersionPolicy.specific(versions)


def _parse_config(msg: Message, line: int) -> ModelConfig:
    allowed = {"name", "base_path", "model_platform", "model_version_policy", "version_labels"}
    _check_fields(msg, "config", allowed, {"version_labels"})
    values: dict[str, str] = {}
    policy = VersionPolicy()
    labels: dict[str, int] = {}
    for name, value, fline in msg.fields:
        if name == "model_version_policy":
            policy = _parse_policy(_message(value, name, fline), fline)
        elif name == "version_labels":
            entry = _message(value, name, fline)
            _check_fields(entry, "version_labels", {"key", "value"}, set())
            parts = {n: (v, ln) for n, v, ln in entry.fields}
            if set(parts) != {"key", "value"}:
                raise ValueError(f"line {fline}: version_labels needs both key and value")
            label = _string(parts["key"][0], "version_labels key", fline)
            labels[label] = _integer(parts["value"][0], "version_labels value", fline)
        else:
            values[name] = _string(value, name, fline)
    for required in ("name", "base_path"):
        if not values.get(required):
            raise ValueError(f"line {line}: config is missing a non-empty {required}")
    return ModelConfig(
        name=values["name"],
        base_path=values["base_path"],
        model_platform=values.get("model_platform", "tensorflow"),
        version_policy=policy,
        version_labels=labels,
    )


def parse_model_config_list(text: str) -> list[ModelConfig]:
    """Parse a ModelServerConfig text proto holding a `model_config_list`.

    Raises ValueError naming the line for anything TF Serving would refuse, and for duplicate
    model names (TF Serving refuses those too).
    """
    root = _Parser(text).message(None)
    _check_fields(root, "the model server config", {"model_config_list"}, set())
    if not root.fields:
        raise ValueError("model server config has no model_config_list { ... }")
    _, value, line = root.fields[0]
    config_list = _message(value, "model_config_list", line)
    _check_fields(config_list, "model_config_list", {"config"}, {"config"})
    configs: list[ModelConfig] = []
    for _, entry, eline in config_list.fields:
        config = _parse_config(_message(entry, "config", eline), eline)
        if any(c.name == config.name for c in configs):
            raise ValueError(f"line {eline}: model name {config.name!r} appears twice")
        configs.append(config)
    return configs
