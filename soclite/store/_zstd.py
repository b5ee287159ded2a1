"""zstd with dictionaries trained on the documents themselves: for small JSON events, one at a time.

A ~1 KB event compresses about 2x on its own and about 10x with a dictionary trained on its
neighbours (the soak's province profile: 997 B → 101 B at level 1 or 97 B at level 3, 2–3 µs to
compress and 1–4 µs to decompress on this project's 2-core machine). The day files of the embedded
store (:mod:`soclite.store._sqlite_events`) and the ingest journal (:mod:`soclite.store.journal`) keep
their dictionaries in a ``zdicts`` table of their own file; each blob's first byte names its dictionary.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson
import zstandard as zstd

from soclite.errors import StoreError
from soclite.models import Event

#: ``CREATE TABLE`` of the dictionaries, in the file whose blobs they compress
ZDICTS_SCHEMA = "CREATE TABLE IF NOT EXISTS zdicts (id INTEGER PRIMARY KEY, samples INTEGER NOT NULL, dict BLOB NOT NULL);"
#: level (3 is zstd's default; higher levels cost write rate for a few %), trained dictionary size,
#: documents a dictionary is trained on before it is kept, dictionaries a file may hold
LEVEL = 3
TRAINED_BYTES = 16384
TRAIN_SAMPLES = 2000
MAX_DICTS = 8
#: a raw-content dictionary (too few documents to train on): the last documents' text, this long at most
RAW_DICT_BYTES = 4096


class ZstdCodec:
    """zstd with dictionaries trained on the file's own documents; each blob's first byte names its dictionary.

    The first dictionary comes from the first batch, however small; while the dictionary in use was
    learned from fewer than ``TRAIN_SAMPLES`` documents, a batch with more documents trains a better one
    (``MAX_DICTS`` at most a file). Frames are magic-less and checksum-less (SQLite's pages carry the
    rows; 4 + 4 bytes a row saved), with their content size, so a decompression is one call.
    """

    def __init__(self, rows: Sequence[tuple[int, int, bytes]]) -> None:
        self.samples: dict[int, int] = {}
        self._comp: dict[int, zstd.ZstdCompressor] = {}
        self._decomp: dict[int, zstd.ZstdDecompressor] = {}
        for number, samples, data in rows:
            self.add(number, samples, data)

    def add(self, number: int, samples: int, data: bytes) -> None:
        zdict = zstd.ZstdCompressionDict(data)
        params = zstd.ZstdCompressionParameters.from_level(
            LEVEL, format=zstd.FORMAT_ZSTD1_MAGICLESS, write_checksum=False, write_dict_id=False,
            write_content_size=True,
        )  # fmt: skip
        self._comp[number] = zstd.ZstdCompressor(dict_data=zdict, compression_params=params)
        self._decomp[number] = zstd.ZstdDecompressor(dict_data=zdict, format=zstd.FORMAT_ZSTD1_MAGICLESS)
        self.samples[number] = samples

    @property
    def current(self) -> int:
        return max(self.samples)

    def wants_training(self, batch: int) -> bool:
        have = self.samples[self.current]
        return have < TRAIN_SAMPLES and batch >= 2 * have and len(self.samples) < MAX_DICTS

    def pack(self, raw: bytes) -> bytes:
        number = self.current
        return bytes((number,)) + self._comp[number].compress(raw)

    def known(self, blob: bytes) -> bool:
        return bool(blob) and blob[0] in self._decomp

    def unpack(self, blob: bytes) -> bytes:
        decomp = self._decomp.get(blob[0]) if blob else None
        if decomp is None:
            raise StoreError(f"a document compressed with dictionary {blob[:1]!r}, which this file lacks")
        return decomp.decompress(blob[1:])

    def event(self, blob: bytes) -> Event:
        doc: Event = orjson.loads(self.unpack(blob))
        return doc


def train_dictionary(samples: Sequence[bytes]) -> bytes:
    """A zstd dictionary for these documents: trained (COVER) when there are enough of them, else their
    concatenated text (a raw-content dictionary, what deflate's zdict was)."""
    if len(samples) >= 64:
        try:
            return zstd.train_dictionary(TRAINED_BYTES, list(samples), level=LEVEL).as_bytes()
        except zstd.ZstdError:  # too little distinct content to train on: the raw text still helps
            pass
    return b"".join(samples[-64:])[-RAW_DICT_BYTES:] or b"{}"


def read_codec(conn: sqlite3.Connection) -> ZstdCodec | None:
    """The codec of the file ``conn`` has open (None while it has no dictionary yet)."""
    rows = conn.execute("SELECT id, samples, dict FROM zdicts ORDER BY id").fetchall()
    return ZstdCodec([(int(i), int(n), bytes(d)) for i, n, d in rows]) if rows else None


def trained(conn: sqlite3.Connection, codec: ZstdCodec | None, sample: Sequence[bytes]) -> ZstdCodec:
    """``codec``, or the file's codec after this batch trained its next dictionary: the first batch trains
    the first, a larger one a better one while the current was learned from few documents. Call it
    inside a write transaction, with the codec just read in it, so two writers never both add number n."""
    if codec is not None and not codec.wants_training(len(sample)):
        return codec
    number = 1 if codec is None else codec.current + 1
    conn.execute("INSERT INTO zdicts (id, samples, dict) VALUES (?, ?, ?)",
                 (number, len(sample), train_dictionary(sample)))  # fmt: skip
    out = read_codec(conn)
    assert out is not None
    return out
