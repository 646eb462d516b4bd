"""A process-wide tally of what the reliability suite did, printed as one line at the end.

Usage from any test (threads included)::

    from tests.reliability import tally

    tally.requests(50)      # requests sent to a Jupyter server or a model server
    tally.fault()           # a fault injected (kill -9, SIGSTOP, ...) and survived
    tally.bad_input(500)    # hostile or malformed inputs tried
    tally.server_error()    # a 5xx answer seen (should stay 0)
    tally.lost()            # a row or file that went missing (should stay 0)

`from tests.reliability.tally import tally` gives an object with the same methods.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Tally:
    sent: int = 0
    faults: int = 0
    bad_inputs: int = 0
    server_errors: int = 0
    losses: int = 0
    # Tests count from thread pools; += on an int is not atomic across threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def requests(self, n: int = 1) -> None:
        with self._lock:
            self.sent += n

    def fault(self, n: int = 1) -> None:
        with self._lock:
            self.faults += n

    def bad_input(self, n: int = 1) -> None:
        with self._lock:
            self.bad_inputs += n

    def server_error(self, n: int = 1) -> None:
        with self._lock:
            self.server_errors += n

    def lost(self, n: int = 1) -> None:
        with self._lock:
            self.losses += n

    def summary(self) -> str:
        with self._lock:
            return (
                f"reliability: {self.sent} requests sent, {self.faults} faults injected and "
                f"survived, {self.bad_inputs} bad inputs tried, {self.server_errors} 5xx seen, "
                f"{self.losses} rows or files lost"
            )


tally = Tally()
requests = tally.requests
fault = tally.fault
bad_input = tally.bad_input
server_error = tally.server_error
lost = tally.lost
summary = tally.summary
