"""How a run cuts its rows into Ray Data blocks (``driver.blocks_of``): tiny images share a block, large ones
spread out, and every row is in exactly one block, in manifest order."""

from __future__ import annotations

import pyarrow as pa

from pipeline.batch.driver import blocks_of


def _todo(sizes: list[int | None] | None, n: int | None = None) -> pa.Table:
    n = len(sizes) if sizes is not None else n
    columns = {"id": [f"r{i}" for i in range(n)], "uri": [f"/in/{i}.jpg" for i in range(n)]}
    if sizes is not None:
        columns["size"] = pa.array(sizes, pa.int64())
    return pa.table(columns)


def _ids(blocks: list[pa.Table]) -> list[list[str]]:
    return [block["id"].to_pylist() for block in blocks]


def test_tiny_images_share_blocks_up_to_the_row_cap():
    blocks = blocks_of(_todo([4_000] * 150), max_rows=64, block_bytes=1_000_000)
    assert [b.num_rows for b in blocks] == [64, 64, 22]
    assert [c for b in blocks for c in b.column_names] == ["id", "uri"] * 3  # size is not carried on


def test_large_images_get_small_blocks_and_an_oversized_one_its_own():
    sizes = [300_000, 300_000, 300_000, 300_000, 5_000_000, 100, 100]
    blocks = blocks_of(_todo(sizes), max_rows=64, block_bytes=1_000_000)
    assert _ids(blocks) == [["r0", "r1", "r2"], ["r3"], ["r4"], ["r5", "r6"]]


def test_unknown_sizes_count_as_an_eighth_of_a_block():
    assert [b.num_rows for b in blocks_of(_todo(None, 20), 64, 1_000_000)] == [8, 8, 4]
    mixed = blocks_of(_todo([None] * 4 + [600_000] * 2), 64, 1_000_000)
    assert [b.num_rows for b in mixed] == [4, 1, 1]  # 4 x 125,000 + 600,000 > 1 MB: a new block each
    text_sizes = _todo(None, 10).append_column("size", pa.array(["big"] * 10))  # a user's own column
    assert [b.num_rows for b in blocks_of(text_sizes, 64, 1_000_000)] == [8, 2]


def test_every_row_once_in_order():
    sizes = [(i * 7919) % 900_000 for i in range(1_000)]
    blocks = blocks_of(_todo(sizes), max_rows=16, block_bytes=1_000_000)
    assert [i for block in _ids(blocks) for i in block] == [f"r{i}" for i in range(1_000)]
    assert all(1 <= b.num_rows <= 16 for b in blocks)
    assert blocks_of(_todo([]), 64, 1_000_000)[0].num_rows == 0  # an empty plan is one empty block
