"""The service's wire format: length-prefixed JSON frames, each one frozen dataclass.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON: an object with the
protocol version `v`, the message's `type` and its fields. Decoding checks every field
against the dataclass's type hints and builds only the types the protocol registers, so a
frame can never run code or construct anything else (no pickle crosses the socket). Anything
malformed raises FrameError, which the service answers with an error frame and a log line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import socket
import struct
import types
import typing
from collections.abc import Iterable
from typing import Any

PROTOCOL = 1
MAX_FRAME = 16 * 1024 * 1024  # bytes: an original image travels in one frame, as base64
_LENGTH = struct.Struct(">I")
BRIEF = 80  # characters of a bad value quoted in an error


class FrameError(ValueError):
    """A frame that is not a message of this protocol: say so, and carry on."""


class FrameTooLarge(FrameError):
    """The length prefix is past MAX_FRAME: the stream cannot be followed any further."""


class Codec:
    """Encodes and decodes the registered dataclasses (and the types their fields name)."""

    def __init__(self, registered: Iterable[type[Any]]) -> None:
        self.types = {cls.__name__: cls for cls in registered}
        self._hints: dict[type[Any], dict[str, Any]] = {}

    # ---------------------------------------------------------------- encoding
    def encode(self, message: Any) -> bytes:
        data = self._plain(message)
        data["v"] = PROTOCOL
        body = json.dumps(data, separators=(",", ":")).encode()
        if len(body) > MAX_FRAME:
            raise FrameTooLarge(f"a {type(message).__name__} of {len(body)} bytes")
        return _LENGTH.pack(len(body)) + body

    def _plain(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if type(value).__name__ not in self.types:
                raise TypeError(f"{type(value).__name__} is not a message of this protocol")
            fields = {
                f.name: self._plain(getattr(value, f.name)) for f in dataclasses.fields(value)
            }
            return {"type": type(value).__name__, **fields}
        if isinstance(value, tuple | list):
            return [self._plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self._plain(v) for k, v in value.items()}
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)  # "nan", "inf": JSON has no such numbers
        return value

    # ---------------------------------------------------------------- decoding
    def decode(self, body: bytes) -> Any:
        """The message a frame's body holds; FrameError for anything else, whatever the bytes
        (JSON nested past the interpreter's depth, integers too long to convert included)."""
        try:
            data = json.loads(body)
        except RecursionError:
            raise FrameError("not JSON this side reads (nested too deep)") from None
        except ValueError as exc:  # not UTF-8, not JSON, an integer of over 4,300 digits
            raise FrameError(f"not JSON ({_cut(str(exc))})") from None
        if not isinstance(data, dict):
            raise FrameError("a frame must be a JSON object")
        version = data.pop("v", None)
        if version != PROTOCOL:
            raise FrameError(f"protocol version {_brief(version)}; this side speaks {PROTOCOL}")
        try:
            return self._value(data, object, "frame")
        except RecursionError:
            raise FrameError("a frame nested too deep") from None

    def _hints_of(self, cls: type[Any]) -> dict[str, Any]:
        if cls not in self._hints:
            self._hints[cls] = typing.get_type_hints(cls, localns=self.types)
        return self._hints[cls]

    def _dataclass(self, data: Any, base: type[Any], where: str) -> Any:
        if not isinstance(data, dict):
            raise FrameError(f"{where}: expected an object")
        name = data.get("type")
        cls = self.types.get(name) if isinstance(name, str) else None
        if cls is None or not issubclass(cls, base):
            raise FrameError(f"{where}: unknown message type {_brief(name)}")
        hints = self._hints_of(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        given = set(data) - {"type"}
        names = {f.name for f in fields}
        if given - names:
            raise FrameError(f"{where}: {name} has no field {_brief(sorted(given - names)[0])}")
        values = {}
        for f in fields:
            if f.name in data:
                values[f.name] = self._value(data[f.name], hints[f.name], f"{name}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FrameError(f"{where}: {name} lacks {f.name!r}")
        return cls(**values)

    def _value(self, data: Any, hint: Any, where: str) -> Any:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is object or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return self._dataclass(data, hint if hint is not object else object, where)
        if origin in (typing.Union, types.UnionType):
            for arm in args:
                try:
                    return self._value(data, arm, where)
                except FrameError:
                    continue
            raise FrameError(f"{where}: {_brief(data)} is none of {hint}")
        if hint is type(None):
            if data is None:
                return None
        elif origin is typing.Literal:
            if data in args and not isinstance(data, bool | float):
                return data
        elif origin is tuple:
            if isinstance(data, list):
                if len(args) == 2 and args[1] is Ellipsis:
                    return tuple(self._value(v, args[0], where) for v in data)
                if len(args) == len(data):
                    return tuple(self._value(v, a, where) for v, a in zip(data, args, strict=True))
        elif origin is dict:
            if isinstance(data, dict):
                key, item = args
                try:
                    return {key(k): self._value(v, item, where) for k, v in data.items()}
                except ValueError:
                    pass
        elif hint is bool:
            if isinstance(data, bool):
                return data
        elif hint is int:
            if isinstance(data, int) and not isinstance(data, bool):
                return data
        elif hint is float:
            if isinstance(data, int | float) and not isinstance(data, bool):
                with contextlib.suppress(OverflowError):  # an integer past any float
                    return float(data)
            if data in ("nan", "inf", "-inf"):
                return float(data)
        elif hint is str:
            if isinstance(data, str):
                return data
        elif hint is Any:
            return data
        raise FrameError(f"{where}: {_brief(data)} is not a {hint}")


def _brief(value: object) -> str:
    """A value as a log line quotes it: its repr, cut short (a frame may hold 16 MiB)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep, an integer too long to print
        return f"a {type(value).__name__}"
    return _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= BRIEF else f"{text[: BRIEF - 1]}…"


def read_frame(stream: socket.socket) -> bytes | None:
    """One frame's body from a connected socket; None when the peer has closed it."""
    head = _read_exactly(stream, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise FrameTooLarge(f"a frame of {length} bytes (at most {MAX_FRAME})")
    body = _read_exactly(stream, length)
    if body is None:
        return None
    return body


def _read_exactly(stream: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
