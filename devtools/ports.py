"""Free TCP ports on the loopback interface.

The services started by ``devtools`` may run next to a developer's own
Camunda/Redis/PostgreSQL on the default ports, so every runner asks the
kernel for an unused port instead of assuming one.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["LOOPBACK", "free_port", "free_ports"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """Return ``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    All sockets stay bound until every port has been picked; closing each one
    right away would let the kernel hand out the same port twice.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports
