"""`history export-graphml`: a history as GraphML that networkx reads back whole."""

from __future__ import annotations

import json

import networkx as nx

from bisectlab.graphml import history_graph_from_graphml
from bisectlab.history import load_history


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_export_graphml_round_trips_through_networkx(run, tmp_path):
    recipe = tmp_path / "k.toml"
    assert run("history", "generate", "--commits", "300", "--seed", "4", "--bug", "rate",
               "-o", str(recipe)).exit_code == 0
    out = tmp_path / "k.graphml"
    result = run("history", "export-graphml", str(recipe), str(out))
    assert result.exit_code == 0 and result.stdout == f"wrote 300 commits to {out}\n"
    h = load_history(str(recipe))
    g = nx.read_graphml(out, node_type=int)
    assert g.number_of_nodes() == len(h) and g.number_of_edges() == sum(map(len, h.parents))
    parents = [tuple(p for p, _, _ in sorted(g.in_edges(x, data="parent"), key=lambda e: e[2]))
               for x in range(len(h))]
    assert parents == h.parents
    culprit = h.bug.culprit
    node = history_graph_from_graphml(out).nodes[culprit]
    assert node["sha"] == h.shas[culprit] and node["subject"] == h.subjects[culprit]
    assert node["time"] == h.times[culprit] and node["toggles"] == {"rate_bug": True}
    assert node["paths"] == h.paths_of(culprit) and node["paths"]
    release = h.tags["v1.0"]
    assert json.loads(g.nodes[release]["tags"]) == ["v1.0"]


def test_export_graphml_to_an_unwritable_place_is_one_line(run, tmp_path):
    result = run("history", "export-graphml", "e1000e-2.6.27", str(tmp_path / "no" / "x.graphml"))
    assert "cannot write" in one_error_line(result)


def test_an_interrupted_export_leaves_the_earlier_one_whole(run, tmp_path, monkeypatch):
    recipe = tmp_path / "k.toml"
    assert run("history", "generate", "--commits", "300", "--seed", "4", "-o",
               str(recipe)).exit_code == 0
    assert run("history", "export-graphml", str(recipe), "keep.graphml").exit_code == 0
    kept = (tmp_path / "keep.graphml").read_bytes()

    def interrupted(graph, out):
        out.write(b"<?xml version='1.0'?>\n<graphml")
        raise KeyboardInterrupt

    write = nx.write_graphml
    monkeypatch.setattr(nx, "write_graphml", interrupted)
    result = run("history", "export-graphml", str(recipe), "keep.graphml")
    assert (result.exit_code, result.stderr.strip()) == (130, "interrupted")
    assert (tmp_path / "keep.graphml").read_bytes() == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.toml", "keep.graphml"]
    monkeypatch.setattr(nx, "write_graphml", write)
    assert run("history", "export-graphml", str(recipe), "keep.graphml").exit_code == 0
    assert (tmp_path / "keep.graphml").read_bytes() == kept
