"""Reading a real git repository: refs as git resolves them, the range's DAG with the ancestors
that connect it to GOOD, subjects, dates, paths and tags; bad input is one clear error."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict

import pytest

from bisectlab import dag
from bisectlab.errors import HistoryError, RangeError
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.gitexport import export_git
from bisectlab.gitrepo import history_from_repo, repository_root, resolve_ref

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def candidate_shas(h, goods, bad) -> set[str]:
    return {h.shas[c] for c in dag.candidates(h.parents, bad, goods)}


def rev_list(repo, *args: str) -> set[str]:
    return set(repo.git("rev-list", *args).split())


def test_the_range_is_read_as_git_sees_it(small_repo):
    repo, s = small_repo, small_repo.shas
    h, goods, bad = history_from_repo(repo.path, ["v1.0"], "master")
    assert h.shas[bad] == s["docs"] and h.shas[goods[0]] == s["root"]
    assert candidate_shas(h, goods, bad) == rev_list(repo, "master", "^v1.0")
    assert all(p < x for x, ps in enumerate(h.parents) for p in ps)
    index = {sha: i for i, sha in enumerate(h.shas)}
    merge = index[s["merge"]]
    assert [h.shas[p] for p in h.parents[merge]] == [s["x86"], s["mm2"]]
    assert h.subjects[merge] == "Merge branch 'mm'" and h.paths_of(merge) == []
    assert sorted(h.paths_of(index[s["mm2"]])) == ["include/linux/mm.h", "mm/slub.c"]
    assert h.times[index[s["net"]]] == int(repo.git("log", "-1", "--format=%at", s["net"]))
    assert h.tags == {"v1.0": index[s["root"]], "v1.1": index[s["net2"]]}
    assert h.touching("drivers/net").sum() == 2 and h.topics[h.topic_of[bad]] == "mainline"


def test_boundary_commits_reach_a_good_commit(small_repo):
    # v1.1..master grows from v1.1 and from v1.0 (the old topic's fork): v1.0 must stay good
    repo = small_repo
    h, goods, bad = history_from_repo(repo.path, ["v1.1"], "master")
    assert candidate_shas(h, goods, bad) == rev_list(repo, "master", "^v1.1")
    assert len(candidate_shas(h, goods, bad)) == 3


def test_several_good_refs_as_in_git_bisect_start(small_repo):
    repo, s = small_repo, small_repo.shas
    h, goods, bad = history_from_repo(repo.path, [s["mm2"], "HEAD~4"], "v1.1")
    assert [h.shas[g] for g in goods] == [s["mm2"], s["x86"]]
    assert candidate_shas(h, goods, bad) == {s["merge"], s["net2"]}


def test_without_good_refs_the_whole_history_of_bad(small_repo):
    repo = small_repo
    h, goods, bad = history_from_repo(repo.path, [], "HEAD", name="lab")
    assert goods == [] and bad == len(h) - 1 and h.name == "lab"
    assert set(h.shas) == rev_list(repo, "HEAD")
    assert sum(1 for ps in h.parents if not ps) == 1


@pytest.mark.parametrize("ref, expected", [
    ("v1.0", "root"), ("v1.1", "net2"), ("HEAD~2", "net2"), ("mm", "mm2"), ("HEAD~1^2", "old"),
    ("v1.1^", "merge"), ("master~3^2~1", "mm1"), (":/mm: fix", "mm2"), (":/vmalloc", "mm1"),
])
def test_refs_resolve_as_git_does(small_repo, ref, expected):
    top = repository_root(small_repo.path)
    assert resolve_ref(top, ref) == small_repo.shas[expected]
    assert resolve_ref(top, small_repo.shas[expected][:7]) == small_repo.shas[expected]


def bare_clone(repo):
    target = repo.path.parent / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(target))
    return target


@pytest.mark.parametrize("case, error, message", [
    ("unknown", HistoryError, "unknown ref 'nope'"),
    ("ambiguous", HistoryError, "ambiguous ref 'v1.1'"),
    ("plain", HistoryError, "is not a git repository"),
    ("bare", HistoryError, "is a bare repository"),
    ("missing", HistoryError, "no such directory"),
    ("git-dir", HistoryError, "inside a .git directory"),
    ("same", RangeError, "are the same commit"),
    ("not-ancestor", RangeError, "is not an ancestor of BAD"),
    ("option", HistoryError, "unknown ref '--all'"),
])
def test_bad_input_is_one_clear_error(small_repo, tmp_path, case, error, message):
    repo = small_repo
    directory, goods, bad = repo.path, ["v1.0"], "master"
    if case == "unknown":
        bad = "nope"
    elif case == "ambiguous":
        repo.git("branch", "v1.1", "HEAD~1")
        goods = ["v1.1"]
    elif case == "plain":
        directory = tmp_path / "plain"
        directory.mkdir()
    elif case == "bare":
        directory = bare_clone(repo)
    elif case == "missing":
        directory = tmp_path / "nowhere"
    elif case == "git-dir":
        directory = repo.path / ".git"
    elif case == "same":
        goods, bad = ["v1.1"], "HEAD~2"
    elif case == "not-ancestor":
        goods, bad = ["old"], "v1.1"
    elif case == "option":
        goods = ["--all"]
    with pytest.raises(error, match=message) as caught:
        history_from_repo(directory, goods, bad)
    assert "\n" not in str(caught.value)


def test_an_ambiguous_sha_prefix_is_refused(tmp_path):
    # 2,000 commits make two whose shas share 4 hex digits (a birthday certainty)
    target = tmp_path / "many"
    target.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "master"], cwd=target, check=True)
    stream = "".join(f"commit refs/heads/master\ncommitter L <l@x> {1_200_000_000 + i} +0000\n"
                     f"data {len(str(i))}\n{i}\n" for i in range(2000))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=target, input=stream.encode(), check=True)
    shas = subprocess.run(["git", "rev-list", "master"], cwd=target, capture_output=True, text=True,
                          check=True).stdout.split()
    by_prefix = defaultdict(list)
    for sha in shas:
        by_prefix[sha[:4]].append(sha)
    prefix = next(p for p, group in sorted(by_prefix.items()) if len(group) > 1)
    with pytest.raises(HistoryError, match=f"ambiguous ref '{prefix}'"):
        history_from_repo(target, [prefix], "master")


def test_ranges_match_git_rev_list_on_an_exported_history(tmp_path):
    g = generate_kernel_history("import", 5, KernelShape(commits=700))
    repo = export_git(g, tmp_path / "repo")

    def git(*args: str) -> list[str]:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.split()

    # a commit on a -rc1 week topic branch: a second GOOD whose boundary is not the tag's
    topic = next(c for c in range(g.tags["v1.1-rc1"], g.tags["v1.1-rc2"]) if g.topic_of[c] > 0)
    (topic_sha,) = git("log", "--all", "--format=%H", f"--grep=bisectlab-sha: {g.shas[topic]}")
    for goods, bad in [(["v1.0"], "v1.1"), (["v1.1-rc1"], "v1.1"), (["v1.1-rc2"], "v1.1.1"),
                       (["v1.1-rc1", topic_sha], "v1.1")]:
        h, gs, b = history_from_repo(repo, goods, bad)
        expected = set(git("rev-list", bad, *(f"^{x}" for x in goods)))
        assert candidate_shas(h, gs, b) == expected and expected
        assert len(h) <= len(g)
