"""What GET one adds to a serve: the model's signature, a predict body that fits it, and the
serve's traffic.

Each is a read that lists never pay for: the registered saved_model.pb (a local artifact), and
the model server's /metadata (a remote artifact, which only the model server can read) and its
Prometheus page. Those are files and answers this process does not control, so any exception
while reading or parsing them is None (`upstream.best_effort`), never a failed GET; the registry
reads around them are ours, and fail as they always do (NotFound...). The model server is asked
only when the serve is AVAILABLE and its status read just succeeded, with a short timeout, so a
hung one costs GET one a single status timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .metrics import scrape_metrics
from .schemas import REMOTE_SCHEMES, ServeMetrics, ServeState, ServeView, SignatureView
from .signature import example_request, signature_from_metadata, signature_of_folder
from .upstream import best_effort

if TYPE_CHECKING:
    from .service import ServeService

# The longest a describe waits for the model server's /metadata or metrics page.
MAX_PEEK_SECONDS = 1.0


def describe(service: ServeService, name: str, version: int) -> ServeView:
    """`service.get` plus the signature, an example predict body and the metrics."""
    view = service.get(name, version)
    found = _signature(service, name, version, view)
    example = None
    if found is not None:
        what = f"the example request of {name!r} version {version}"
        example = best_effort(what, lambda: example_request(found))
    return view.model_copy(
        update={
            "signature": found,
            "example_request": example,
            "metrics": _metrics(service, name, version, view),
        }
    )


def signature(service: ServeService, name: str, version: int) -> SignatureView | None:
    """A local artifact's signature is read from its saved_model.pb; a remote one's only from
    its model server's /metadata once it is AVAILABLE."""
    view = None
    if service.store.get_model_version(name, version).source.startswith(REMOTE_SCHEMES):
        if service.store.get_serve(name, version) is None:
            return None
        view = service.get(name, version)
    return _signature(service, name, version, view)


def _signature(
    service: ServeService, name: str, version: int, view: ServeView | None
) -> SignatureView | None:
    source = service.store.get_model_version(name, version).source
    what = f"the signature of {name!r} version {version}"
    if not source.startswith(REMOTE_SCHEMES):
        return best_effort(what, lambda: signature_of_folder(Path(source)))
    if not _answering(service, view):
        return None
    endpoint, servable_version = service.endpoint(name, version)
    timeout = _peek_timeout(service)
    return best_effort(
        what, lambda: signature_from_metadata(endpoint, name, servable_version, timeout)
    )


def _metrics(
    service: ServeService, name: str, version: int, view: ServeView
) -> ServeMetrics | None:
    if not _answering(service, view):
        return None
    endpoint, servable_version = service.endpoint(name, version)
    timeout = _peek_timeout(service)
    return best_effort(
        f"the metrics of {name!r} version {version}",
        lambda: scrape_metrics(endpoint, name, servable_version, timeout),
    )


def _peek_timeout(service: ServeService) -> float:
    # A read of the model server after the status read: GET one stays within its deadline.
    return min(service.status_timeout, MAX_PEEK_SECONDS)


def _answering(service: ServeService, view: ServeView | None) -> bool:
    """AVAILABLE and its status just read: a model server whose status read failed is not asked
    again. Such a view carries the failure as its reason without storing it (servestate's
    `transient`), so its reason differs from the row's; an AVAILABLE serve may carry a stored
    reason of its own ("2 of 3 replicas ready") and still answers."""
    if view is None or view.state is not ServeState.AVAILABLE:
        return False
    row = service.store.get_serve(view.model_name, view.model_version)
    return row is not None and row.reason == view.reason
