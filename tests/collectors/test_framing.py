"""RFC 6587 stream framing: octet counting and LF framing, split anywhere, oversized and malformed frames."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soclite.collectors.framing import FrameDecoder
from soclite.errors import ParseError


def feed_bytewise(decoder: FrameDecoder, data: bytes) -> list[bytes]:
    out: list[bytes] = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    return out


def test_octet_counting_counts_bytes_not_characters() -> None:
    msg = "<13>1 - h app - - - Xin chào Việt Nam".encode()
    stream = f"{len(msg)} ".encode() + msg + b"10 <13>x\ny\nz "
    assert feed_bytewise(FrameDecoder(1024), stream) == [msg, b"<13>x\ny\nz "]


def test_lf_framing_with_crlf_and_final_line_without_lf() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(b"<13>one\r\n<13>tw") == [b"<13>one"]
    assert decoder.feed(b"o\n\n<13>three") == [b"<13>two"]
    assert decoder.pending() == b"<13>three"


def test_oversized_frames_are_cut_and_the_stream_continues() -> None:
    decoder = FrameDecoder(1024)
    big = b"<13>" + b"a" * 5000
    frames = decoder.feed(b"5004 " + big + b"6 <13>ok")
    assert [len(f) for f in frames] == [1025, 6]
    lf = FrameDecoder(1024)
    frames = feed_bytewise(lf, b"<13>" + b"b" * 3000 + b"\n<13>next\n")
    assert [len(f) for f in frames] == [1025, 8]


@pytest.mark.parametrize("stream", [b"12x <13>", b"0012 <13>abc", b"1234567890123 x"])
def test_malformed_octet_count(stream: bytes) -> None:
    with pytest.raises(ParseError):
        FrameDecoder(1024).feed(stream)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=50))
def test_decoder_never_crashes(stream: bytes, step: int) -> None:
    decoder = FrameDecoder(1024)
    try:
        for i in range(0, len(stream), step):
            for frame in decoder.feed(stream[i : i + step]):
                assert len(frame) <= 1025
    except ParseError:
        pass
