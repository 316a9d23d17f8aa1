"""Every reconcile decision, with plain data: no API, no files."""

from __future__ import annotations

from sprunner.api.models import CollectionRef
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile.plan import build_plan, diff_requests, request_digest
from sprunner.state import Entry, Hasher

HASHER = Hasher.from_api_key("test-key")


def desired(name: str, *urls: str, browser: bool = False) -> DesiredCollection:
    requests = tuple({"url": u, "browser": browser} if browser else {"url": u} for u in urls)
    return DesiredCollection(name=name, file="jobs.yaml", line=1, tags=(), requests=requests)


def test_missing_remotely_is_created() -> None:
    shop = desired("shop", "https://a.example/1", "https://a.example/2")
    plan = build_plan([shop], [], {}, hasher=HASHER, declared=["shop"])
    (item,) = plan.items
    assert (item.action, item.reason, item.requests, item.credits) == (
        "create",
        "not found remotely",
        2,
        2,
    )
    assert plan.has_changes


def test_same_fingerprint_and_id_is_unchanged() -> None:
    shop = desired("shop", "https://a.example/1")
    entries = {"shop": Entry(id="c1", fingerprint=HASHER.fingerprint(shop), created=True)}
    plan = build_plan(
        [shop], [CollectionRef("c1", "shop")], entries, hasher=HASHER, declared=["shop"]
    )
    assert [i.action for i in plan.items] == ["unchanged"]
    assert not plan.has_changes


def test_changed_content_is_updated_with_a_diff() -> None:
    before = desired("shop", "https://a.example/1", "https://a.example/2")
    after = DesiredCollection(
        name="shop",
        file="jobs.yaml",
        line=1,
        tags=(),
        requests=(
            {"url": "https://a.example/1", "format": "markdown"},
            {"url": "https://a.example/3"},
        ),
    )
    entries = {"shop": Entry(id="c1", fingerprint=HASHER.fingerprint(before))}
    applied = {"shop": [request_digest(r, HASHER) for r in before.requests]}
    plan = build_plan(
        [after],
        [CollectionRef("c1", "shop")],
        entries,
        hasher=HASHER,
        declared=["shop"],
        applied=applied,
    )
    (item,) = plan.items
    assert item.action == "update" and item.remote_id == "c1"
    assert item.diff is not None
    assert (item.diff.added, item.diff.removed, item.diff.changed) == (1, 1, 1)


def test_unknown_state_means_one_put_never_a_create() -> None:
    shop = desired("shop", "https://a.example/1")
    plan = build_plan([shop], [CollectionRef("c1", "shop")], {}, hasher=HASHER, declared=["shop"])
    (item,) = plan.items
    assert (item.action, item.remote_id, item.diff) == ("update", "c1", None)


def test_state_for_another_id_is_not_trusted() -> None:
    shop = desired("shop", "https://a.example/1")
    entries = {"shop": Entry(id="old", fingerprint=HASHER.fingerprint(shop))}
    plan = build_plan(
        [shop], [CollectionRef("new", "shop")], entries, hasher=HASHER, declared=["shop"]
    )
    assert [(i.action, i.remote_id) for i in plan.items] == [("update", "new")]


def test_remote_duplicates_are_an_error_for_that_collection_only() -> None:
    shop, blog = desired("shop", "https://a.example/"), desired("blog", "https://b.example/")
    remote = [CollectionRef("c1", "shop"), CollectionRef("c2", "shop")]
    plan = build_plan([shop, blog], remote, {}, hasher=HASHER, declared=["shop", "blog"])
    assert [(i.name, i.action) for i in plan.items] == [("shop", "error"), ("blog", "create")]
    assert "c1, c2" in plan.items[0].reason


def test_prune_candidates_are_only_what_sprunner_created() -> None:
    remote = [
        CollectionRef("c1", "gone-created"),
        CollectionRef("c2", "gone-adopted"),
        CollectionRef("c3", "someone-elses"),
        CollectionRef("c4", "not-selected"),
    ]
    entries = {
        "gone-created": Entry(id="c1", created=True, file="jobs/a.yaml"),
        "gone-adopted": Entry(id="c2", created=False, file="jobs/a.yaml"),
        "not-selected": Entry(id="c4", created=True, file="jobs/a.yaml"),
    }
    plan = build_plan(
        [], remote, entries, hasher=HASHER, declared=["not-selected"], prune=True, scope=["jobs"]
    )
    assert [(i.name, i.action, i.remote_id) for i in plan.items] == [
        ("gone-created", "delete", "c1")
    ]
    assert [ref.name for ref in plan.unmanaged] == ["someone-elses"]
    assert plan.has_changes


def test_delete_candidates_are_not_changes_without_prune() -> None:
    entries = {"old": Entry(id="c1", created=True, file="a.yaml")}
    remote = [CollectionRef("c1", "old")]
    plan = build_plan([], remote, entries, hasher=HASHER, declared=[], scope=["a.yaml"])
    assert [i.action for i in plan.in_file_order()] == ["delete"]
    assert not plan.has_changes
    declined = build_plan([], remote, entries, hasher=HASHER, declared=[], prune=True)
    assert declined.without_deletions().items == () and declined.of("delete") == ()


def test_prune_reaches_only_what_files_under_the_paths_of_the_apply_declared() -> None:
    """SPEC §10 "Prune is scoped": folders a/ and b/ applied apart never delete each
    other's collections; a file removed from under the paths counts; a collection whose
    file is unknown (an older state) is never a candidate, nor shown."""
    names = ["from-a", "from-b", "from-gone-file", "from-a-nested", "unknown", "from-ab"]
    remote = [CollectionRef(f"c{i}", name) for i, name in enumerate(names)]
    files = ["a/x.yaml", "b/y.yaml", "a/removed.yaml", "a/deep/z.yaml", None, "ab/w.yaml"]
    entries = {
        name: Entry(id=f"c{i}", created=True, file=file)
        for i, (name, file) in enumerate(zip(names, files, strict=True))
    }

    def pruned(scope: list[str], prune: bool = True) -> list[str]:
        plan = build_plan([], remote, entries, hasher=HASHER, declared=[], prune=prune, scope=scope)
        return sorted(i.name for i in (plan.items if prune else plan.not_pruned))

    assert pruned(["a"]) == ["from-a", "from-a-nested", "from-gone-file"]
    assert pruned(["a"], prune=False) == ["from-a", "from-a-nested", "from-gone-file"]
    assert pruned(["b"]) == ["from-b"]
    assert pruned(["a/deep/z.yaml"]) == ["from-a-nested"]
    assert pruned(["."]) == ["from-a", "from-a-nested", "from-ab", "from-b", "from-gone-file"]
    assert pruned([]) == []


def test_empty_collection_is_skipped() -> None:
    plan = build_plan([desired("empty")], [], {}, hasher=HASHER, declared=["empty"])
    assert [(i.action, i.reason) for i in plan.items] == [("skip", "expands to no request")]


def test_credits_count_browser_requests_five_times() -> None:
    plan = build_plan(
        [desired("a", "https://a.example/1", browser=True), desired("b", "https://b.example/")],
        [],
        {},
        hasher=HASHER,
        declared=["a", "b"],
    )
    assert plan.credits == 6


def test_diff_follows_custom_id_across_url_changes() -> None:
    old = [request_digest({"url": "https://a.example/1", "custom_id": "one"}, HASHER)]
    new = [request_digest({"url": "https://a.example/2", "custom_id": "one"}, HASHER)]
    assert str(diff_requests(old, new)) == "+0 -0 ~1"
