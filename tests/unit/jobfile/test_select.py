"""--select and --shard."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sprunner.errors import UsageError
from sprunner.jobfile.selection import select, shard, shard_of
from sprunner.settings import Shard


@dataclass(frozen=True)
class C:
    name: str
    tags: tuple[str, ...] = ()


ALL = (C("shop-a", ("daily",)), C("shop-b"), C("news", ("daily", "news")), C("blog"))


def names(items: tuple[C, ...]) -> list[str]:
    return [c.name for c in items]


def test_no_selector_selects_all() -> None:
    assert select(ALL, ()) == ALL


def test_names_globs_tags_keep_file_order() -> None:
    assert names(select(ALL, ["blog", "shop-*"])) == ["shop-a", "shop-b", "blog"]
    assert names(select(ALL, ["tag:daily"])) == ["shop-a", "news"]
    assert names(select(ALL, ["tag:ne*", "news"])) == ["news"]
    assert names(select(ALL, ["shop-?"])) == ["shop-a", "shop-b"]


def test_unmatched_selector_is_a_usage_error_listing_names() -> None:
    with pytest.raises(UsageError) as raised:
        select(ALL, ["shop-*", "nwes"])
    message = str(raised.value)
    assert "'nwes' matches no collection" in message
    assert "shop-a, shop-b, news, blog" in message and "tags: daily, news" in message


def test_shards_partition_stably() -> None:
    many = tuple(C(f"c{i}") for i in range(300))
    parts = [shard(many, Shard(i, 3)) for i in (1, 2, 3)]
    assert sorted(c.name for p in parts for c in p) == sorted(c.name for c in many)
    assert all(60 < len(p) < 140 for p in parts)
    assert shard(many, None) == many
    # Stable across runs and processes: sha256, not hash().
    assert shard_of("shop-categories", 3) == shard_of("shop-categories", 3)
    assert [shard_of(n, 4) for n in ("a", "b", "c")] == [
        int.from_bytes(__import__("hashlib").sha256(n.encode()).digest()[:8], "big") % 4 + 1
        for n in ("a", "b", "c")
    ]
