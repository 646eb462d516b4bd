"""Which HTTP requests the model server answers at all: host names, browser forms, body size.

The server listens on 127.0.0.1 without authentication, so the threat is a web page the user
visits. It can (1) rebind its own DNS name to 127.0.0.1 and then read answers as same-origin
(stopped by answering only Host headers that name an allowed host: a rebinding page's requests
carry its own name), and (2) fire cross-site POSTs that need no CORS preflight, i.e. "simple
requests" with a form content type (stopped by refusing those types and any POST whose Origin
is another site). A POST without a Content-Type stays accepted: non-browser clients (python
requests' `data=`) send none, and a page that sends none also sends an Origin.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ServingError, forbidden, too_large, unsupported_media_type

if TYPE_CHECKING:
    from tornado.httputil import HTTPHeaders

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
ALLOWED_HOSTS_FLAG = "--rest_api_allowed_hosts"
MAX_BODY_FLAG = "--rest_api_max_body_bytes"
# The three content types a browser sends cross-site without asking the server first.
SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
# Binding to every interface names no host a client would use.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "*"})

# A DNS name or an IPv4 address: labels of letters, digits, '-' and '_', dot-separated.
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_DIGITS = re.compile(r"[0-9]+")
# The authority of a Host header or an Origin: `name`, `[v6]`, either with an optional port.
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[^\[\]:/@\s]*))(?::[0-9]{0,5})?")


def _ip(name: str) -> str | None:
    """`name` in the one canonical spelling of an IP address ("0:0::1" -> "::1"), or None."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


def _canonical(name: str) -> str:
    return _ip(name) or name


def host_name(authority: str) -> str | None:
    """The lower-cased host of `authority` ("[::1]:8501" -> "::1"); None when malformed."""
    match = _AUTHORITY.fullmatch(authority.strip().lower())
    if match is None:
        return None
    return _canonical(match.group("v6") or match.group("name") or "")


def origin_host(origin: str) -> str | None:
    """The host of an Origin header ("http://localhost:8888" -> "localhost"); None for "null"."""
    scheme, separator, authority = origin.strip().partition("://")
    if not separator or not scheme or "/" in authority:
        return None
    return host_name(authority)


def parse_allowed_hosts(text: str) -> tuple[str, ...]:
    """`a,b,*.example` -> its entries, lower-cased; ValueError names an entry that is no host."""
    entries: list[str] = []
    for raw in text.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry.startswith("[") and entry.endswith("]"):
            entry = entry[1:-1]
        ip = _ip(entry)
        if ip is not None or entry == "*" or _NAME.fullmatch(entry.removeprefix("*.")):
            entries.append(ip or entry)
            continue
        raise ValueError(
            f"{raw.strip()!r} is not a host name, an IP address, '*' or '*.domain' (no ports)"
        )
    return tuple(entries)


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class RequestPolicy:
    """What the server accepts; loopback names are always allowed (no page can claim them)."""

    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def build(
        cls,
        extra_hosts: Iterable[str] = (),
        bound_host: str = "",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> RequestPolicy:
        """Loopback names, `extra_hosts`, and the address the server is bound to if it is one
        specific address (clients of `--rest_api_host=10.0.0.5` address it by that name)."""
        hosts = list(LOOPBACK_HOSTS)
        bound = bound_host.strip().lower().strip("[]")
        if bound not in _ANY_ADDRESS:
            hosts.append(_canonical(bound))
        hosts += [h for h in extra_hosts if h not in hosts]
        return cls(allowed_hosts=tuple(dict.fromkeys(hosts)), max_body_bytes=max_body_bytes)

    def allows(self, host: str | None) -> bool:
        if host is None:
            return "*" in self.allowed_hosts
        for entry in self.allowed_hosts:
            if entry in ("*", host):
                return True
            # "*.example" allows "a.example" and "a.b.example", not "example" itself.
            if entry.startswith("*.") and host.endswith(entry[1:]):
                return True
        return False

    def refusal(self, method: str, headers: HTTPHeaders) -> ServingError | None:
        """Why a request must be refused (403/413/415), judged from its headers alone."""
        host_header = headers.get("Host")
        # No Host at all is an HTTP/1.0 client, never a browser: nothing to rebind.
        if host_header is not None and not self.allows(host_name(host_header)):
            return forbidden(
                f"Host '{host_header[:200]}' is not allowed: this model server answers only "
                f"requests addressed to {self._names()} (a guard against DNS rebinding); start "
                f"it with {ALLOWED_HOSTS_FLAG}=NAME[,NAME...] to allow other host names"
            )
        length = content_length(headers)
        if length is not None and length > self.max_body_bytes:
            return too_large(
                f"Request body of {length} bytes is larger than the model server's limit of "
                f"{self.max_body_bytes} bytes ({MAX_BODY_FLAG}); send fewer instances per "
                "request"
            )
        if method != "POST":
            return None
        for value in headers.get_list("Content-Type"):
            media_type = value.split(";", 1)[0].strip().lower()
            if media_type in SIMPLE_CONTENT_TYPES:
                return unsupported_media_type(
                    f"Content-Type '{value[:200]}' is refused: a web page can send it from "
                    "another site without asking, so the model server takes JSON only. Send "
                    "Content-Type: application/json; with curl: "
                    "-H 'Content-Type: application/json'"
                )
        for origin in headers.get_list("Origin"):
            if not self.allows(origin_host(origin)):
                return forbidden(
                    f"Origin '{origin[:200]}' is not allowed: this model server refuses POSTs "
                    f"from web pages that are not served from {self._names()} (a guard against "
                    f"cross-site requests); start it with {ALLOWED_HOSTS_FLAG}=NAME to allow "
                    "pages of another host"
                )
        return None

    def body_too_large(self, received: int) -> ServingError:
        """For a body without a Content-Length (chunked) that grew past the limit."""
        return too_large(
            f"Request body is larger than the model server's limit of {self.max_body_bytes} "
            f"bytes ({MAX_BODY_FLAG}; {received} bytes received so far); send fewer instances "
            "per request"
        )

    def _names(self) -> str:
        if "*" in self.allowed_hosts:
            return "any host"
        return ", ".join(_shown(h) for h in self.allowed_hosts)


def content_length(headers: HTTPHeaders) -> int | None:
    """The declared body size; None when absent or malformed (Tornado answers the latter)."""
    value = (headers.get("Content-Length") or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    # Beyond 30 digits it is past any limit; int() of thousands of digits would be slow.
    return int(value) if len(value) <= 30 else 10**30
