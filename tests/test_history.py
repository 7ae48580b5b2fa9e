"""Histories: the generator's shape, the feature rule, refs, ground truth and scenario files."""

from __future__ import annotations

import hashlib

import networkx as nx
import pytest

from bisectlab import dag
from bisectlab.errors import HistoryError, RangeError
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import history_from_toml, load_history
from bisectlab.summary import generated_recipe


@pytest.mark.parametrize("n", [12, 100, 999, 2000, 25_000])
def test_generator_makes_exactly_n_commits_in_topological_order(n):
    h = generate_kernel_history("k", 3, KernelShape(commits=n))
    assert len(h) == n
    assert all(p < x for x, ps in enumerate(h.parents) for p in ps)
    assert sum(1 for ps in h.parents if not ps) == 1


def test_generator_is_kernel_shaped(kernel_2k):
    h = kernel_2k
    merges = sum(1 for ps in h.parents if len(ps) > 1)
    assert 0.03 < merges / len(h) < 0.12
    tags = set(h.tags)
    assert {"v1.0", "v1.1-rc1", "v1.1", "v1.1.1"} <= tags
    assert h.tags["v1.1-rc1"] < h.tags["v1.1-rc2"] < h.tags["v1.1"]
    # rc1 closes the merge window: most commits come before it
    assert 0.6 < h.tags["v1.1-rc1"] / len(h) < 0.8
    assert nx.is_directed_acyclic_graph(h.graph)
    assert h.graph.number_of_nodes() == len(h)


def test_generator_is_deterministic_by_seed():
    a = generate_kernel_history("k", 1, KernelShape(commits=500))
    b = generate_kernel_history("k", 1, KernelShape(commits=500))
    c = generate_kernel_history("k", 2, KernelShape(commits=500))
    assert a.parents == b.parents and a.shas == b.shas and a.subjects == b.subjects
    assert a.parents != c.parents or a.subjects != c.subjects


def test_a_generated_history_is_the_same_as_when_its_figures_were_measured():
    """A history is a function of its name and seed: the README's figures and logged hunts name
    its commits, so a faster generator must draw the same stream (digest of everything it
    generates, taken on the code before the choices were written out in generator._below)."""
    h = generate_kernel_history("k", 1, KernelShape(commits=2000))
    paths = h.paths
    content = repr((h.parents, list(h.subjects), list(h.times), h.topic_of, h.topics,
                    sorted(h.tags.items()), paths.offsets.tolist(), paths.ids.tolist(),
                    list(paths.table)))
    assert hashlib.sha256(content.encode()).hexdigest() == (
        "2f273ff299043789d1b63702e0cd85d72914e083d65aad11a9fe5e7d5ef7a2bb")


def test_feature_state_follows_the_newest_toggling_ancestor(e1000e):
    h = e1000e
    assert not h.features_at(h.resolve("v2.6.26")).get("dynamic_ftrace", False)
    rc8 = h.features_at(h.resolve("v2.6.27-rc8"))
    assert rc8["dynamic_ftrace"] and rc8["ftrace_cmpxchg"] and not rc8.get("e1000e_nvm_lockdown")
    assert h.features_at(h.resolve("v2.6.27"))["e1000e_nvm_lockdown"]
    assert h.features_at(h.resolve("v2.6.27.1"))["dynamic_ftrace"] is False


def test_shipped_scenario_follows_the_2_6_27_cycle(e1000e):
    h = e1000e
    assert 11_000 <= len(h) <= 12_000
    for tag in ["v2.6.26", "v2.6.27", "v2.6.27.1"] + [f"v2.6.27-rc{i}" for i in range(1, 10)]:
        assert tag in h.tags
    main = next(r for r in h.ranges if (r.good, r.bad) == ("v2.6.26", "v2.6.27-rc8"))
    assert h.upstream[main.culprit] == "d61f82d0"
    # the first bad commit lies on the tracing topic branch, not on the first-parent mainline
    assert h.topics[h.topic_of[main.culprit]] == "tracing"
    assert len(h.parents[main.culprit]) == 1
    lockdown = next(c for c, u in h.upstream.items() if u == "4a770358")
    assert h.tags["v2.6.27-rc8"] < lockdown < h.tags["v2.6.27-rc9"]


def test_true_culprit_is_the_unique_minimal_bad_commit(e1000e):
    h = e1000e
    good, bad = h.resolve("v2.6.26"), h.resolve("v2.6.27-rc8")
    culprit = h.true_culprit(good, bad)
    is_bad = h.bad_mask()
    cands = dag.candidates(h.parents, bad, [good])
    assert is_bad[culprit] and not any(is_bad[p] for p in h.parents[culprit])
    assert (dag.descendants_mask(h.parents, culprit)[cands] == is_bad[cands]).all()
    # after the lockdown there is nothing left to find, nor on a 64-bit rig
    assert h.true_culprit(good, h.resolve("v2.6.27")) is None
    assert h.true_culprit(good, bad, "x86_64") is None and h.true_culprit(good, bad, "i386") == culprit


def test_refs_resolve_tags_shas_and_unique_prefixes(e1000e):
    h = e1000e
    c = h.tags["v2.6.27-rc4"]
    assert h.resolve(h.shas[c]) == c
    assert h.resolve(h.shas[c][:10]) == c
    assert h.resolve(h.shas[c][:10].upper()) == c
    with pytest.raises(HistoryError, match="unknown ref"):
        h.resolve("v9.9")
    with pytest.raises(HistoryError, match="ambiguous"):
        h.resolve(next(_shared_prefix(h.shas)))
    with pytest.raises(HistoryError, match="a sha prefix needs at least 4 hex digits"):
        h.resolve(h.shas[c][:3])


def _shared_prefix(shas):
    seen = set()
    for s in shas:
        if s[:4] in seen:
            yield s[:4]
        seen.add(s[:4])


def test_range_checks(e1000e):
    h = e1000e
    rc8 = h.resolve("v2.6.27-rc8")
    with pytest.raises(RangeError, match="same commit"):
        h.check_range(rc8, rc8)
    with pytest.raises(RangeError, match="not an ancestor"):
        h.check_range(rc8, h.resolve("v2.6.26"))


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\nseed = 1\n[generate\n", "malformed"),
    ("seed = 1\n", "'name' must be a str"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 5\n", "12 to 5,000,000 commits, not 5"),
    ("name = 'x'\nseed = 1\n[generate]\nwibble = 5\n", "unknown \\[generate\\]"),
    ("name = 'x'\nseed = 1\n[bug]\nmodel = 'gremlin'\n", "unknown bug model"),
    ("name = 'x'\nseed = 1\n[bug]\nmodel = 'rate'\nculprit = 'v1.0'\ndetect = 2.0\n", "detect"),
])
def test_malformed_scenarios_are_one_clear_error(text, message):
    with pytest.raises(HistoryError, match=message):
        history_from_toml(text, source="bad.toml")


def test_missing_history_file_and_unknown_name(tmp_path):
    with pytest.raises(HistoryError, match="not found"):
        load_history(str(tmp_path / "nope.toml"))
    with pytest.raises(HistoryError, match="unknown history"):
        load_history("no-such-scenario")


def test_generated_recipe_round_trips_with_its_rate_bug():
    text = generated_recipe(800, 5, None, "rate", 0.5, 0.01)
    h = history_from_toml(text)
    assert len(h) == 800 and h.bug.detect == 0.5 and h.bug.false_positive == 0.01
    (r,) = h.ranges
    assert r.culprit == h.bug.culprit
    assert len(h.parents[r.culprit]) == 1
    assert h.features_at(h.resolve(r.bad))["rate_bug"]
    assert not h.features_at(h.resolve(r.good)).get("rate_bug", False)
