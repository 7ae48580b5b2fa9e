"""`history import-git` (a real repository's shape as a .npz history file, with a planted bug),
campaigns, bench and bisect on it, and the file format itself."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisectlab.errors import HistoryError
from bisectlab.gitrepo import history_from_repo
from bisectlab.histfile import _joined, history_bytes, read_history_file, write_history_file
from bisectlab.history import PackedInts, PackedText, load_history

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def same_shape(a, b) -> bool:
    return (a.shas == b.shas and a.parents == b.parents and a.subjects == b.subjects
            and a.times == b.times and a.tags == b.tags and a.topic_of == b.topic_of
            and a.paths.table == b.paths.table and np.array_equal(a.paths.ids, b.paths.ids)
            and np.array_equal(a.paths.offsets, b.paths.offsets))


@needs_git
def test_import_git_stores_the_shape_of_the_range(run, small_repo, tmp_path):
    out = tmp_path / "lab.npz"
    result = run("history", "import-git", str(small_repo.path), "v1.0", "master", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("imported 10 commits (2 merges, 2 tags, 10 distinct paths): "
                                    "range v1.0..") and "9 candidates; no bug planted" in result.stdout
    h = load_history(str(out))
    direct, _, _ = history_from_repo(small_repo.path, ["v1.0"], "master")
    assert same_shape(h, direct) and h.name == "linux" and h.bug is None
    assert h.advertised == [("v1.0", small_repo.shas["docs"])]
    assert h.source == str(out.resolve())
    shown = run("history", "show", str(out))
    assert shown.exit_code == 0 and "9 candidates, no bug" in shown.stdout


@needs_git
def test_import_git_without_a_range_runs_from_the_root_to_head(run, small_repo, tmp_path):
    out = tmp_path / "all.npz"
    result = run("history", "import-git", str(small_repo.path), "-o", str(out), "--name", "lab")
    assert result.exit_code == 0, result.stderr
    h = load_history(str(out))
    assert h.name == "lab" and len(h) == 10
    assert h.advertised == [(small_repo.shas["root"], small_repo.shas["docs"])]


@needs_git
def test_a_campaign_bench_and_bisect_run_on_an_imported_history(run, small_repo, tmp_path):
    out = tmp_path / "lab.npz"
    result = run("history", "import-git", str(small_repo.path), "v1.0", "master", "-o", str(out),
                 "--bug", "rate", "--detect", "0.5", "--culprit", "mm~1")
    assert result.exit_code == 0, result.stderr
    assert "rate bug p=0.5 f=0 at " + small_repo.shas["mm1"][:12] in result.stdout
    campaign = run("replay", "campaign", "--history", str(out), "--hunts", "3", "--workers", "1",
                   "--strategy", "git", "--strategy", "bayes", "--rigs", "2", "--adapters", "20",
                   "--db", "c.sqlite", "-q", "--json")
    assert campaign.exit_code == 0, campaign.stderr
    table = [json.loads(line) for line in campaign.stdout.splitlines()]
    assert [t["strategy"] for t in table] == ["git", "bayes"] and table[1]["accuracy"] == 1.0
    replayed = run("replay", "hunt", "4", "--db", "c.sqlite")
    assert replayed.exit_code == 0 and "identical" in replayed.stdout
    bench = run("bench", "--history", str(out), "--hunts", "3", "--detect", "0.5", "-q", "--json")
    assert bench.exit_code == 0 and json.loads(bench.stdout)["candidates"] == 9
    hunt = run("bisect", "v1.0", small_repo.shas["docs"][:10], "--history", str(out), "--seed", "2",
               "--db", "c.sqlite", "-q")
    assert hunt.exit_code == 0 and small_repo.shas["mm1"][:12] in hunt.stdout


@needs_git
def test_the_default_culprit_is_a_seeded_non_merge_commit_of_the_range(small_repo):
    from bisectlab.gitimport import PlantedBug, import_git

    culprits = set()
    for seed in range(6):
        h = import_git(small_repo.path, "v1.1", "master", bug=PlantedBug(0.2, seed=seed))
        again = import_git(small_repo.path, "v1.1", "master", bug=PlantedBug(0.2, seed=seed))
        assert history_bytes(h) == history_bytes(again)
        assert len(h.parents[h.bug.culprit]) == 1 and h.ranges[0].culprit == h.bug.culprit
        culprits.add(h.shas[h.bug.culprit])
    assert culprits == {small_repo.shas["old"], small_repo.shas["docs"]}


BAD_IMPORTS = {
    "good without bad": (["v1.0"], "give both GOOD and BAD"),
    "empty good": (["", "HEAD"], "GOOD is empty: give a ref"),
    "blank bad": (["HEAD~3", " "], "BAD is empty: give a ref"),
    "empty bad": (["HEAD~3", ""], "BAD is empty: give a ref"),
    "not npz": (["v1.0", "master", "-o", "x.toml"], "must end in .npz"),
    "culprit without bug": (["v1.0", "master", "--culprit", "mm"], "need --bug rate"),
    "culprit out of range": (["v1.1", "master", "--bug", "rate", "--culprit", "mm"],
                             "is not in the range"),
    "detect zero": (["v1.0", "master", "--bug", "rate", "--detect", "0"], "--detect"),
    "false positive above p": (["v1.0", "master", "--bug", "rate", "--detect", "0.1",
                                "--false-positive", "0.2"], "false_positive < detect"),
    "unknown ref": (["v1.0", "nope"], "unknown ref 'nope'"),
    "not an ancestor": (["old", "v1.1"], "is not an ancestor of BAD"),
    "same commit": (["v1.1", "HEAD~2"], "are the same commit"),
    "unwritable": (["v1.0", "master", "-o", "missing/dir/x.npz"], "cannot write"),
}


@needs_git
@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_bad_imports_are_one_line_and_exit_2(run, small_repo, case):
    args, message = BAD_IMPORTS[case]
    if "-o" not in args:
        args = [*args, "-o", "x.npz"]
    result = run("history", "import-git", str(small_repo.path), *args)
    assert message in one_error_line(result)


@needs_git
@pytest.mark.parametrize("case", ["plain", "bare", "ambiguous"])
def test_bad_repositories_are_one_line_and_exit_2(run, small_repo, tmp_path, case):
    directory, good = small_repo.path, "v1.0"
    if case == "plain":
        directory = tmp_path / "plain"
        directory.mkdir()
    elif case == "bare":
        directory = tmp_path / "bare.git"
        small_repo.git("clone", "-q", "--bare", str(small_repo.path), str(directory))
    else:
        small_repo.git("branch", "v1.0", "HEAD~3")
    result = run("history", "import-git", str(directory), good, "master", "-o", "x.npz")
    assert {"plain": "not a git repository", "bare": "bare repository",
            "ambiguous": "ambiguous ref 'v1.0'"}[case] in one_error_line(result)


@needs_git
def test_an_existing_different_history_file_needs_force(run, small_repo, tmp_path):
    out = str(tmp_path / "lab.npz")
    assert run("history", "import-git", str(small_repo.path), "-o", out).exit_code == 0
    assert run("history", "import-git", str(small_repo.path), "-o", out).exit_code == 0  # same
    again = run("history", "import-git", str(small_repo.path), "v1.0", "v1.1", "-o", out)
    assert "exists and differs" in one_error_line(again)
    forced = run("history", "import-git", str(small_repo.path), "v1.0", "v1.1", "-o", out, "--force")
    assert forced.exit_code == 0 and load_history(out).advertised[0][0] == "v1.0"


def test_history_files_round_trip_a_generated_history(kernel_2k, tmp_path):
    path = write_history_file(kernel_2k, tmp_path / "k.npz")
    back = read_history_file(path)
    assert same_shape(back, kernel_2k) and back.toggles == kernel_2k.toggles
    assert back.name == kernel_2k.name and back.topics == kernel_2k.topics
    assert history_bytes(kernel_2k) == path.read_bytes()


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\0",
                                               blacklist_categories=("Cs",))), max_size=30))
def test_packed_subjects_read_as_the_list_they_were_joined_from(subjects):
    """Any text without NUL (a lone surrogate is no text git or a TOML file can give; the
    surrogate-escaped bytes of a non-UTF-8 subject are the next test's)."""
    packed = PackedText.split(_joined(subjects)) if subjects else []
    assert list(packed) == subjects and len(packed) == len(subjects)
    if subjects:
        assert packed[-1] == subjects[-1] and packed[1:3] == subjects[1:3]
        with pytest.raises(IndexError):
            packed[len(subjects)]


def test_a_history_file_keeps_subjects_and_times_packed_and_intact(kernel_2k, tmp_path):
    subjects = [*kernel_2k.subjects[:7], "net: e1000e: trés ünïcode \udcff stray byte",
                *kernel_2k.subjects[8:]]
    history = dataclasses.replace(kernel_2k, subjects=subjects)
    back = read_history_file(write_history_file(history, tmp_path / "k.npz"))
    assert isinstance(back.subjects, PackedText) and isinstance(back.times, PackedInts)
    assert back.subjects[7] == subjects[7] and back.subjects == subjects
    assert back.times == kernel_2k.times and type(back.times[-1]) is int
    assert np.array_equal(np.asarray(back.times), kernel_2k.times)


def test_the_shipped_scenario_round_trips_with_its_bug_and_ranges(e1000e, tmp_path):
    back = load_history(str(write_history_file(e1000e, tmp_path / "e.npz")))
    assert same_shape(back, e1000e) and back.upstream == e1000e.upstream
    assert back.ranges == e1000e.ranges and back.bug.model == "e1000e"


@pytest.mark.parametrize("damage", ["garbage", "no meta", "other format", "missing"])
def test_a_damaged_history_file_is_one_clear_error(run, tmp_path, damage):
    path = tmp_path / "h.npz"
    if damage == "garbage":
        path.write_bytes(b"not a zip at all")
    elif damage == "no meta":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("sha.npy", b"")
    elif damage == "other format":
        np.savez(path, meta=np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8))
    with pytest.raises(HistoryError):
        load_history(str(path))
    one_error_line(run("history", "show", str(path)))


@needs_git
def test_a_repository_of_one_commit_has_no_range_to_import(run, tmp_path):
    repo = tmp_path / "one"
    repo.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                                  "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    line = one_error_line(run("history", "import-git", str(repo), "-o", "one.npz"))
    assert line.startswith("error: the oldest root and HEAD are the same commit (")
    assert not (tmp_path / "one.npz").exists()


@needs_git
def test_bench_refuses_a_history_whose_range_is_empty_in_one_line(run, small_repo, tmp_path):
    out = tmp_path / "lab.npz"
    assert run("history", "import-git", str(small_repo.path), "v1.0", "master", "-o",
               str(out)).exit_code == 0
    h = load_history(str(out))
    h.advertised = [(h.advertised[0][1], h.advertised[0][1])]
    write_history_file(h, tmp_path / "empty.npz")
    line = one_error_line(run("bench", "--history", str(tmp_path / "empty.npz"), "--hunts", "1",
                              "--workers", "1"))
    assert line.endswith(": GOOD and BAD are the same commit")
