"""Compare two results/ trees byte for byte, except for the git commit that provenance records.

    python tests/workflow/compare_results.py RUN_A/results RUN_B/results

Every file but the wall-time benchmarks (results/benchmarks/) must exist in both trees and be byte-identical once
each tree's git commit (40 hex digits, optionally "-dirty", as vaepipe.io.git_commit writes it) is replaced by a
placeholder of the same length, and so is every code digest (64 hex digits: a rule's ``code`` parameter, which
provenance records with the rule's config). Containers whose bytes checksum or re-encode their content are compared
by content: PNG files chunk by chunk (text chunks without their CRC), .keras zip archives member by member, Parquet
files as tables plus their key-value metadata (pyarrow also stores the metadata base64-encoded). Prints one line per file
and a verdict; exits 1 on any difference.
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
from pathlib import Path

_COMMIT = re.compile(rb"[0-9a-f]{64}|[0-9a-f]{40}(?:-dirty)?")


def _mask(data: bytes) -> bytes:
    return _COMMIT.sub(lambda m: b"C" * len(m.group(0)), data)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        text = kind in (b"tEXt", b"iTXt", b"zTXt")
        chunks.append((kind, _mask(body), b"" if text else crc))
        pos += 12 + length
    return chunks


def _zip_members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, _mask(archive.read(info))) for info in archive.infolist()]


def _parquet(path: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = {k: _mask(v) for k, v in (table.schema.metadata or {}).items() if k != b"ARROW:schema"}
    return table.replace_schema_metadata(None), metadata


def same(a: Path, b: Path) -> bool:
    if a.suffix == ".parquet":
        (table_a, meta_a), (table_b, meta_b) = _parquet(a), _parquet(b)
        return table_a.equals(table_b) and meta_a == meta_b
    if a.suffix == ".png":
        return _png_chunks(a.read_bytes()) == _png_chunks(b.read_bytes())
    if a.suffix == ".keras":
        return _zip_members(a) == _zip_members(b)
    return _mask(a.read_bytes()) == _mask(b.read_bytes())


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] != "benchmarks"}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = map(Path, argv)
    names_a, names_b = files(a), files(b)
    bad = 0
    for name in sorted(names_a | names_b):
        if name not in names_a or name not in names_b:
            print(f"only in {a if name in names_a else b}: {name}")
            bad += 1
            continue
        ok = same(a / name, b / name)
        bad += not ok
        print(f"{'identical' if ok else 'DIFFERS  '}  {name}")
    print(f"{len(names_a | names_b)} files, {bad} different")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
