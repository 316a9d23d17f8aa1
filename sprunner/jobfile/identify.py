"""Which rendered request of a collection a job is, from the `url` and `custom_id` the API
echoes back.

A deployment may echo the URL changed: percent-encoded otherwise (either hex case, or not
at all), `+` for a space, the scheme or host in another case, a default port, an empty
path, a fragment added, the query reordered, parameters added, the whole URL upper-cased.
A job is matched in tiers, from the strictest:

1. the URL as rendered (or as sprunner shows it: a results row's masked `url`);
2. the canonical URL: scheme and host lower-cased, default port, user-info and fragment
   dropped, path and parameters percent-decoded, parameters sorted;
3. the canonical URL case-folded;
4. the same scheme, host and path, every parameter of the rendered request among the
   echo's (the API added some);
5. the same, case-folded.

A tier keeps only the requests whose `custom_id` agrees with the job's (a job that says
none agrees with every request: the run answer's failed jobs do not carry it). The first
tier that finds a request decides: one request is the match; several are ambiguous and
stay so (the caller never picks one); none goes on to the next tier.

Pure, standard library only. Built lazily: a collection whose jobs all match at tier 1
never canonicalises a URL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sprunner.jobfile.masking import tidy

_DEFAULT_PORTS = {"http": 80, "https": 443}

Place = tuple[str, str, str]  # scheme, host[:port], path
Params = tuple[tuple[str, str], ...]


def canonical(url: str, *, fold: bool = False) -> tuple[Place, Params] | None:
    """(scheme, host, path) and sorted parameters, decoded; None for a URL that is none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = unquote(parts.path) or "/"
    params = parse_qsl(parts.query, keep_blank_values=True)
    if fold:
        path, host = path.casefold(), host.casefold()
        params = [(k.casefold(), v.casefold()) for k, v in params]
    return (scheme, host, path), tuple(sorted(params))


def _custom_id(request: Mapping[str, Any]) -> str | None:
    value = request.get("custom_id")
    return None if value is None or value == "" else str(value)


class RequestIndex:
    """Finds the rendered request(s) an echoed `(url, custom_id)` may be."""

    def __init__(
        self,
        requests: Sequence[Mapping[str, Any]],
        shown: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self._requests = requests
        self._shown = shown if shown is not None else requests

    def find(self, url: str, custom_id: str | None) -> tuple[int, ...]:
        """The indexes of the requests of the deciding tier: () no match, one the match,
        several ambiguous."""
        custom_id = custom_id or None
        tiers: tuple[Callable[[str], Sequence[int]], ...] = (
            self._exact,
            lambda u: self._canonical(u, fold=False),
            lambda u: self._canonical(u, fold=True),
            lambda u: self._added(u, fold=False),
            lambda u: self._added(u, fold=True),
        )
        for tier in tiers:
            found = tuple(i for i in tier(url) if self._agrees(i, custom_id))
            if found:
                return tuple(dict.fromkeys(found))
        return ()

    def _agrees(self, index: int, custom_id: str | None) -> bool:
        if custom_id is None:
            return True
        ours = self._custom_ids[index]
        return custom_id in ours if ours else False

    @cached_property
    def _custom_ids(self) -> list[tuple[str, ...]]:
        """Each request's custom_id as rendered and as shown (masked); () for none."""
        out = []
        for request, shown in zip(self._requests, self._shown, strict=True):
            real = _custom_id(request)
            display = _custom_id(shown)
            forms = (real, tidy(display)) if display is not None and display != real else (real,)
            out.append(tuple(f for f in forms if f is not None))
        return out

    @cached_property
    def _by_url(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = defaultdict(list)
        for i, (request, shown) in enumerate(zip(self._requests, self._shown, strict=True)):
            url, display = str(request.get("url")), tidy(str(shown.get("url")))
            found[url].append(i)
            if display != url:
                found[display].append(i)
        return found

    def _exact(self, url: str) -> Sequence[int]:
        return self._by_url.get(url, ())

    def _canonical_urls(self, fold: bool) -> list[tuple[Place, Params] | None]:
        return [canonical(str(r.get("url")), fold=fold) for r in self._requests]

    @cached_property
    def _plain(self) -> list[tuple[Place, Params] | None]:
        return self._canonical_urls(False)

    @cached_property
    def _folded(self) -> list[tuple[Place, Params] | None]:
        return self._canonical_urls(True)

    @cached_property
    def _by_canonical(self) -> tuple[dict[Any, list[int]], dict[Any, list[int]]]:
        plain: dict[Any, list[int]] = defaultdict(list)
        folded: dict[Any, list[int]] = defaultdict(list)
        for i, (one, other) in enumerate(zip(self._plain, self._folded, strict=True)):
            if one is not None and other is not None:
                plain[one].append(i)
                folded[other].append(i)
        return plain, folded

    def _canonical(self, url: str, *, fold: bool) -> Sequence[int]:
        key = canonical(url, fold=fold)
        return () if key is None else self._by_canonical[fold].get(key, ())

    @cached_property
    def _postings(self) -> tuple[_Postings, _Postings]:
        return _Postings(self._plain), _Postings(self._folded)

    def _added(self, url: str, *, fold: bool) -> Sequence[int]:
        """The requests at the echo's place whose every parameter the echo carries."""
        key = canonical(url, fold=fold)
        return () if key is None else self._postings[fold].within(*key)


class _Postings:
    """Per place, which requests carry each parameter: the requests whose parameters are
    all among an echo's are found from the echo's parameters, not by a scan of the
    requests (a `foreach` over a query parameter puts thousands at one place)."""

    def __init__(self, urls: Sequence[tuple[Place, Params] | None]) -> None:
        self._needs: list[Counter[tuple[str, str]]] = []
        self._bare: dict[Place, list[int]] = defaultdict(list)  # requests with no parameter
        self._by: dict[tuple[Place, tuple[str, str]], list[int]] = defaultdict(list)
        for i, key in enumerate(urls):
            needs: Counter[tuple[str, str]] = Counter(key[1] if key is not None else ())
            self._needs.append(needs)
            if key is None:
                continue
            if not needs:
                self._bare[key[0]].append(i)
            for param in needs:
                self._by[key[0], param].append(i)

    def within(self, place: Place, params: Params) -> list[int]:
        echoed = Counter(params)
        hits: Counter[int] = Counter()
        for param in echoed:
            hits.update(self._by.get((place, param), ()))
        found = [i for i, n in hits.items() if n == len(self._needs[i])]
        found = [i for i in found if not self._needs[i] - echoed]  # repeated parameters
        return sorted([*self._bare.get(place, ()), *found])
