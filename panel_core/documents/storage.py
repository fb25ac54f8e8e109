"""Where document bytes live. Local disk by default; a bank plugs in its object store here."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import anyio

CHUNK_BYTES = 64 * 1024


class DocumentStorage(Protocol):
    def new_key(self) -> str: ...

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> None: ...

    def read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    def local_file(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A path on the local filesystem holding the stored bytes, while the block runs.

        For the parsers that check a file's structure, which read a file, not a stream. Local
        disk yields its own file. An object store downloads the object, chunk by chunk, to a
        temporary file that it removes when the block ends. The caller only reads the file.
        """
        ...


class LocalDiskStorage:
    """Files under one directory, named by random keys, never by what the person called them.

    A file is written under a temporary name and renamed into place only when complete, so
    a half-written upload is never served.
    """

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).resolve()

    def new_key(self) -> str:
        return secrets.token_hex(24)

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError("storage keys are generated, alphanumeric names")
        return self._root / key[:2] / key

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        path = self._path(key)
        partial = path.with_suffix(".partial")
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        try:
            async with await anyio.open_file(partial, "wb") as handle:
                async for chunk in chunks:
                    await handle.write(chunk)
            await anyio.Path(partial).rename(path)
        except BaseException:
            await anyio.Path(partial).unlink(missing_ok=True)
            raise

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._path(key), "rb") as handle:
            while chunk := await handle.read(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        path = self._path(key)
        if not await anyio.Path(path).is_file():
            raise FileNotFoundError(f"no stored file under {key}")
        yield path

    def exists(self, key: str) -> bool:
        return self._path(key).exists()
