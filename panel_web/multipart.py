"""A multipart/form-data body read as it arrives: files go on to storage chunk by chunk.

Litestar's ``request.form()`` keeps every file of a request in a spooled temporary file, the
first megabyte of each in memory, before the handler sees it; a document would be held
whole and written twice. The task page and the upload API read the body here instead: text
fields are collected (each capped), and each file part is handed to the caller as an
iterator of chunks while the parser waits. Whatever a caller leaves unread of a file (a
refused one) is read past, never kept.

Because the body is read by the handler, the CSRF middleware cannot read it first: these
routes opt out of it and the token is checked here, with the middleware's own rule, before
a single byte of a file is accepted. The page's form sends its token as the first field.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash
from litestar.utils.scope.state import ScopeState
from multipart import (  # type: ignore[import-untyped]
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

CSRF_FIELD = "_csrf_token"
# Route option that takes a handler out of the CSRF middleware (it checks the token itself).
EXCLUDE_FROM_CSRF = {"exclude_from_csrf": True}
# No text field of a form comes near this; a larger one is not a form's.
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 1000
CSRF_FAILED = "CSRF token verification failed"


@dataclass(slots=True)
class FilePart:
    name: str
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


FileHandler = Callable[[FilePart], Awaitable[None]]


class MultipartReader:
    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._parser = PushMultipartParser(boundary, max_segment_count=MAX_PARTS)
        self._events: list[Any] = []
        self._in_segment = False

    async def _event(self) -> Any:
        """The next parser event; raises ``EOFError`` at the end of the body."""
        while not self._events:
            if self._parser.closed:
                raise EOFError
            chunk = await anext(self._stream, b"")
            # The parser's generator must be used up before it gets the next chunk.
            self._events = list(self._parser.parse(chunk))
            self._events.reverse()
        return self._events.pop()

    async def segments(self) -> AsyncIterator[MultipartSegment]:
        while True:
            await self.skip_rest()
            try:
                event = await self._event()
            except EOFError:
                return
            if not isinstance(event, MultipartSegment):
                raise ParserError("a part without headers")
            self._in_segment = True
            yield event

    async def body(self) -> AsyncIterator[bytes]:
        """The current part's bytes, chunk by chunk, as the parser finds them."""
        while self._in_segment:
            event = await self._event()
            if event is None:
                self._in_segment = False
                return
            yield event

    async def skip_rest(self) -> None:
        async for _chunk in self.body():
            pass


def _token_valid(token: str, secret: str) -> bool:
    # Tokens are hex: anything else is refused here, before compare_digest, which raises
    # TypeError on str beyond ASCII.
    if len(token) < CSRF_SECRET_LENGTH + 1 or not token.isascii():
        return False
    expected = generate_csrf_hash(token=token[:CSRF_SECRET_LENGTH], secret=secret)
    return hmac.compare_digest(token[CSRF_SECRET_LENGTH:], expected)


def check_csrf(request: Request[Any, Any, Any], form_token: str | None) -> None:
    """The CSRF middleware's rule: a valid token, in the header or the form, equal to the
    cookie's."""
    config = request.app.csrf_config
    assert config is not None
    cookie = request.cookies.get(config.cookie_name)
    token = request.headers.get(config.header_name) or form_token
    if not (
        token
        and cookie
        and _token_valid(token, config.secret)
        and _token_valid(cookie, config.secret)
        and hmac.compare_digest(token[:CSRF_SECRET_LENGTH], cookie[:CSRF_SECRET_LENGTH])
    ):
        raise PermissionDeniedException(CSRF_FAILED)
    # As the middleware does: a page rendered in answer carries the same token on.
    ScopeState.from_scope(request.scope).csrf_token = token


async def read_form(request: Request[Any, Any, Any], on_file: FileHandler) -> FormMultiDict:
    """The request's text fields; each file chosen in it goes to ``on_file`` as it arrives.

    Checks the CSRF token before the first file and, for a form without files, at the end.
    A form that is not multipart is read by Litestar, files impossible.
    """
    content_type, options = request.content_type
    if content_type != "multipart/form-data":
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        return form
    boundary = options.get("boundary")
    if not boundary:
        raise ClientException("multipart boundary missing in Content-Type")
    fields: list[tuple[str, Any]] = []
    checked = False
    reader = MultipartReader(request.stream(), boundary.encode("latin-1"))
    try:
        async for segment in reader.segments():
            if segment.filename is None:
                value = bytearray()
                async for chunk in reader.body():
                    value.extend(chunk)
                    if len(value) > MAX_FIELD_BYTES:
                        raise ClientException("A form field is too long.")
                fields.append((segment.name, value.decode(segment.charset or "utf-8")))
                continue
            if not checked:
                check_csrf(request, _first(fields, CSRF_FIELD))
                checked = True
            # A file input left empty sends a part with no name and no bytes.
            if segment.filename:
                await on_file(
                    FilePart(
                        name=segment.name,
                        filename=segment.filename,
                        content_type=segment.content_type or "application/octet-stream",
                        chunks=reader.body(),
                    )
                )
    # LookupError: a part declaring a charset Python has no text codec for.
    except (ParserError, ParserLimitReached, UnicodeDecodeError, LookupError) as error:
        raise ClientException("Invalid multipart/form-data") from error
    if not checked:
        check_csrf(request, _first(fields, CSRF_FIELD))
    return FormMultiDict(fields)


def _first(fields: list[tuple[str, Any]], name: str) -> str | None:
    return next((value for key, value in fields if key == name), None)
