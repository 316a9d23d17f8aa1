"""Retry companions in the plan (SPEC §8): never unmanaged, shown, pruned with the parent."""

from __future__ import annotations

from sprunner.api.models import CollectionRef
from sprunner.reconcile.plan import build_plan
from sprunner.state import Entry, Hasher
from tests.unit.reconcile.test_plan import desired

HASHER = Hasher.from_api_key("test-key")
REMOTE = [CollectionRef("c1", "shop"), CollectionRef("c2", "shop.retry")]
ENTRIES = {
    "shop": Entry(id="c1", created=True, file="jobs/shop.yaml"),
    "shop.retry": Entry(id="c2", created=True, companion_of="shop"),
}
SCOPE = ["jobs"]


def test_a_declared_parent_keeps_its_companion_listed_never_deleted() -> None:
    shop = desired("shop", "https://a.example/1")
    plan = build_plan([shop], REMOTE, ENTRIES, hasher=HASHER, declared=["shop"], prune=True)
    assert [(i.name, i.action) for i in plan.items] == [("shop", "update")]
    assert plan.unmanaged == ()
    assert [(c.name, c.parent, c.remote_id) for c in plan.companions] == [
        ("shop.retry", "shop", "c2")
    ]


def test_an_undeclared_parent_takes_its_companion_with_it() -> None:
    plan = build_plan([], REMOTE, ENTRIES, hasher=HASHER, declared=[], prune=True, scope=SCOPE)
    assert sorted((i.name, i.action) for i in plan.items) == [
        ("shop", "delete"),
        ("shop.retry", "delete"),
    ]
    assert plan.companions == ()
    elsewhere = build_plan([], REMOTE, ENTRIES, hasher=HASHER, declared=[], scope=["other"])
    assert elsewhere.not_pruned == ()  # another folder's parent: its companion stays too
    without = build_plan([], REMOTE, ENTRIES, hasher=HASHER, declared=[], scope=SCOPE)
    assert sorted(i.name for i in without.not_pruned) == ["shop", "shop.retry"]
    assert without.items == ()


def test_a_companion_of_a_parent_sprunner_did_not_create_stays() -> None:
    entries = {**ENTRIES, "shop": Entry(id="c1", created=False)}
    plan = build_plan([], REMOTE, entries, hasher=HASHER, declared=[], prune=True)
    assert plan.items == ()
    assert [c.name for c in plan.companions] == ["shop.retry"]


def test_after_a_lost_state_the_name_beside_a_declared_parent_is_a_companion() -> None:
    shop = desired("shop", "https://a.example/1")
    remote = [*REMOTE, CollectionRef("c3", "other.retry")]
    plan = build_plan([shop], remote, {}, hasher=HASHER, declared=["shop"], prune=True)
    assert [c.name for c in plan.companions] == ["shop.retry"]
    # Nothing is known of `other`: its `.retry` is as unmanaged as any stranger.
    assert [r.name for r in plan.unmanaged] == ["other.retry"]
    assert [i.action for i in plan.items] == ["update"]


def test_a_declared_collection_named_like_a_companion_is_planned_as_itself() -> None:
    shop, retry = desired("shop", "https://a.example/1"), desired("shop.retry", "https://b/")
    plan = build_plan([shop, retry], REMOTE, {}, hasher=HASHER, declared=["shop", "shop.retry"])
    assert [i.name for i in plan.items] == ["shop", "shop.retry"]
    assert plan.companions == ()


def test_a_declared_name_that_a_companion_needs_is_an_error_for_that_collection() -> None:
    import dataclasses

    from sprunner.jobfile.model import RetryPolicy, RunPolicy

    shop = dataclasses.replace(
        desired("shop", "https://a.example/1"), run=RunPolicy(retry=RetryPolicy(attempts=1))
    )
    clash = desired("shop.retry", "https://b.example/")
    plan = build_plan([shop, clash], [], {}, hasher=HASHER, declared=["shop", "shop.retry"])
    assert [(i.name, i.action) for i in plan.items] == [("shop", "create"), ("shop.retry", "error")]
    assert "retry companion of shop" in plan.items[1].reason
