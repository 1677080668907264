"""Text encodings of CSV exports: UTF-8 (with or without BOM), else Windows-1252 / Latin-1.

CRM exports opened and saved in Excel on Windows are often Windows-1252; DuckDB reads
UTF-8 only, so such files are transcoded once into a work folder.

>>> sniff_encoding(b"caf\\xc3\\xa9")
'utf-8'
>>> sniff_encoding(b"\\x80 5, caf\\xe9")   # euro sign and e-acute in Windows-1252
'cp1252'
>>> sniff_encoding(b"\\x81")               # undefined in cp1252: plain Latin-1
'latin-1'
>>> delimiter_of("deal_id;amount;stage")
';'
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

_CHUNK = 1 << 22  # 4 MiB: transcoding streams, memory stays flat for any file size
DELIMITERS = (",", ";", "\t", "|")
#: readable names for notes
ENCODING_NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "latin-1": "Latin-1"}


def sniff_encoding(data: bytes) -> str:
    """The first of utf-8, cp1252, latin-1 that decodes ``data`` strictly."""
    for enc in ("utf-8", "cp1252"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            pass
    return "latin-1"  # decodes any byte string


def file_encoding(path: Path) -> str:
    """Encoding of a whole file, streamed (a UTF-8 BOM counts as UTF-8)."""
    for enc in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(enc)()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return enc
        except UnicodeDecodeError:
            continue
    return "latin-1"


def transcode_to_utf8(src: Path, dst: Path, encoding: str) -> None:
    """Copy ``src`` decoded as ``encoding`` into ``dst`` as UTF-8, in chunks."""
    with open(src, "r", encoding=encoding, newline="") as fin, \
            open(dst, "w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)


def delimiter_of(header_line: str) -> str:
    """The delimiter used in a header line: the most frequent candidate, ',' on a tie."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def read_header(path: Path, encoding: str) -> tuple[list[str], str]:
    """Column names of a CSV's header row and its delimiter.

    The header may be quoted, so it is parsed with :mod:`csv`, not split.
    """
    enc = "utf-8-sig" if encoding == "utf-8" else encoding
    with open(path, "r", encoding=enc, newline="") as f:
        first = f.readline()
    delim = delimiter_of(first)
    row = next(csv.reader(io.StringIO(first), delimiter=delim), [])
    return row, delim
