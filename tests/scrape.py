"""Reading a service's `/metrics` as Prometheus would: the official parser, no regexes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample by name and labels, and the families' names and types."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name` with exactly these labels, or None when there is none."""
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """The sum of the `name` samples whose labels include these (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def names(self) -> set[str]:
        """Every sample name (`x_total`, `y_bucket`...) and every family name."""
        return {name for name, _ in self.samples} | set(self.types)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for n, ls in self.samples if n == name and label in dict(ls)}


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, types)


def scrape(base_url: str) -> Scrape:
    """GET `{base_url}/metrics` on a new connection; check the format's content type."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def eventually(base_url: str, check: Callable[[Scrape], bool], within: float = 10.0) -> Scrape:
    """Scrape until `check` holds (metrics are updated in the background), or `within`
    seconds have passed; the last scrape either way, for the caller's assertion."""
    deadline = time.monotonic() + within
    while True:
        found = scrape(base_url)
        if check(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
