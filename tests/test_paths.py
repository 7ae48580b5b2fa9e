"""Changed paths: compact storage, pathspecs as git matches them, generated and pinned paths, and
exports whose trees carry them (so `git bisect ... -- PATHSPEC` works on an exported history)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from bisectlab.dag import ancestors_mask
from bisectlab.errors import HistoryError
from bisectlab.generator import AREA_FILES, SUBSYSTEMS, KernelShape, generate_kernel_history
from bisectlab.gitexport import MARKER_FILE, export_git
from bisectlab.paths import ChangedPaths

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
TRAILER = re.compile(r"bisectlab-sha: ([0-9a-f]{40})")


def digest(h) -> str:
    """What must not move when paths are added: shas, parents, subjects, times, toggles, tags."""
    d = hashlib.sha256()
    for part in (list(h.shas), h.parents, h.subjects, h.times,
                 sorted((c, sorted(t.items())) for c, t in h.toggles.items()),
                 sorted(h.tags.items()), h.topic_of):
        d.update(json.dumps(part).encode())
    return d.hexdigest()


def test_adding_paths_leaves_every_commit_as_it_was(e1000e):
    # digests taken with the code before paths existed (commit db24ecf)
    assert digest(e1000e) == "3dfad9aaa043495a092c14ac7959328d70fb9d2c61f76b3dd1294f8591669817"
    k5000 = generate_kernel_history("k", 5, KernelShape(commits=5000))
    assert digest(k5000) == "9c181fe066595abbb07e4c75b696927ca72eb09b9e0d2537fda5a303db831134"


def test_changed_paths_rows_and_masks():
    cp = ChangedPaths.from_lists([["Makefile"], [], ["drivers/net/a.c", "net/core/dev.c"],
                                  ["drivers/net/a.c", "drivers/net/a.c"], ["drivers/netfoo.c"]])
    assert len(cp) == 5 and cp.of(1) == [] and cp.of(3) == ["drivers/net/a.c"]
    assert cp.counts().tolist() == [1, 0, 2, 1, 1]
    assert cp.touching("drivers/net").tolist() == [False, False, True, True, False]
    assert cp.touching("drivers/net/").tolist() == cp.touching("drivers/net").tolist()
    assert cp.touching("drivers/net/a.c").tolist() == [False, False, True, True, False]
    assert cp.touching("drivers/net*").tolist() == [False, False, True, True, True]
    assert cp.touching("*.c").tolist() == [False, False, True, True, True]
    assert cp.touching("net").tolist() == [False, False, True, False, False]
    assert cp.touching(".").tolist() == [True, False, True, True, True]
    assert cp.touching("drivers/*/a.c").sum() == cp.touching("*/a.c").sum() == 2
    assert not cp.touching("drivers/*").tolist()[1] and not cp.touching("*/net").any()
    assert not cp.touching("drivers").tolist()[0] and not cp.touching("drivers/ne").any()
    assert not ChangedPaths.empty(3).touching("drivers").any()


@pytest.mark.parametrize("spec", ["", ":(exclude)drivers", "/drivers/net"])
def test_pathspec_magic_and_absolute_paths_are_refused(spec):
    with pytest.raises(HistoryError):
        ChangedPaths.empty(2).touching(spec)


def test_generated_commits_touch_files_of_their_subsystem(kernel_2k):
    h = kernel_2k
    counts = h.paths.counts()
    for c in range(len(h)):
        area = h.subjects[c].split(":")[0]
        if len(h.parents[c]) > 1:
            assert counts[c] == 0
        elif h.subjects[c].startswith("Linux "):
            assert h.paths_of(c) == ["Makefile"]
        else:
            assert area in SUBSYSTEMS and 1 <= counts[c] <= 4
            assert set(h.paths_of(c)) <= set(AREA_FILES[area])
    assert h.touching("drivers/net").sum() > 0 and h.touching("kernel/trace/*").sum() > 0


def test_generated_paths_follow_name_and_seed():
    a, b, c = (generate_kernel_history("k", s, KernelShape(commits=600)) for s in (1, 1, 2))
    assert np.array_equal(a.paths.ids, b.paths.ids) and a.paths.table == b.paths.table
    assert not np.array_equal(a.paths.ids[:200], c.paths.ids[:200])


def test_pinned_commits_carry_their_real_paths(e1000e):
    h = e1000e
    by_upstream = {u: c for c, u in h.upstream.items()}
    dynamic = h.paths_of(by_upstream["d61f82d0"])
    assert {"kernel/trace/ftrace.c", "arch/x86/kernel/ftrace.c", "include/linux/ftrace.h",
            "kernel/module.c"} <= set(dynamic)
    lockdown = h.paths_of(by_upstream["4a770358"])
    assert {"drivers/net/e1000e/ich8lan.c", "drivers/net/e1000e/netdev.c"} <= set(lockdown)
    main = next(r for r in h.ranges if r.bad == "v2.6.27-rc8")
    assert h.touching("kernel/trace")[main.culprit] and not h.touching("drivers/net")[main.culprit]


def test_malformed_pinned_paths_are_one_clear_error():
    from bisectlab.history import history_from_toml

    text = ('name = "x"\nseed = 1\n[generate]\ncommits = 100\n'
            '[[commit]]\nphase = "rc1"\nsubject = "x"\npaths = ["../etc/passwd"]\n')
    with pytest.raises(HistoryError, match="not a relative file path"):
        history_from_toml(text)


@pytest.fixture(scope="module")
def export_600(tmp_path_factory):
    h = generate_kernel_history("paths", 11, KernelShape(commits=600))
    return h, export_git(h, tmp_path_factory.mktemp("export") / "repo")


def git(repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@needs_git
@pytest.mark.parametrize("spec", ["drivers/net", "kernel/trace/*", "*.h", "drivers/*/e1000e/*",
                                  "Makefile", "mm/", "drivers/ne*"])
def test_pathspec_masks_agree_with_git_on_an_export(export_600, spec):
    h, repo = export_600
    listed = TRAILER.findall(git(repo, "log", "--all", "--no-merges", "--full-history",
                                 "--format=%B", "--", spec))
    mask = h.touching(spec)
    ours = {h.shas[c] for c in range(len(h)) if mask[c] and len(h.parents[c]) < 2}
    assert listed and set(listed) == ours


@needs_git
def test_exported_commits_hold_their_paths_and_merges_bring_their_side(export_600):
    h, repo = export_600
    master = max(c for c, t in enumerate(h.topic_of) if t == 0)
    written = {p for c in np.flatnonzero(ancestors_mask(h.parents, [master])) for p in h.paths_of(c)}
    tree = set(git(repo, "ls-tree", "-r", "--name-only", "master").split("\n")) - {""}
    assert tree == {MARKER_FILE} | written
    merges = git(repo, "rev-list", "--merges", "master").split()[:12]
    assert merges
    for m in merges:
        p1, p2 = git(repo, "rev-parse", f"{m}^1", f"{m}^2").split()
        base = git(repo, "merge-base", p1, p2).strip()

        def changed(a, b):
            return set(git(repo, "diff", "--name-only", a, b).split()) - {MARKER_FILE}
        assert changed(p1, m) == changed(base, p2)  # the side's changes come in, theirs win
        assert changed(p2, m) == changed(base, p1) - changed(base, p2)
