"""The virus-scan hook every upload passes through before it is kept.

The default scanner recognises the EICAR anti-malware test file, so the hook is proven end to
end without a virus engine; a bank replaces it with its own (ClamAV's clamd, an ICAP
service) by implementing ``Scanner``.
"""

from __future__ import annotations

from typing import Protocol

# The EICAR test string, split so this source file does not itself trip a scanner.
EICAR_SIGNATURE = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Scan(Protocol):
    """One file being scanned, fed chunk by chunk as it streams to storage."""

    def feed(self, chunk: bytes) -> None: ...

    def infected(self) -> str | None:
        """The name of what was found, or None for a clean file."""
        ...


class Scanner(Protocol):
    def start(self) -> Scan: ...


class _EicarScan:
    def __init__(self) -> None:
        self._tail = b""
        self._found = False

    def feed(self, chunk: bytes) -> None:
        # Keep the end of the previous chunk so a signature split across chunks is found.
        window = self._tail + chunk
        if EICAR_SIGNATURE in window:
            self._found = True
        self._tail = window[-(len(EICAR_SIGNATURE) - 1) :]

    def infected(self) -> str | None:
        return "EICAR-Test-File" if self._found else None


class EicarScanner:
    def start(self) -> Scan:
        return _EicarScan()
