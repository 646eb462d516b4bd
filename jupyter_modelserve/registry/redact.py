"""Taking secrets out of text that leaves a registration step: messages, crash tails, logs.

MLflow's errors quote the URLs they failed on, and those carry credentials: a tracking URI
`https://user:password@host`, an artifact store's presigned URL whose query string is a
signature (`?X-Amz-Signature=...`, `?sig=...`). Both are replaced whole, wherever they appear;
what stays (scheme, host, path) is enough to say which server answered.
"""

from __future__ import annotations

import re

# `scheme://userinfo@`: greedy up to the authority's last "@" (a password may hold one).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"<>]*@")
# A URL's query string: presigned URLs put their signature and credential there.
_QUERY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s?'\"<>]*)\?[^\s'\"<>]*")
# A credential-like `name=value` outside a URL (an error that quotes only the parameters).
_PARAMETER = re.compile(
    r"((?:[\w.-]*)(?:signature|token|credential|password|secret|sig|key)[\w.-]*=)[^&\s'\"<>]+",
    re.IGNORECASE,
)

HIDDEN = "***"


def redact(text: str) -> str:
    """`text` with URL credentials, query strings and credential parameters hidden."""
    text = _USERINFO.sub(rf"\1{HIDDEN}@", text)
    text = _QUERY.sub(rf"\1?{HIDDEN}", text)
    return _PARAMETER.sub(rf"\1{HIDDEN}", text)
