"""A history as GraphML, networkx's native exchange format (Gephi, yEd, igraph read it too).

GraphML attributes are scalars, so lists and tables become JSON text: ``tags`` (a list of tag
names), ``toggles`` (feature -> bool) and ``paths`` (a list of paths). ``sha`` and ``subject`` are
strings, ``time`` an integer (epoch seconds); an edge parent -> child carries ``parent``, its
position among the child's parents (0: the first parent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from bisectlab.errors import BisectlabError
from bisectlab.histfile import replacing
from bisectlab.history import History

if TYPE_CHECKING:
    import networkx as nx


def graphml_graph(history: History) -> nx.DiGraph:
    """The history as a DiGraph whose attributes GraphML can hold (keyed by commit number)."""
    import networkx as nx

    g = nx.DiGraph(name=history.name)
    tags_at = history.tags_at
    for i in range(len(history)):
        g.add_node(i, sha=history.shas[i], subject=history.subjects[i], time=int(history.times[i]),
                   tags=json.dumps(sorted(tags_at.get(i, []))),
                   toggles=json.dumps(history.toggles.get(i, {}), sort_keys=True),
                   paths=json.dumps(history.paths_of(i)))
    g.add_edges_from((p, x, {"parent": k}) for x, ps in enumerate(history.parents)
                     for k, p in enumerate(ps))
    return g


def write_graphml(history: History, path: str | Path) -> Path:
    """Write the history's graph to a GraphML file (an earlier one stays whole until the new one
    is: an error or Ctrl-C part way leaves it as it was)."""
    import networkx as nx

    target = Path(path)
    try:
        with replacing(target) as out:  # fails at once, before a large graph is built
            nx.write_graphml(graphml_graph(history), out)
    except OSError as exc:
        raise BisectlabError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def history_graph_from_graphml(path: str | Path) -> nx.DiGraph:
    """Read a GraphML export back (nodes are commit numbers again; tags, toggles, paths decoded)."""
    import networkx as nx

    g = nx.read_graphml(path, node_type=int)
    for _, data in g.nodes(data=True):
        for key in ("tags", "toggles", "paths"):
            data[key] = json.loads(data[key])
    return g
