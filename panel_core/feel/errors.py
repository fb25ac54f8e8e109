"""The one exception of the FEEL evaluator."""

from __future__ import annotations

_SNIPPET_LENGTH = 24


class FeelError(ValueError):
    """An expression outside the supported subset, malformed, or failing as feelin fails.

    ``reason`` says what is wrong, ``position`` is the 0-based offset in ``expression`` it
    refers to (None when it concerns the whole expression or the context).
    """

    def __init__(
        self, reason: str, *, position: int | None = None, expression: str | None = None
    ) -> None:
        self.reason = reason
        self.position = position
        self.expression = expression
        message = reason
        if position is not None:
            message += f" (at offset {position}"
            if expression is not None:
                snippet = expression[position : position + _SNIPPET_LENGTH]
                ellipsis = "…" if len(expression) > position + _SNIPPET_LENGTH else ""
                message += f", near {snippet + ellipsis!r}" if snippet else ", at the end"
            message += ")"
        super().__init__(message)
