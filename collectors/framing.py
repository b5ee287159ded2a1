"""Syslog over a byte stream (TCP, TLS): RFC 6587 framing, detected per connection.

* octet counting (RFC 6587 §3.4.1, mandatory for TLS in RFC 5425): ``MSG-LEN SP SYSLOG-MSG``; the
  length counts bytes, not characters;
* non-transparent framing (§3.4.2): messages end with LF (a CR before it is dropped).

The first byte of a connection decides: a digit means octet counting, anything else
(normally ``<``) means LF framing. A frame longer than ``max_frame`` is cut to
``max_frame + 1`` bytes so the normalizer sees it is oversized and flags it truncated.
"""

from __future__ import annotations

from soclite.errors import ParseError

#: An octet-count prefix is at most this many digits (a 1 GB frame is already absurd).
_MAX_DIGITS = 9


class FrameDecoder:
    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self.mode: str | None = None  # "octet" or "lf"
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized frame still to discard

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames. Raises ParseError on a malformed length prefix."""
        self._buffer += data
        if self.mode is None:
            stripped = self._buffer.lstrip(b"\r\n\x00 ")
            if not stripped:
                self._buffer.clear()
                return []
            del self._buffer[: len(self._buffer) - len(stripped)]
            self.mode = "octet" if stripped[:1].isdigit() else "lf"
        return self._octet() if self.mode == "octet" else self._lf()

    def _lf(self) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buffer
        if self._skip:  # discarding the tail of an oversized line up to its LF
            end = buf.find(b"\n")
            if end < 0:
                buf.clear()
                return frames
            del buf[: end + 1]
            self._skip = 0
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            frame = bytes(buf[start:end]).rstrip(b"\r")
            start = end + 1
            if frame.strip(b"\x00 "):
                frames.append(frame[: self.max_frame + 1])
        del buf[:start]
        if len(buf) > self.max_frame:
            # An endless line: emit what we have (flagged oversized) and drop the rest up to the next LF.
            frames.append(bytes(buf[: self.max_frame + 1]))
            buf.clear()
            self._skip = 1
        return frames

    def _octet(self) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buffer
        while True:
            if self._skip:
                dropped = min(self._skip, len(buf))
                del buf[:dropped]
                self._skip -= dropped
                if self._skip:
                    return frames
            while buf and buf[0] in (0x0A, 0x0D):  # some senders add a trailer LF even with octet counting
                del buf[:1]
            space = buf.find(b" ", 0, _MAX_DIGITS + 1)
            if space < 0:
                if len(buf) > _MAX_DIGITS or (buf and not bytes(buf).isdigit()):
                    raise ParseError(f"RFC 6587: malformed octet count {bytes(buf[:16])!r}")
                return frames
            prefix = bytes(buf[:space])
            if not prefix.isdigit() or prefix.startswith(b"0"):
                raise ParseError(f"RFC 6587: malformed octet count {prefix[:16]!r}")
            length = int(prefix)
            if length > self.max_frame:
                keep = self.max_frame + 1
                if len(buf) - space - 1 < keep:
                    return frames
                frames.append(bytes(buf[space + 1 : space + 1 + keep]))
                self._skip = length - keep
                del buf[: space + 1 + keep]
                continue
            if len(buf) - space - 1 < length:
                return frames
            frames.append(bytes(buf[space + 1 : space + 1 + length]))
            del buf[: space + 1 + length]

    def pending(self) -> bytes:
        """Bytes of an unfinished frame (an LF-framed sender may close without a final LF)."""
        return bytes(self._buffer) if self.mode == "lf" else b""
