"""msgpack envelopes ``{v, kind, data}`` for everything that leaves the process or the moment.

Register a model once, then encode and decode it anywhere::

    >>> from protocol.spec import Frozen
    >>> class Point(Frozen):
    ...     x: int
    >>> codec = Codec()
    >>> _ = codec.register(Point, kind="point", version=1)
    >>> codec.decode(codec.encode(Point(x=3)))
    Point(x=3)

Every failure to decode, whatever its cause (truncated or garbage bytes, unknown kind, a version
newer than the code, data that does not validate), raises ``CodecError`` and nothing else. An
older version is upgraded by the functions registered for it, one version at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import msgpack
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
Upgrader = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the ``data`` of version ``n`` into the ``data`` of version ``n + 1``."""

_ENVELOPE_KEYS = frozenset({"v", "kind", "data"})
MAX_BUFFER = 64 * 1024 * 1024
BIGINT_EXT = 1
"""msgpack extension code of an integer outside 64 bits (uint256, int256): signed big-endian."""


class CodecError(ValueError):
    """A buffer that cannot be turned back into a registered model; the message says why."""


@dataclass(frozen=True)
class _Entry:
    kind: str
    model: type[BaseModel]
    version: int
    upgraders: Mapping[int, Upgrader] = field(default_factory=dict)


def _default(obj: object) -> object:
    if isinstance(obj, int) and not isinstance(obj, bool):
        return msgpack.ExtType(
            BIGINT_EXT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True)
        )
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, frozenset | set):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> int:
    if code != BIGINT_EXT or not data:
        raise ValueError(f"unknown msgpack extension {code}")
    return int.from_bytes(data, "big", signed=True)


def pack(value: object) -> bytes:
    """msgpack bytes of plain data; big integers as ``BIGINT_EXT``, ``Decimal`` as its string."""
    return msgpack.packb(value, default=_default, use_bin_type=True)


def unpack(buf: bytes) -> Any:
    """The inverse of ``pack``; raises whatever msgpack raises (``decode`` wraps it)."""
    return msgpack.unpackb(buf, raw=False, strict_map_key=True, use_list=True, ext_hook=_ext_hook)


class Codec:
    """A registry of kinds and the encoder/decoder that uses it."""

    def __init__(self) -> None:
        self._by_kind: dict[str, _Entry] = {}
        self._by_type: dict[type[BaseModel], _Entry] = {}

    def register(
        self,
        model: type[M],
        *,
        kind: str | None = None,
        version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
    ) -> type[M]:
        """Register ``model`` under ``kind`` (default: its ``kind`` field's default)."""
        if kind is None:
            kind_field = model.model_fields.get("kind")
            if kind_field is None or not isinstance(kind_field.default, str):
                raise ValueError(f"{model.__name__} has no kind field; pass kind=")
            kind = kind_field.default
        if version < 1:
            raise ValueError("versions start at 1")
        known = self._by_kind.get(kind)
        if known is not None and known.model is not model:
            raise ValueError(f"kind {kind!r} is already registered to {known.model.__name__}")
        entry = _Entry(kind, model, version, dict(upgraders or {}))
        self._by_kind[kind] = entry
        self._by_type[model] = entry
        return model

    def kinds(self) -> dict[str, type[BaseModel]]:
        """Every registered kind and its model."""
        return {kind: entry.model for kind, entry in self._by_kind.items()}

    def kind_of(self, model: type[BaseModel]) -> str:
        entry = self._by_type.get(model)
        if entry is None:
            raise CodecError(f"{model.__name__} is not a registered kind")
        return entry.kind

    def peek(self, buf: bytes, model: type[BaseModel]) -> dict[str, Any] | None:
        """The fields of a stored ``model`` at its current version, unvalidated, for a reader
        that needs a few fields of many values; ``None`` for anything else (bad bytes, another
        kind, an older version), which the reader then ``decode``s to upgrade it or to learn
        what is wrong::

            >>> from protocol.spec import Frozen
            >>> class Point(Frozen):
            ...     x: int
            >>> codec = Codec()
            >>> _ = codec.register(Point, kind="point", version=1)
            >>> codec.peek(codec.encode(Point(x=3)), Point)
            {'x': 3}
            >>> codec.peek(b"garbage", Point) is None
            True
        """
        entry = self._by_type.get(model)
        if entry is None:
            raise CodecError(f"{model.__name__} is not a registered kind")
        try:
            envelope = unpack(buf)
        except Exception:
            return None
        if not isinstance(envelope, dict):
            return None
        if envelope.get("kind") != entry.kind or envelope.get("v") != entry.version:
            return None
        data = envelope.get("data")
        return data if isinstance(data, dict) else None

    def encode(self, obj: BaseModel) -> bytes:
        """The envelope of ``obj``; raises ``CodecError`` for an unregistered type."""
        entry = self._by_type.get(type(obj))
        if entry is None:
            raise CodecError(f"{type(obj).__name__} is not a registered kind")
        envelope = {"v": entry.version, "kind": entry.kind, "data": obj.model_dump(mode="python")}
        try:
            return pack(envelope)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode {entry.kind}: {exc}") from exc

    def decode(self, buf: bytes, expect: type[M] | None = None) -> M:
        """The model in ``buf``; with ``expect``, also checks that it is of that type."""
        envelope = self._unpack(buf)
        entry, data = self._upgrade(envelope)
        try:
            obj = entry.model.model_validate(data)
        except Exception as exc:
            raise CodecError(f"{entry.kind} v{entry.version} does not validate: {exc}") from exc
        if expect is not None and not isinstance(obj, expect):
            raise CodecError(f"expected {expect.__name__}, found kind {entry.kind!r}")
        return obj  # type: ignore[return-value]

    def _unpack(self, buf: bytes) -> dict[str, Any]:
        if not isinstance(buf, bytes | bytearray | memoryview):
            raise CodecError(f"expected bytes, got {type(buf).__name__}")
        if len(buf) > MAX_BUFFER:
            raise CodecError(f"buffer of {len(buf)} bytes exceeds {MAX_BUFFER}")
        try:
            envelope = unpack(bytes(buf))
        except Exception as exc:
            raise CodecError(f"not a msgpack envelope ({len(buf)} bytes): {exc!r}") from exc
        if not isinstance(envelope, dict) or set(envelope) != _ENVELOPE_KEYS:
            raise CodecError("not an envelope: expected a map with keys v, kind, data")
        if not isinstance(envelope["v"], int) or isinstance(envelope["v"], bool):
            raise CodecError(f"envelope version is not an integer: {envelope['v']!r}")
        if not isinstance(envelope["kind"], str):
            raise CodecError(f"envelope kind is not a string: {envelope['kind']!r}")
        if not isinstance(envelope["data"], dict):
            raise CodecError(f"envelope data of {envelope['kind']!r} is not a map")
        return envelope

    def _upgrade(self, envelope: dict[str, Any]) -> tuple[_Entry, dict[str, Any]]:
        kind, version, data = envelope["kind"], envelope["v"], envelope["data"]
        entry = self._by_kind.get(kind)
        if entry is None:
            raise CodecError(f"unknown kind {kind!r}")
        if version > entry.version:
            raise CodecError(f"{kind} v{version} is newer than this code knows (v{entry.version})")
        while version < entry.version:
            upgrader = entry.upgraders.get(version)
            if upgrader is None:
                raise CodecError(f"no upgrade for {kind} from v{version}")
            try:
                data = upgrader(data)
            except Exception as exc:
                raise CodecError(f"upgrade of {kind} from v{version} failed: {exc!r}") from exc
            version += 1
        return entry, data


CODEC = Codec()
"""The process-wide registry: ``protocol.messages`` and ``protocol.records`` register into it."""

register = CODEC.register
encode = CODEC.encode
decode = CODEC.decode
