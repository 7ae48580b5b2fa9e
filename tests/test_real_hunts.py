"""Real hunts: `bisectlab bisect --repo DIR --run CMD` in real git repositories built in tmp_path.

The repository is a 200-commit kernel-shaped history exported by `history export-git`, its culprit
moved to a commit on a topic branch. The tests' run scripts are plain sh: a commit is bad when the
culprit is in its history (`git merge-base --is-ancestor`, asked in the rig's worktree), and a bad
commit fails a boot when a hash of (commit, BISECTLAB_BOOT) says so, so a flaky bug's outcomes are
a fixed function of the commit and the boot, the same in every hunt.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import wait
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from bisectlab.cli import cli
from bisectlab.errors import BisectlabError
from bisectlab.lab import AdapterBox
from bisectlab.rigs import GitRigs, Rig, RigStopped, claim_folder

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GOOD, BAD = "v1.0", "v1.1"


def git(repo: Path, *args: str) -> str:
    """git's output in ``repo``, stripped."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class Export:
    """An exported kernel-shaped history: the repository, its scenario file and its culprit (a
    commit on a topic branch with one child, itself a plain commit) and the merge bringing it in."""

    repo: Path
    scenario: Path
    culprit: str
    child: str
    merge: str

    def copy(self, path: Path) -> Export:
        """The repository copied to ``path`` (a test may change it)."""
        shutil.copytree(self.repo, path, symlinks=True)
        return Export(path, self.scenario, self.culprit, self.child, self.merge)

    def candidates(self, *goods: str, bad: str = BAD) -> list[str]:
        """`git rev-list BAD ^GOOD...`: the commits a hunt may test."""
        return git(self.repo, "rev-list", bad, *(f"^{g}" for g in goods)).split()


@pytest.fixture(scope="session")
def kernel_template(tmp_path_factory) -> Export:
    """200 commits, exported once per session; the scenario's bug moved to the topic culprit."""
    folder = tmp_path_factory.mktemp("kernel")
    scenario, repo = folder / "k200.toml", folder / "linux"
    runner = CliRunner()
    for args in (["history", "generate", "--commits", "200", "--seed", "3", "--bug", "rate",
                  "--detect", "0.5", "-o", str(scenario)],
                 ["history", "export-git", str(scenario), str(repo)]):
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    culprit, child, merge = topic_culprit(repo)
    ours = git(repo, "show", f"{culprit}:BISECTLAB")
    text = scenario.read_text()
    scenario.write_text(re.sub(r'culprit = "[0-9a-f]{40}"', f'culprit = "{ours}"', text))
    return Export(repo, scenario, culprit, child, merge)


def topic_culprit(repo: Path) -> tuple[str, str, str]:
    """A plain commit off the mainline whose one child is a plain commit on the same branch, and
    the mainline merge that brings them in."""
    mainline = git(repo, "rev-list", "--first-parent", BAD).split()
    parents = {line.split()[0]: line.split()[1:]
               for line in git(repo, "rev-list", "--parents", BAD, f"^{GOOD}").splitlines()}
    children: dict[str, list[str]] = {}
    for commit, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(commit)
    topic = [c for c in reversed(list(parents)) if c not in mainline and len(parents[c]) == 1]
    for c in topic[len(topic) // 3:]:
        kids = children.get(c, [])
        if len(kids) == 1 and len(parents[kids[0]]) == 1 and kids[0] not in mainline:
            merge = next(m for m in reversed(mainline)
                         if len(parents.get(m, [])) > 1 and is_ancestor(repo, c, m))
            return c, kids[0], merge
    raise AssertionError("no topic commit with a plain child")


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=repo).returncode == 0


@pytest.fixture
def kernel(kernel_template, tmp_path) -> Export:
    return kernel_template.copy(tmp_path / "linux")


def make_script(path: Path, culprit: str, *, every: int = 1, before: str = "",
                boot: str = "") -> str:
    """An executable sh test: bad when ``culprit`` is in HEAD's history, failing one boot in
    ``every`` there (by a hash of the commit and BISECTLAB_BOOT); ``before`` runs first, ``boot``
    just before the verdict. Returns its path."""
    path.write_text(f"""#!/bin/sh
{before}
{boot}
if git merge-base --is-ancestor {culprit} HEAD; then
    h=$(printf '%s %s' "$BISECTLAB_COMMIT" "$BISECTLAB_BOOT" | cksum | cut -d' ' -f1)
    [ $((h % {every})) -eq 0 ] && exit 1
fi
exit 0
""")
    path.chmod(0o755)
    return str(path)


def hunt_json(run, *args: str) -> dict:
    """A hunt's verdict as JSON (exit 0 or 1)."""
    result = run("bisect", *args, "--json", "-q")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def logged_tests(run, hunt: int = 1, db: str = "bisectlab.sqlite") -> list[dict]:
    result = run("query", "tests", "--hunt", str(hunt), "--db", db, "--format", "json")
    return sorted(json.loads(result.stdout), key=lambda t: t["seq"])


def logged_boots(run, hunt: int = 1, db: str = "bisectlab.sqlite") -> list[dict]:
    result = run("query", "boots", "--hunt", str(hunt), "--db", db, "--format", "json")
    return json.loads(result.stdout)


def logged_hunts(run, db: str = "bisectlab.sqlite") -> list[dict]:
    return json.loads(run("query", "hunts", "--db", db, "--format", "json").stdout)


def rig_worktree(repo: Path, hunt: int, rig: int) -> str:
    """Where rig ``rig`` of hunt ``hunt`` has its worktree by default."""
    return str(repo / ".git" / "bisectlab" / "rigs" / f"hunt-{hunt}" / f"rig{rig}")


def worktrees(repo: Path) -> list[str]:
    """`git worktree list --porcelain`: each worktree's path."""
    return [line.split(" ", 1)[1] for line in git(repo, "worktree", "list", "--porcelain")
            .splitlines() if line.startswith("worktree ")]


# the culprit, the range, the refs ---------------------------------------------------------------


@pytest.mark.parametrize("strategy, every", [("git", 1), ("bayes", 1), ("bayes", 2)])
def test_a_culprit_on_a_topic_branch_is_named_itself_not_its_merge(run, kernel, tmp_path,
                                                                   strategy, every):
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=every)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", strategy)
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    assert kernel.merge != kernel.culprit
    tested = {t["commit_sha"] for t in logged_tests(run)}
    assert tested <= set(kernel.candidates(GOOD)) and kernel.culprit in tested


@pytest.mark.parametrize("strategy, every", [("git", 1), ("bayes", 2)])
def test_check_bad_boots_bad_first_and_a_bad_that_passes_ends_the_hunt(run, kernel, tmp_path,
                                                                       strategy, every):
    """--check-bad: BAD is the first test, booted until it fails; the hunt goes on to the culprit.
    A test that cannot fail (here `true`) ends the hunt there, exit 1, after the boots asked."""
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=every)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", strategy, "--check-bad", "40")
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    first = logged_tests(run)[0]
    assert first["commit_sha"] == git(kernel.repo, "rev-parse", BAD) and first["failed"]

    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", "true",
                 "--strategy", strategy, "--check-bad", "7", "-q")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("inconclusive: the bug did not show at BAD (")
    assert "in 7 boots" in result.stdout
    hunt = json.loads(run("query", "hunts", "--format", "json").stdout)[-1]
    assert (hunt["status"], hunt["tests"], hunt["boots"]) == ("inconclusive", 1, 7)

    broken = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", "true", "--install",
                 "echo no toolchain; exit 3", "--strategy", strategy, "--check-bad", "7", "-q")
    assert broken.exit_code == 1
    assert broken.stdout.splitlines()[0].endswith(
        "could not be tested (install failed (exit 3): skipped; its output ended: no "
        "toolchain): --check-bad needs the bug to show there first")


def test_several_goods_test_exactly_what_git_bisect_run_tests(run, kernel, tmp_path):
    """GOODs v1.0 and a topic tip without the culprit: the git strategy tests git's commits."""
    tips = [line.split()[2] for line in git(kernel.repo, "rev-list", "--merges", "--parents",
                                           BAD, f"^{GOOD}").splitlines()]
    other = next(t for t in tips if not is_ancestor(kernel.repo, kernel.culprit, t)
                 and not is_ancestor(kernel.repo, t, kernel.culprit))
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    verdict = hunt_json(run, GOOD, other, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", "git")
    assert verdict["culprit"] == kernel.culprit
    ours = [t["commit_sha"] for t in logged_tests(run)]
    assert set(ours) <= set(kernel.candidates(GOOD, other))
    theirs = kernel.copy(tmp_path / "theirs").repo
    git(theirs, "bisect", "start", BAD, GOOD, other)
    git(theirs, "bisect", "run", script)
    steps = [line.split()[3] for line in git(theirs, "bisect", "log").splitlines()
             if re.match(r"git bisect (good|bad) ", line)]
    assert ours == steps


def test_refs_may_be_a_branch_head_relative_or_a_sha_prefix(run, kernel, tmp_path):
    repo = kernel.repo
    git(repo, "branch", "stable", GOOD)
    assert is_ancestor(repo, kernel.culprit, "HEAD~3")
    good_sha, bad_sha = git(repo, "rev-parse", GOOD), git(repo, "rev-parse", "HEAD~3")
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    verdict = hunt_json(run, "stable", good_sha[:10], "HEAD~3", "--repo", str(repo), "--run",
                        script, "--strategy", "git")
    assert verdict["culprit"] == kernel.culprit
    (hunt,) = logged_hunts(run)
    assert (hunt["good"], hunt["bad"]) == (f"stable {good_sha[:10]}", "HEAD~3")
    assert (hunt["good_sha"], hunt["bad_sha"]) == (good_sha, bad_sha)
    assert {t["commit_sha"] for t in logged_tests(run)} <= set(kernel.candidates(GOOD, bad="HEAD~3"))


# the user's repository, the rigs' worktrees -----------------------------------------------------


def test_the_users_work_tree_and_branch_are_untouched_and_the_rigs_removed(run, kernel, tmp_path):
    repo = kernel.repo
    (repo / "Makefile").write_text("a local change\n")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "README").write_text("staged\n")
    git(repo, "add", "README")
    before = [git(repo, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"],
                                      ["symbolic-ref", "HEAD"], ["branch", "--list"],
                                      ["diff", "HEAD"])]
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2,
                         before=f'pwd >> {tmp_path}/where')
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(repo), "--run", script, "--rigs", "2")
    assert verdict["culprit"] == kernel.culprit
    after = [git(repo, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"],
                                     ["symbolic-ref", "HEAD"], ["branch", "--list"],
                                     ["diff", "HEAD"])]
    assert after == before and (repo / "notes.txt").read_text() == "untracked\n"
    rigs = repo / ".git" / "bisectlab" / "rigs" / "hunt-1"
    assert set((tmp_path / "where").read_text().split()) == {str(rigs / "rig1"), str(rigs / "rig2")}
    assert worktrees(repo) == [str(repo)] and not rigs.exists()


@pytest.mark.parametrize("keep", [True, False])
def test_worktrees_go_under_the_directory_given_and_stay_if_asked(run, kernel, tmp_path, keep):
    where = tmp_path / "scratch" / "rigs"
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=f'pwd >> {tmp_path}/where')
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--rigs", "2",
                        "--worktrees", str(where), *(["--keep-worktrees"] if keep else []))
    assert verdict["culprit"] == kernel.culprit
    rigs = [str(where / "hunt-1" / "rig1"), str(where / "hunt-1" / "rig2")]
    assert set((tmp_path / "where").read_text().split()) == set(rigs)
    assert worktrees(kernel.repo) == [str(kernel.repo), *(rigs if keep else [])]
    assert [Path(r).exists() for r in rigs] == [keep, keep] and (where / "hunt-1").exists() == keep
    assert not (kernel.repo / ".git" / "bisectlab").exists()


def test_a_rig_checks_out_and_installs_only_when_its_commit_changes(run, kernel, tmp_path):
    hook = kernel.repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\ngit rev-parse HEAD >> {tmp_path}/checkouts\n')
    hook.chmod(0o755)
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2)
    install = f'echo "$BISECTLAB_COMMIT $BISECTLAB_RIG $BISECTLAB_BOOT" >> {tmp_path}/installs'
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--install", install)
    assert verdict["culprit"] == kernel.culprit
    tested = [t["commit_sha"] for t in logged_tests(run)]
    changes = [c for i, c in enumerate(tested) if i == 0 or c != tested[i - 1]]
    assert len(changes) < len(tested)  # the hunt did test a commit twice in a row
    assert (tmp_path / "checkouts").read_text().split() == changes
    assert (tmp_path / "installs").read_text().splitlines() == [f"{c} rig1 0" for c in changes]
    assert verdict["installs"] == len(changes)
    assert [t["installed"] for t in logged_tests(run)] == [
        i == 0 or c != tested[i - 1] for i, c in enumerate(tested)]


def test_commands_see_commit_rig_boot_and_hunt_and_run_in_the_rigs_worktree(run, kernel, tmp_path):
    simulated = run("bisect", GOOD, BAD, "--history", str(kernel.scenario), "--strategy", "git",
                    "--seed", "1", "-q")
    assert simulated.exit_code == 0  # hunt 1: the real hunt is hunt 2
    seen = f'echo "$BISECTLAB_COMMIT $BISECTLAB_RIG $BISECTLAB_BOOT $BISECTLAB_HUNT ' \
           f'$(git rev-parse HEAD) $PWD" >> {tmp_path}/'
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=seen + "runs")
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--rigs", "2",
                        "--install", seen + "installs")
    assert (verdict["hunt_id"], verdict["culprit"]) == (2, kernel.culprit)
    rigs = kernel.repo / ".git" / "bisectlab" / "rigs"
    for name in ("runs", "installs"):
        for line in (tmp_path / name).read_text().splitlines():
            commit, rig, _, hunt, head, where = line.split()
            assert (head, hunt, where) == (commit, "2", str(rigs / "hunt-2" / rig))
    runs = [line.split()[:3] for line in (tmp_path / "runs").read_text().splitlines()]
    tests = {t["id"]: t for t in logged_tests(run, 2)}
    logged = [[tests[b["test_id"]]["commit_sha"], tests[b["test_id"]]["rig"], str(b["attempt"])]
              for b in logged_boots(run, 2)]
    assert sorted(runs) == sorted(logged)
    for commit in {c for c, _, _ in runs}:
        assert sorted(int(b) for c, _, b in runs if c == commit) == list(
            range(1, 1 + sum(c == commit for c, _, _ in runs)))
    installs = [line.split()[:3] for line in (tmp_path / "installs").read_text().splitlines()]
    assert {b for _, _, b in installs} == {"0"} and len(installs) == verdict["installs"]


# git bisect run's exit codes --------------------------------------------------------------------


@pytest.mark.parametrize("strategy, every", [("git", 1), ("bayes", 2)])
def test_exit_125_skips_a_commit_and_it_is_never_proposed_again(run, kernel, tmp_path, strategy,
                                                                every):
    parent = git(kernel.repo, "rev-parse", f"{kernel.culprit}^")
    skip = [c for c in kernel.candidates(GOOD) if c[-1] in "02468ace" and c not in (kernel.culprit, parent)]
    (tmp_path / "skip").write_text("\n".join(skip) + "\n")
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=every,
                         before=f'grep -qx "$BISECTLAB_COMMIT" {tmp_path}/skip && '
                                '{ echo "no firmware for this one"; exit 125; }')
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", strategy)
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    tests = logged_tests(run)
    skipped = [t["commit_sha"] for t in tests if t["skipped"]]
    assert len(skipped) >= 2
    assert skipped == [t["commit_sha"] for t in tests if t["commit_sha"] in skip]
    assert len(set(skipped)) == len(skipped)
    assert {t["note"] for t in tests if t["skipped"]} == {
        "exit 125: untestable, skipped; its output ended: no firmware for this one"}


@pytest.mark.parametrize("strategy", ["git", "bayes"])
def test_a_culprit_hidden_by_skips_gives_the_range_verdict(run, kernel, tmp_path, strategy):
    script = make_script(tmp_path / "t.sh", kernel.culprit,
                         before=f'[ "$BISECTLAB_COMMIT" = {kernel.culprit} ] && exit 125')
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--strategy", strategy]
    result = run("bisect", *args, "-q")
    assert result.exit_code == 1
    could_be = (f"there are only skipped commits left to test; the first bad commit could be any "
                f"of: {kernel.culprit[:12]} {kernel.child[:12]}")
    assert result.stdout.splitlines()[0].startswith(f"inconclusive: {could_be}")
    if strategy == "bayes":  # the confidence is the pair's, and says so
        assert result.stdout.splitlines()[1].endswith(" (the likeliest of them)")
        assert re.search(r"\n  confidence   0\.99\d\d that the first bad commit is one of "
                         r"those 2\n", result.stdout)
        check = re.search(r"\n  low-p check  (0\.\d{4}) with p", result.stdout)
        assert check and float(check.group(1)) >= 0.99
    verdict = hunt_json(run, *args)
    assert (verdict["status"], verdict["note"]) == ("inconclusive", could_be)
    assert [t["commit_sha"] for t in logged_tests(run, 2) if t["skipped"]] == [kernel.culprit]


def test_a_failing_install_skips_the_commit(run, kernel, tmp_path):
    parent = git(kernel.repo, "rev-parse", f"{kernel.culprit}^")
    broken = [c for c in kernel.candidates(GOOD)[1::4] if c not in (kernel.culprit, parent)]
    (tmp_path / "broken").write_text("\n".join(broken) + "\n")
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2,
                         before=f'echo "$BISECTLAB_COMMIT" >> {tmp_path}/runs')
    install = f'grep -qx "$BISECTLAB_COMMIT" {tmp_path}/broken && exit 3; exit 0'
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--install", install)
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    tests = logged_tests(run)
    failed = [t for t in tests if t["commit_sha"] in broken]
    assert len(failed) >= 2 and len({t["commit_sha"] for t in failed}) == len(failed)
    assert {(t["skipped"], t["boots"], t["note"]) for t in failed} == {
        (True, 0, "install failed (exit 3): skipped")}
    assert not set((tmp_path / "runs").read_text().split()) & set(broken)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie left to an init that does not reap is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def all_dead(pids, seconds: float = 10.0) -> bool:
    """Whether the processes are all gone within ``seconds``: a process killed with its group
    dies when the kernel next runs it, which on a loaded machine can be some ms later."""
    pids = [int(pid) for pid in pids]
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("action", ["skip", "fail", "abort"])
def test_a_hung_command_and_its_children_are_killed_at_the_timeout(run, kernel, tmp_path, action):
    hang = (f'if git merge-base --is-ancestor {kernel.culprit} HEAD && [ ! -e {tmp_path}/hung ]; '
            f'then touch {tmp_path}/hung; echo $$ > {tmp_path}/sh.pid; sleep 300 & '
            f'echo $! > {tmp_path}/child.pid; wait; fi')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=hang)
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--strategy", "git",
            "--timeout", "2", "--on-timeout", action]
    result = run("bisect", *args, "-q")
    pids = [int((tmp_path / f"{name}.pid").read_text()) for name in ("sh", "child")]
    assert all_dead(pids)
    if action == "abort":
        assert result.exit_code == 1
        assert result.stderr == ("error: --run timed out after 2 s (--on-timeout abort); hunt 1 "
                                 "is kept: bisectlab resume 1 goes on\n")
        assert logged_hunts(run)[0]["status"] == "interrupted"
        assert worktrees(kernel.repo) == [str(kernel.repo), rig_worktree(kernel.repo, 1, 1)]
        result = run("resume", "1", "-q")
    assert result.exit_code == 0 and result.stdout.startswith(f"{kernel.culprit} is the first bad")
    assert worktrees(kernel.repo) == [str(kernel.repo)]
    tests = logged_tests(run)
    hung = [b for b in logged_boots(run) if b["exit_status"] is None]
    if action == "abort":
        assert hung == []
        return
    (boot,) = hung
    (test,) = [t for t in tests if t["id"] == boot["test_id"]]
    assert boot["seconds"] >= 2 and [t["commit_sha"] for t in tests].count(test["commit_sha"]) == 1
    assert (test["skipped"], test["failed"], test["note"]) == {
        "skip": (True, False, "timed out after 2 s: untestable, skipped"),
        "fail": (False, True, "timed out after 2 s: counted as the bug (--on-timeout fail)")}[
            action]


@pytest.mark.parametrize("status, script", [(127, "missing.sh"), (126, "not-executable.sh")])
def test_a_missing_or_non_executable_script_stops_the_hunt_at_its_first_run(run, kernel, tmp_path,
                                                                           status, script):
    (tmp_path / "not-executable.sh").write_text("#!/bin/sh\nexit 0\n")
    path = tmp_path / script
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", str(path), "-q")
    assert result.exit_code == 2  # nothing logged: a command to fix, not a hunt to resume
    said = {127: "not found|No such file or directory", 126: "Permission denied"}[status]
    assert re.fullmatch(f"error: --run exited {status} on its first run: most likely a missing or "
                        f"non-executable script \\('{path}'\\); its output ended: [^;]*{path}: "
                        f"({said}); nothing was logged: hunt 1 ended aborted \\(run the hunt "
                        "again with a command that runs\\)\n", result.stderr)
    assert logged_hunts(run)[0]["status"] == "aborted" and logged_tests(run) == []


def test_exit_127_after_the_first_run_means_bad(run, kernel, tmp_path):
    later = (f'if git merge-base --is-ancestor {kernel.culprit} HEAD && [ -e {tmp_path}/ran ]; '
             f'then exit 127; fi; touch {tmp_path}/ran')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=later)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", "git")
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    assert 127 in {b["exit_status"] for b in logged_boots(run)}


def test_a_resumed_hunt_whose_script_is_gone_stops_at_its_first_run(run, kernel, tmp_path):
    """A resumed process may not find the script (another shell, another PATH): 126/127 at a
    rig's first run there stop it as at the hunt's start, not count as the bug showing."""
    stop = (f'if [ ! -e {tmp_path}/stopped ] && [ -e {tmp_path}/ran ]; then '
            f'touch {tmp_path}/stopped; exit 200; fi; touch {tmp_path}/ran')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=stop)
    first = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "-q")
    assert first.exit_code == 1 and len(logged_tests(run)) == 1
    Path(script).unlink()
    resumed = run("resume", "1", "-q")
    assert resumed.exit_code == 1
    assert "--run exited 127 on its first run: most likely a missing" in resumed.stderr
    assert len(logged_tests(run)) == 1  # nothing counted as the bug showing


def first_repeat(tests: list[dict]) -> int:
    """The number of the first test of the commit its predecessor tested."""
    return next(t["seq"] for t, u in zip(tests[1:], tests, strict=False)
                if t["commit_sha"] == u["commit_sha"])


SAME = ("status", "culprit", "confidence", "tests", "boots", "installs", "adapters")


def shown_tests(stderr: str) -> list[int]:
    """The test numbers of the progress lines a command printed."""
    return [int(n) for n in re.findall(r"^\[\s*(\d+)\] ", stderr, re.MULTILINE)]


@pytest.mark.parametrize("stop, said", [("echo 'Kernel panic'; kill -TERM $$", "killed by signal 15"),
                                        ("echo 'Kernel panic'; exit 200", "exit 200")])
def test_a_signal_or_exit_128_stops_the_hunt_and_resume_finishes_it(run, kernel, tmp_path, stop,
                                                                    said):
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--strategy", "bayes"]
    whole = hunt_json(run, *args, "--run", make_script(tmp_path / "w.sh", kernel.culprit, every=2),
                      "--db", "whole.sqlite")
    tests = logged_tests(run, db="whole.sqlite")
    at = first_repeat(tests)
    run_at = sum(t["boots"] for t in tests if t["seq"] < at) + 1  # test at's first boot
    count = (f'n=$(($(cat {tmp_path}/n 2>/dev/null || echo 0) + 1)); echo $n > {tmp_path}/n; '
             f'if [ $n = {run_at} ] && [ ! -e {tmp_path}/stopped ]; then '
             f'touch {tmp_path}/stopped; {stop}; fi')
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=count)
    result = run("bisect", *args, "--run", f"exec {script}", "-q")  # its own signal, not sh's
    assert result.exit_code == 1
    assert result.stderr == (f"error: --run {said}: the hunt stops (exit 128 or more, or a "
                             "signal, asks git bisect run to abort); its output ended: Kernel "
                             "panic; hunt 1 is kept: bisectlab resume 1 goes on\n")
    assert logged_hunts(run)[0]["status"] == "interrupted" and len(logged_tests(run)) == at - 1
    assert worktrees(kernel.repo) == [str(kernel.repo), rig_worktree(kernel.repo, 1, 1)]
    resumed_run = run("resume", "1", "--json")
    resumed = json.loads(resumed_run.stdout)
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}
    assert shown_tests(resumed_run.stderr) == list(range(1, whole["tests"] + 1))
    first, then = resumed_run.stderr.splitlines()[:2]
    logged = f"{at - 1} logged test{'s' if at - 1 != 1 else ''}"
    assert first == (f"hunt 1: {logged} [1]..[{at - 1}], checked against the hunt set up "
                     f"again; new tests from [{at}]")
    assert then.startswith("      Bisecting: ")  # before the first test too
    shape = ("seq", "commit_sha", "rig", "boots", "failed", "installed", "skipped")
    assert [{k: t[k] for k in shape} for t in logged_tests(run)] == [
        {k: t[k] for k in shape} for t in logged_tests(run, db="whole.sqlite")]


TESTS = "SELECT count(*) FROM tests"


@pytest.mark.slow
def test_ctrl_c_stops_a_real_hunt_and_resume_gives_the_uninterrupted_verdict(
        run, kernel, tmp_path, start_cli, wait_for_count):
    pids = f"echo $$ >> {tmp_path}/pids; sleep 0.05"
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=pids)
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script]
    whole = hunt_json(run, *args, "--db", "whole.sqlite")
    proc = start_cli("bisect", *args, "--db", "cut.sqlite", "-q", cwd=tmp_path)
    wait_for_count(tmp_path / "cut.sqlite", TESTS, 10, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "interrupted; hunt 1 is kept: bisectlab resume 1 goes on"
    assert logged_hunts(run, "cut.sqlite")[0]["status"] == "interrupted"
    assert 10 <= len(logged_tests(run, db="cut.sqlite")) < whole["tests"]
    assert worktrees(kernel.repo) == [str(kernel.repo), rig_worktree(kernel.repo, 1, 1)]
    assert all_dead((tmp_path / "pids").read_text().split())
    resumed = json.loads(run("resume", "1", "--db", "cut.sqlite", "--json", "-q").stdout)
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}
    assert worktrees(kernel.repo) == [str(kernel.repo)]


def test_sigterm_stops_a_real_hunt_as_ctrl_c_does(
        run, kernel, tmp_path, start_cli, wait_for_count):
    pids = f"echo $$ >> {tmp_path}/pids; sleep 0.05"
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=pids)
    proc = start_cli("bisect", GOOD, BAD, "--repo", kernel.repo, "--run", script, "-q", cwd=tmp_path)
    wait_for_count(tmp_path / "bisectlab.sqlite", TESTS, 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "interrupted; hunt 1 is kept: bisectlab resume 1 goes on"
    assert logged_hunts(run)[0]["status"] == "interrupted"
    assert all_dead((tmp_path / "pids").read_text().split())


def test_what_a_finished_command_left_running_is_killed(run, kernel, tmp_path):
    daemon = f"sleep 300 & echo $! >> {tmp_path}/daemons"
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=daemon)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", "git")
    assert verdict["culprit"] == kernel.culprit
    daemons = [int(pid) for pid in (tmp_path / "daemons").read_text().split()]
    assert len(daemons) == verdict["boots"] and all_dead(daemons)


def test_an_abort_on_one_rig_lets_the_others_finish_their_command_and_start_no_other(
        run, kernel, tmp_path):
    """rig1's first command aborts once rig2's has begun; rig2's takes a second (a flash is
    not cut in half), and would then boot its commit seven times more."""
    stop = (f'echo "$BISECTLAB_RIG" >> {tmp_path}/runs; if [ "$BISECTLAB_RIG" = rig1 ]; then '
            f'i=0; until grep -q rig2 {tmp_path}/runs || [ $i -gt 600 ]; do sleep 0.05; '
            f'i=$((i + 1)); done; exit 200; fi; sleep 1; echo "$BISECTLAB_RIG" >> {tmp_path}/ends')
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--rigs", "2",
                 "--boots-per-install", "8", "--run", f"{stop}; exit 0", "-q")
    assert result.exit_code == 1 and "exit 200" in result.stderr
    assert sorted((tmp_path / "runs").read_text().split()) == ["rig1", "rig2"]
    assert (tmp_path / "ends").read_text().split() == ["rig2"]
    assert "waiting for rig2 to end the command under way (Ctrl-C kills it)\n" in result.stderr
    assert logged_tests(run) == []


def test_a_stopped_hunt_says_so_in_json_too(run, kernel, tmp_path):
    """A script reading --json gets one object even when the run command stops the hunt."""
    script = make_script(tmp_path / "t.sh", kernel.culprit, before="echo Kernel panic; exit 200")
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--json", "-q")
    assert result.exit_code == 1
    stopped = json.loads(result.stdout)
    assert (stopped["hunt_id"], stopped["status"]) == (1, "interrupted")
    assert stopped["note"].startswith("error: --run exit 200: the hunt stops")
    assert "Kernel panic" in stopped["note"]

def test_a_stopped_rig_starts_no_command_and_checks_out_nothing(tmp_path):
    """What stop_all promises the other rigs' threads (a rig between commands, or inside a
    slow checkout, when another aborts)."""
    history = SimpleNamespace(shas=["0" * 40, "1" * 40])
    rigs = GitRigs(tmp_path, history, f"touch {tmp_path}/ran",  # type: ignore[arg-type]
                   rigs=[Rig("rig1", tmp_path, checked_out=0)])
    rigs.stop_all()
    with pytest.raises(RigStopped):
        rigs._command(rigs.run_command, rigs.rigs[0], 0, 1)
    with pytest.raises(RigStopped):
        rigs._check_out(rigs.rigs[0], 1)
    assert not (tmp_path / "ran").exists() and rigs.running == {}


def test_a_missing_script_on_a_later_rigs_first_run_stops_the_hunt(run, kernel, tmp_path):
    """rig1 passes first; rig2's first run, a moment later, finds no script."""
    missing = f'[ "$BISECTLAB_RIG" = rig2 ] && {{ sleep 1; {tmp_path}/missing.sh; exit; }}; exit 0'
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--rigs", "2",
                 "--run", missing, "-q")
    assert result.exit_code == 1
    assert "exited 127 on its first run: most likely a missing" in result.stderr
    assert logged_hunts(run)[0]["status"] == "interrupted"


def test_a_missing_install_script_stops_the_hunt_instead_of_skipping_every_commit(run, kernel,
                                                                                   tmp_path):
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                 "--install", str(tmp_path / "flash.sh"), "-q")
    assert result.exit_code == 2  # nothing logged: bad input, not a hunt to resume
    assert result.stderr.startswith("error: --install exited 127 on its first run: most likely a "
                                    "missing or non-executable script")
    assert result.stderr.endswith("; nothing was logged: hunt 1 ended aborted (run the hunt "
                                  "again with a command that runs)\n")
    assert logged_tests(run) == []
    assert logged_hunts(run)[0]["status"] == "aborted"
    assert worktrees(kernel.repo) == [str(kernel.repo)]  # resume would run it again: none kept


@pytest.mark.parametrize("lost", ["", "worktree", "checkout"])
def test_a_resumed_hunt_boots_the_kernels_its_rigs_built_or_builds_them_again(run, kernel,
                                                                              tmp_path, lost):
    """The install builds a file in the worktree that the run needs. A hunt stopped at a
    repeat of a commit keeps its worktree, so resume boots that build; if the worktree is
    gone by then, or half checked out (a tracked file not the commit's: ``lost``), resume
    installs the commit again. Either way the verdict and the boots are the uninterrupted
    hunt's."""
    build = 'git rev-parse HEAD > built'
    needs = '[ "$(cat built 2>/dev/null)" = "$(git rev-parse HEAD)" ] || exit 3'
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--install", build]
    whole_script = make_script(tmp_path / "w.sh", kernel.culprit, every=2, before=needs)
    whole = hunt_json(run, *args, "--run", whole_script, "--db", "whole.sqlite")
    tests = logged_tests(run, db="whole.sqlite")
    at = first_repeat(tests)
    run_at = sum(t["boots"] for t in tests if t["seq"] < at) + 1
    count = (f'n=$(($(cat {tmp_path}/n 2>/dev/null || echo 0) + 1)); echo $n > {tmp_path}/n; '
             f'if [ $n = {run_at} ] && [ ! -e {tmp_path}/stopped ]; then '
             f'touch {tmp_path}/stopped; exit 200; fi; {needs}')
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=count)
    assert run("bisect", *args, "--run", script, "-q").exit_code == 1
    if lost == "worktree":
        shutil.rmtree(rig_worktree(kernel.repo, 1, 1))
    elif lost == "checkout":
        tracked = git(Path(rig_worktree(kernel.repo, 1, 1)), "ls-files").split()[0]
        (Path(rig_worktree(kernel.repo, 1, 1)) / tracked).write_text("half checked out\n")
    resumed = json.loads(run("resume", "1", "--json", "-q").stdout)
    assert {k: resumed[k] for k in ("status", "culprit", "boots")} == {
        k: whole[k] for k in ("status", "culprit", "boots")}
    assert resumed["installs"] == whole["installs"] + bool(lost)
    assert 3 not in {b["exit_status"] for b in logged_boots(run)}
    assert worktrees(kernel.repo) == [str(kernel.repo)]



def test_a_kept_hunts_worktrees_are_not_taken_by_the_same_number_in_another_database(
        run, kernel, tmp_path):
    """Hunt 1 of a.sqlite stops and keeps its worktree; hunt 1 of b.sqlite, run to its verdict
    meanwhile, works in hunt-1.2 and leaves hunt-1 alone, which a's resume boots again."""
    stop_once = (f'[ -e {tmp_path}/stopped ] || {{ touch {tmp_path}/stopped; exit 200; }}; '
                 f'pwd >> {tmp_path}/where')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=stop_once)
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "-q"]
    assert run("bisect", *args, "--db", "a.sqlite").exit_code == 1
    kept = rig_worktree(kernel.repo, 1, 1)
    assert Path(kept).exists()
    b = hunt_json(run, *args[:-1], "--db", "b.sqlite")
    assert b["culprit"] == kernel.culprit
    where = set((tmp_path / "where").read_text().split())
    assert where == {kept.replace("hunt-1", "hunt-1.2")} and Path(kept).exists()
    (tmp_path / "where").unlink()
    resumed = json.loads(run("resume", "1", "--db", "a.sqlite", "--json", "-q").stdout)
    assert resumed["culprit"] == kernel.culprit
    assert set((tmp_path / "where").read_text().split()) == {kept}
    assert worktrees(kernel.repo) == [str(kernel.repo)]


def test_a_resumed_hunt_works_in_the_folder_it_kept(tmp_path):
    """Hunt 1 of database a keeps hunt-1, hunt 1 of b keeps hunt-1.2; a finishes (its folder
    goes); b, resumed, takes its own hunt-1.2 back, not the free hunt-1, and a third database's
    hunt 1 takes hunt-1."""
    def kept(owner: str) -> Path:
        folder, lock = claim_folder(tmp_path, "hunt-1", owner)
        folder.mkdir(exist_ok=True)
        lock.close()  # the hunt stopped: its process let go
        return folder

    assert kept("a").name == "hunt-1" and kept("b").name == "hunt-1.2"
    (tmp_path / "hunt-1").rmdir()
    assert kept("b").name == "hunt-1.2"
    assert kept("c").name == "hunt-1"
    folder, held = claim_folder(tmp_path, "hunt-1", "b")
    assert folder.name == "hunt-1.2"
    assert claim_folder(tmp_path, "hunt-1", "b")[0].name == "hunt-1.3"  # 1.2 held: the next free
    held.close()

def test_a_hunt_goes_on_with_its_commits_when_its_refs_move(run, kernel, tmp_path):
    """As git bisect keeps the commits, not the branch names: a resumed hunt whose second GOOD
    branch moved, and a manual hunt whose BAD branch got a new commit, go on with the range they
    started with."""
    side = git(kernel.repo, "rev-parse", f"{kernel.merge}^1")
    git(kernel.repo, "branch", "side", side)
    git(kernel.repo, "branch", "tip", BAD)
    candidates = set(kernel.candidates(GOOD, "side"))  # the range as it started
    stop_once = f'[ -e {tmp_path}/stopped ] || {{ touch {tmp_path}/stopped; exit 200; }}'
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=stop_once)
    assert run("bisect", GOOD, "side", BAD, "--repo", str(kernel.repo), "--run", script,
               "-q").exit_code == 1
    git(kernel.repo, "branch", "-f", "side", f"{side}^")
    resumed = json.loads(run("resume", "1", "--json", "-q").stdout)
    assert resumed["culprit"] == kernel.culprit
    assert {t["commit_sha"] for t in logged_tests(run)} <= candidates
    assert set(kernel.candidates(GOOD, "side")) != candidates  # side did move
    assert run("bisect", GOOD, "tip", "--repo", str(kernel.repo), "--db", "m.sqlite").exit_code == 0
    git(kernel.repo, "checkout", "-q", "tip")
    git(kernel.repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty",
        "-m", "later work on the branch")
    assert run("good", "--db", "m.sqlite").exit_code == 0


def logged_test(rig: str, attempts: list[int], *, installed: bool = True,
                skipped: bool = False) -> dict:
    """A test as the store gives it back to a resumed hunt."""
    boots = [{"attempt": a, "seed": None, "bricked": False, "stray_write": False,
              "adapter_serial": None} for a in attempts]
    return {"rig": rig, "boot_rows": boots, "lab_minutes": 0.0, "installed": installed,
            "skipped": skipped}


def test_a_resumed_rig_numbers_boots_after_the_highest_logged_and_keeps_what_it_installed():
    """Two rigs booted commit 7 at once (boots 1, 2 on rig1; 3 on rig2) and the round was cut
    after rig2's test was logged: the next round's boots of 7 are numbered from 4. A run's 125
    leaves its commit installed; a failed install leaves none. Neither rig has run a command in this process:
    126/127 at its first run still mean a missing script."""
    rigs = GitRigs(Path("/nonexistent"), None, "true",  # type: ignore[arg-type]
                   rigs=[Rig("rig1", Path("/x/rig1")), Rig("rig2", Path("/x/rig2"))])
    rigs.restore(7, 2, rigs.rigs[1], logged_test("rig2", [3]))
    assert rigs._first_attempts([(7, 2, rigs.rigs[0]), (7, 1, rigs.rigs[1])]) == [4, 6]
    rigs.restore(8, 1, rigs.rigs[0], logged_test("rig1", [1], skipped=True))
    rigs.restore(9, 1, rigs.rigs[1], logged_test("rig2", [], skipped=True))
    assert [r.installed for r in rigs.rigs] == [8, None]
    assert [(r.ran, r.restored) for r in rigs.rigs] == [(False, True), (False, True)]



def test_a_round_cut_short_by_one_rig_logs_the_test_another_rig_had_finished(monkeypatch):
    """rig1 aborts while rig2's test, which destroyed an adapter, is done but not yet logged
    (both ended at once, the abort seen first): rig2's test is logged all the same."""
    import bisectlab.rigs
    from bisectlab.lab import TestResult
    from bisectlab.rigs import RigAbort

    rigs = GitRigs(Path("/nonexistent"), None, "true",  # type: ignore[arg-type]
                   rigs=[Rig("rig1", Path("/x/rig1")), Rig("rig2", Path("/x/rig2"))])
    finished = TestResult(8, "rig2", (), ("adapter-2",), 0.5, True)

    def test(commit, boots, rig, first_attempt):
        if rig.name == "rig1":
            raise RigAbort("--run exited 255")
        return finished

    def abort_seen_first(futures):
        wait(futures)
        yield from sorted(futures, key=lambda future: future.exception() is None)

    monkeypatch.setattr(rigs, "_test", test)
    monkeypatch.setattr(bisectlab.rigs, "as_completed", abort_seen_first)
    logged = []
    with pytest.raises(RigAbort):
        rigs.run_round([(7, 1, rigs.rigs[0]), (8, 1, rigs.rigs[1])],
                       lambda i, result: logged.append((i, result)))
    assert logged == [(1, finished)]


def test_a_resumed_round_gives_each_rig_the_spare_it_took_when_its_adapter_died():
    """Both rigs destroyed their adapters in one round, rig2 first: rig2 took spare 003 and rig1
    004, as their next boots show. The log is in round order (rig1's test first), so handing out
    spares in log order would fit rig1 with 003, the adapter rig2 destroys next."""
    box = AdapterBox.of(6, 5, model="adapter")
    rigs = GitRigs(Path("/nonexistent"), None, "true", box=box,  # type: ignore[arg-type]
                   rigs=[Rig("rig1", Path("/x/rig1")), Rig("rig2", Path("/x/rig2"))])
    for rig in rigs.rigs:
        rig.adapter = box.take()
    serial = box.serial

    def test(rig: str, adapter: int, destroyed: bool) -> dict:
        boot = {"attempt": 1, "seed": None, "bricked": destroyed, "stray_write": False,
                "adapter_serial": serial(adapter)}
        return {"rig": rig, "boot_rows": [boot], "lab_minutes": 1.0, "installed": True,
                "skipped": False, "destroyed_serials": serial(adapter) if destroyed else ""}

    for commit, logged in enumerate([test("rig1", 1, True), test("rig2", 2, True),
                                     test("rig1", 4, False), test("rig2", 3, True)]):
        rigs.restore(commit, 1, rigs.rigs[commit % 2], logged)
    assert [r.adapter for r in rigs.rigs] == [serial(4), serial(5)]
    assert rigs.adapters_left == 3

# rigs at once, output, the database -------------------------------------------------------------


def test_a_commands_output_is_kept_as_text_any_database_takes():
    """Binary output (a console capture) has NUL bytes, which PostgreSQL's text refuses."""
    import tempfile

    from bisectlab.rigs import tail

    with tempfile.TemporaryFile() as out:
        out.write(b"boot log\x00binary\xff end")
        assert tail(out) == "boot log\ufffdbinary\ufffd end"


def test_four_rigs_run_four_commands_at_once(run, kernel, tmp_path):
    """Each command of the first round waits (up to a minute) until four have started."""
    barrier = (f'touch {tmp_path}/started.$BISECTLAB_RIG; i=0; '
               f'while [ $(ls {tmp_path} | grep -c "^started") -lt 4 ] && [ $i -lt 1200 ]; '
               f'do sleep 0.05; i=$((i + 1)); done; '
               f'echo "$(ls {tmp_path} | grep -c "^started") running"')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=barrier)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--rigs", "4")
    assert verdict["culprit"] == kernel.culprit
    tests = logged_tests(run)
    first = {t["id"]: t["rig"] for t in tests if t["seq"] <= 4}
    assert sorted(first.values()) == ["rig1", "rig2", "rig3", "rig4"]
    outputs = {b["output"] for b in logged_boots(run) if b["test_id"] in first}
    assert outputs == {"4 running\n"}


def test_megabytes_of_output_keep_only_a_bounded_tail(run, kernel, tmp_path):
    loud = ("head -c 3000000 /dev/zero | tr '\\0' x; echo; "
            'echo "END $BISECTLAB_COMMIT" >&2')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=loud)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", "git", "--timeout", "300")
    assert verdict["culprit"] == kernel.culprit
    tests = {t["id"]: t["commit_sha"] for t in logged_tests(run)}
    boots = logged_boots(run)
    assert len(boots) == verdict["boots"] and None not in {b["exit_status"] for b in boots}
    for boot in boots:
        whole = "x" * 3_000_000 + "\n" + f"END {tests[boot['test_id']]}\n"
        assert boot["output"] == whole[-8192:]
    stored = sum(p.stat().st_size for p in tmp_path.glob("bisectlab.sqlite*"))
    assert stored < 2_000_000


def test_query_boots_shows_each_boots_status_time_and_output(run, kernel, tmp_path):
    assert run("bisect", GOOD, BAD, "--history", str(kernel.scenario), "--strategy", "git",
               "--seed", "1", "-q").exit_code == 0  # hunt 1, simulated
    script = tmp_path / "t.sh"
    script.write_text(f"""#!/bin/sh
echo "booting $BISECTLAB_COMMIT boot $BISECTLAB_BOOT"
echo "on $BISECTLAB_RIG" >&2
if git merge-base --is-ancestor {kernel.culprit} HEAD; then
    echo "e1000e: The NVM Checksum Is Not Valid"; exit 3
fi
echo "link up"
""")
    script.chmod(0o755)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", str(script),
                        "--strategy", "git")
    tests = {t["id"]: t["commit_sha"] for t in logged_tests(run, 2)}
    boots = logged_boots(run, 2)
    assert len(boots) == verdict["boots"] == len(tests)
    for boot in boots:
        sha = tests[boot["test_id"]]
        bad = is_ancestor(kernel.repo, kernel.culprit, sha)
        assert (boot["exit_status"], boot["bricked"]) == ((3, True) if bad else (0, False))
        assert boot["output"] == (f"booting {sha} boot 1\non rig1\n"
                                  + ("e1000e: The NVM Checksum Is Not Valid\n" if bad else "link up\n"))
        assert isinstance(boot["seconds"], float) and boot["seconds"] > 0
    assert {b["output"] for b in logged_boots(run, 1)} == {None}  # simulated: no console


def test_a_bounded_box_of_adapters_on_real_rigs(run, kernel, tmp_path):
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--adapters", "2"]
    git_hunt = run("bisect", *args, "--strategy", "git", "--json", "-q")
    assert git_hunt.exit_code == 1
    verdict = json.loads(git_hunt.stdout)
    assert (verdict["status"], verdict["adapters"]) == ("aborted", 2)
    assert verdict["note"].startswith("out of adapters")
    planned = hunt_json(run, *args, "--strategy", "bayes")
    assert (planned["status"], planned["culprit"]) == ("found", kernel.culprit)
    assert planned["adapters"] <= 2
    adapters = json.loads(run("query", "adapters", "--hunt", "2", "--format", "json").stdout)
    assert len(adapters) == 2
    destroyed = sorted(a["destroyed_by_test_id"] for a in adapters if a["state"] == "destroyed")
    assert destroyed == [t["id"] for t in logged_tests(run, 2) if t["failed"]]
    assert len(destroyed) == planned["adapters"]


# manual hunts, transcripts ----------------------------------------------------------------------

WORDS = {(False, False): ("good", "old"), (True, False): ("bad", "new"), (False, True): ("skip",)}


def test_a_manual_hunt_asks_for_its_boots_and_an_outcome_without_boots_took_them(run, kernel):
    start = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--boots-per-install", "3")
    assert start.stdout.splitlines()[0].endswith(
        "on rig1: boot it up to 3 times, stopping at the first failure")
    assert run("good").exit_code == 0
    assert run("bad", "--boots", "2").exit_code == 0
    assert [(t["boots"], t["failed"]) for t in logged_tests(run)] == [(3, False), (2, True)]


def test_with_two_manual_hunts_waiting_an_outcome_must_name_its_hunt(run, kernel):
    """An outcome typed for one hunt never lands in another: without --hunt it is refused."""
    assert run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "-q").exit_code == 0
    assert run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "-q").exit_code == 0
    for step in (("good",), ("bad", "--boots", "1"), ("status",)):
        refused = run(*step)
        assert (refused.exit_code, refused.stderr) == (
            2, "error: 2 manual hunts are waiting (hunts 1, 2): say which with --hunt N\n")
    assert logged_tests(run, 1) == [] and logged_tests(run, 2) == []
    assert run("good", "--hunt", "1", "-q").exit_code == 0
    assert len(logged_tests(run, 1)) == 1 and logged_tests(run, 2) == []
    listed = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert [h["status"] for h in listed] == ["waiting", "waiting"]  # no process runs them


def test_a_skip_with_boots_is_refused_rather_than_logged_without_them(run, kernel):
    assert run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "-q").exit_code == 0
    refused = run("skip", "--boots", "3")
    assert (refused.exit_code, refused.stderr) == (
        2, "error: skip takes no --boots: a commit that could not be tested is logged without "
           "boots\n")
    assert logged_tests(run) == []
    assert run("skip", "-q").exit_code == 0
    assert [(t["skipped"], t["boots"]) for t in logged_tests(run)] == [(True, 0)]


def test_a_manual_hunt_takes_the_commit_as_any_revision_git_names(run, kernel):
    """good/bad/skip COMMIT in a repository take what git rev-parse takes, as GOOD and BAD do:
    a branch, BAD~1; a revision outside the range is one error line."""
    start = json.loads(run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--json").stdout)
    waiting = start["test"][0]["commit"]
    git(kernel.repo, "branch", "under-test", waiting)
    after = git(kernel.repo, "commit-tree", f"{BAD}^{{tree}}", "-p", BAD, "-m", "after BAD")
    git(kernel.repo, "branch", "after-bad", after.strip())
    outside = run("good", "after-bad~0")
    assert (outside.exit_code, outside.stderr) == (
        2, f"error: 'after-bad~0' ({after[:12]}) is not in the hunt's range "
           f"{git(kernel.repo, 'rev-parse', GOOD)[:12]}..{git(kernel.repo, 'rev-parse', BAD)[:12]}\n")
    assert run("good", "under-test").exit_code == 0
    assert [t["commit_sha"] for t in logged_tests(run)] == [waiting]
    unknown = run("good", "no-such-branch")
    assert (unknown.exit_code, unknown.stderr.count("\n")) == (2, 1)
    assert "unknown ref 'no-such-branch'" in unknown.stderr
    long = run("good", "no-such-branch-" + "x" * 300)
    assert (long.exit_code, long.stderr.count("\n")) == (2, 1) and len(long.stderr) < 300


@pytest.mark.slow
def test_a_manual_hunt_step_by_step_gives_the_automatic_hunts_verdict(run, kernel, tmp_path):
    """Each outcome of an automatic hunt typed back by hand, one command per step (old/new on
    every third step, status on the twentieth)."""
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=6)
    auto = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--db", "auto.db")
    tests = logged_tests(run, db="auto.db")
    assert len(tests) >= 40 and max(t["boots"] for t in tests) > 1
    step = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--db", "hand.db", "--json")
    for k, test in enumerate(tests):
        waiting = json.loads(step.stdout)
        assert waiting["status"] == "waiting" and waiting["hunt"] == 1
        asked = waiting["boots"]  # the bug stops a test early, else every boot asked for is run
        assert waiting["test"] == [{"commit": test["commit_sha"], "rig": "rig1",
                                    "subject": test["commit_subject"], "boots": asked}]
        assert asked == test["boots"] or (test["failed"] and asked > test["boots"])
        if k == 20:
            status = json.loads(run("status", "--db", "hand.db", "--json").stdout)
            assert (status["tests"], status["test_next"], status["boots"]) == (
                20, waiting["test_next"], waiting["boots"])
            assert waiting["test"] == waiting["test_next"]  # the older name, kept for scripts
        words = WORDS[test["failed"], test["skipped"]]
        verb = words[k % 3 == 2 and len(words) > 1]
        step = run(verb, test["commit_sha"][:10], "--boots", str(test["boots"]), "--db", "hand.db",
                   "--json")
        assert step.exit_code == 0, step.output
        assert shown_tests(step.stderr) == [k + 1]
    verdict = json.loads(step.stdout)
    same = ("status", "culprit", "confidence", "tests", "boots", "adapters")
    assert {k: verdict[k] for k in same} == {k: auto[k] for k in same}
    assert verdict["culprit"] == kernel.culprit


def test_a_transcript_replays_to_the_same_log_and_verdict(run, kernel, tmp_path):
    skip = [c for c in kernel.candidates(GOOD) if c.startswith(("0", "1", "2"))
            and c not in (kernel.culprit, git(kernel.repo, "rev-parse", f"{kernel.culprit}^"))]
    (tmp_path / "skip").write_text("\n".join(skip) + "\n")
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2,
                         before=f'grep -qx "$BISECTLAB_COMMIT" {tmp_path}/skip && '
                                '{ echo "no firmware for this one"; exit 125; }')
    original = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--rigs", "2")
    log = run("log", "1").stdout
    assert " skip " in log and "--rig rig2" in log and log.count("\nbisectlab ") == 1 + original[
        "tests"]
    (tmp_path / "hunt.log").write_text(log)
    replayed = run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite", "--json")
    assert replayed.exit_code == 0, replayed.output
    verdict = json.loads(replayed.stdout)
    same = ("status", "culprit", "confidence", "tests")
    assert {k: verdict[k] for k in same} == {k: original[k] for k in same}
    assert run("log", "1", "--db", "other.sqlite").stdout == log


def test_a_simulated_hunts_transcript_replays_to_its_costs_lab_time_too(run, tmp_path):
    """Typed back, a simulated hunt's outcomes are priced at the minutes its transcript names:
    the same installs and lab hours, on two rigs whose rounds last as long as their longest
    test."""
    original = hunt_json(run, "v2.6.26", "v2.6.27-rc8", "--seed", "3", "--rigs", "2")
    (tmp_path / "hunt.log").write_text(run("log", "1").stdout)
    replayed = run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite", "--json")
    assert replayed.exit_code == 0, replayed.output
    verdict = json.loads(replayed.stdout)
    same = ("status", "culprit", "confidence", "tests", "boots", "installs", "adapters",
            "lab_hours")
    assert {k: verdict[k] for k in same} == {k: original[k] for k in same}
    assert original["lab_hours"] > 0 and original["installs"] < original["tests"]
    minutes = [t["lab_minutes"] for t in logged_tests(run, db="other.sqlite")]
    assert minutes == [t["lab_minutes"] for t in logged_tests(run)]


def test_a_manual_hunt_on_rigs_where_the_bug_cannot_show_ends_saying_so(run):
    """Typed by hand, step by step, on x86_64: the last step names the range, as git abbreviates
    its shas, and no true culprit."""
    assert run("bisect", "v2.6.26", "v2.6.27-rc8", "--manual", "--arch", "x86_64", "--strategy",
               "git").exit_code == 0
    for _ in range(20):
        step = run("good")
        if "true culprit" in step.stdout:
            break
    assert ("  true culprit none: the simulated bug has no single first bad commit in "
            "63d09a859637..f2b7ab812fee on x86_64") in step.stdout.splitlines()


def test_a_transcript_keeps_the_rigs_a_simulated_hunts_true_culprit_is_for(run, tmp_path):
    """On x86_64 the 2.6.27 bug never shows: replayed, the hunt is not judged against i386's
    culprit (the start line carries --arch, which a manual hunt on a scenario takes)."""
    original = hunt_json(run, "v2.6.26", "v2.6.27-rc8", "--seed", "1", "--arch", "x86_64",
                         "--strategy", "git")
    log = run("log", "1").stdout
    assert " --arch x86_64 " in log.splitlines()[1]
    (tmp_path / "hunt.log").write_text(log)
    replayed = run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite", "--json")
    assert replayed.exit_code == 0, replayed.output
    verdict = json.loads(replayed.stdout)
    assert (verdict["culprit"], verdict["true_culprit"], verdict["correct"]) == (
        original["culprit"], None, None)



@pytest.mark.parametrize("change", ["another commit", "another rig", "an unknown ref"])
def test_a_transcript_that_does_not_fit_its_hunt_is_one_line_and_writes_nothing(run, tmp_path,
                                                                              change):
    """A line naming a test the hunt never asks for stopped the replay there, silently (exit 0,
    the rest dropped), and left a half-rebuilt hunt in the database."""
    assert hunt_json(run, "v2.6.26", "v2.6.27-rc8", "--seed", "1", "--strategy", "git")["tests"]
    lines = run("log", "1").stdout.splitlines()
    tests = [i for i, line in enumerate(lines) if line.startswith("bisectlab ") and
             line.split()[1] in ("good", "bad", "skip")]
    words = lines[tests[3]].split()
    words[2] = {"another commit": lines[tests[5]].split()[2], "another rig": words[2],
                "an unknown ref": "deadbeefdead"}[change]
    if change == "another rig":
        words += ["--rig", "rig7"]
    lines[tests[3]] = " ".join(words)
    (tmp_path / "hunt.log").write_text("\n".join(lines) + "\n")
    result = run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite")
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert ("unknown ref 'deadbeefdead'" in line if change == "an unknown ref"
            else "fits no test the hunt asked for (waiting: " in line), line
    assert not (tmp_path / "other.sqlite").exists()


def test_a_transcript_of_a_hunt_on_a_history_file_comes_back_line_for_line(run, tmp_path):
    """The rebuilt (manual) hunt's header names the history as the simulated one's did, not
    by the file's path; and a test of one boot is asked for as such."""
    assert run("history", "generate", "--commits", "300", "--seed", "2", "--bug", "rate",
               "--detect", "0.5", "-o", "k3.toml").exit_code == 0
    assert hunt_json(run, "v1.0", "v1.1", "--history", "k3.toml", "--seed", "1", "--strategy",
                     "git")["status"] == "found"
    log = run("log", "1").stdout
    (tmp_path / "hunt.log").write_text(log)
    assert run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite").exit_code == 0
    assert run("log", "1", "--db", "other.sqlite").stdout == log
    start = run("bisect", "v1.0", "v1.1", "--history", "k3.toml", "--manual", "--strategy", "git",
                "--db", "manual.sqlite")
    assert start.stdout.splitlines()[0].endswith(" on rig1: boot it once")

def test_a_stopped_hunts_transcript_replays_to_the_same_log(run, kernel, tmp_path):
    stop = (f'n=$(($(cat {tmp_path}/n 2>/dev/null || echo 0) + 1)); echo $n > {tmp_path}/n; '
            f'[ $n = 6 ] && exit 200')
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=stop)
    assert run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
               "-q").exit_code == 1
    log = run("log", "1").stdout
    assert log.splitlines()[0].endswith(": unfinished")
    (tmp_path / "hunt.log").write_text(log)
    assert run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite").exit_code == 0
    assert run("log", "1", "--db", "other.sqlite").stdout == log


def test_a_transcript_keeps_strategy_options_whose_values_hold_commas(run, kernel, tmp_path):
    start = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--strategy", "bayes:caution=2",
                "--detect-prior", "beta(2,38)", "--weight", "drivers=5;kernel=2", "--seed", "4")
    assert start.exit_code == 0 and start.stdout.startswith("hunt 1: test ")
    log = run("log", "1").stdout
    assert log.splitlines()[1] == (
        f"bisectlab bisect {GOOD} {BAD} --repo {kernel.repo} --strategy bayes:caution=2 "
        "--detect-prior 'beta(2,38)' --weight 'drivers=5;kernel=2' --rigs 1 --seed 4 "
        "--install-minutes 30 --boot-minutes 3 --swap-minutes 10")
    (tmp_path / "hunt.log").write_text(log)
    replayed = run("replay", "log", str(tmp_path / "hunt.log"), "--db", "other.sqlite")
    goes_on = start.stdout.replace("[--boots N] (", "[--boots N] --db other.sqlite (")
    assert goes_on != start.stdout and (replayed.exit_code, replayed.stdout) == (0, goes_on)
    assert run("log", "1", "--db", "other.sqlite").stdout == log


def test_an_outcome_names_the_waiting_test_it_is_for(run, kernel):
    start = json.loads(run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--rigs", "2",
                           "--json").stdout)
    first, second = (t["commit"] for t in start["test"])
    waiting = f"waiting: {first[:12]} on rig1, {second[:12]} on rig2"
    for args, message in [
        (("good",), f"2 tests are waiting ({waiting.split(': ')[1]}): name the commit"),
        (("good", "--rig", "rig9"), f"no test waits on rig9 ({waiting})"),
        (("good", first[:10], "--rig", "rig2"), f"{first[:12]} is not waiting on rig2 ({waiting})"),
        (("bad", GOOD), f"{git(kernel.repo, 'rev-parse', GOOD)[:12]} is not waiting to be tested "
                        f"({waiting})"),
    ]:
        result = run(*args)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n"), args
    assert logged_tests(run) == []
    resumed = run("resume", "1")  # it waits for its engineer, not for a process
    assert (resumed.exit_code, resumed.stderr) == (2, "error: hunt 1 is a manual hunt: record its "
                                                      "tests with bisectlab good/bad/skip, see "
                                                      "them with bisectlab status\n")
    assert run("good", "--rig", "rig2").exit_code == 0  # the one test waiting on rig2
    assert [(t["commit_sha"], t["rig"]) for t in logged_tests(run)] == [(second, "rig2")]


def test_one_commit_waiting_on_two_rigs_needs_the_rig_named():
    """Each of the two tests of one commit asks its own boots: an outcome must say which it is."""
    from bisectlab.cli.manual import _pending_test

    class Named:  # a setup and its history at once
        shas = ["a" * 40, "b" * 40]
        history = property(lambda self: self)

        def resolve(self, ref: str) -> int:
            return self.shas.index(ref)

    pending = [(1, "rig1"), (1, "rig2")]
    for commit in (None, "b" * 40):
        with pytest.raises(BisectlabError, match=r"^bbbbbbbbbbbb waits on rig1, rig2: say which "
                                                 r"with --rig$"):
            _pending_test(Named(), commit, pending, None)
    assert _pending_test(Named(), None, pending, "rig2") == (1, "rig2")
    assert _pending_test(Named(), "b" * 40, [(0, "rig1"), (1, "rig2")], None) == (1, "rig2")


def test_a_manual_hunt_on_two_rigs_takes_the_second_rigs_outcome_first(run, kernel):
    start = json.loads(run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--rigs", "2",
                           "--json").stdout)
    first, second = start["test"]
    assert (first["rig"], second["rig"]) == ("rig1", "rig2")
    good = run("good", "--rig", "rig2", "--json")
    assert [t["commit"] for t in json.loads(good.stdout)["test"]] == [first["commit"]]
    after = run("bad", "--rig", "rig1", "--json")
    assert after.exit_code == 0, after.output
    assert (shown_tests(good.stderr), shown_tests(after.stderr)) == ([], [1, 2])
    assert json.loads(after.stdout)["status"] == "waiting"
    assert [(t["seq"], t["rig"], t["failed"]) for t in logged_tests(run)] == [
        (1, "rig1", True), (2, "rig2", False)]


def test_a_round_stopped_after_its_later_test_was_logged_resumes(run, kernel, tmp_path):
    """rig1's command stops the hunt once rig2's test of the same round is logged."""
    logged = (f'{sys.executable} -c "import sqlite3, sys; sys.exit(sqlite3.connect(\'{tmp_path}/'
              f'bisectlab.sqlite\').execute(\'SELECT count(*) FROM tests\').fetchone()[0] < 1)"')
    stop = (f'if [ "$BISECTLAB_RIG" = rig1 ] && [ ! -e {tmp_path}/stopped ]; then '
            f'touch {tmp_path}/stopped; i=0; until {logged} || [ $i -gt 600 ]; do sleep 0.1; '
            f'i=$((i + 1)); done; exit 200; fi')
    script = make_script(tmp_path / "t.sh", kernel.culprit, every=2, before=stop)
    args = [GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "--rigs", "2"]
    assert run("bisect", *args, "-q").exit_code == 1
    assert [t["seq"] for t in logged_tests(run)] == [2]
    resumed = run("resume", "1", "--json", "-q")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["culprit"] == kernel.culprit
    tests = logged_tests(run)
    assert [t["seq"] for t in tests] == list(range(1, len(tests) + 1))


# bad input ---------------------------------------------------------------------------------------

BAD_INPUT = {
    "not a repository": (lambda k, t: [GOOD, BAD, "--repo", str(t / "plain")],
                         "{plain} is not a git repository"),
    "a bare repository": (lambda k, t: [GOOD, BAD, "--repo", str(t / "bare.git")],
                          "{bare} is a bare repository (give a clone with a work tree)"),
    "an unknown ref": (lambda k, t: ["v0.9", BAD, "--repo", str(k.repo)],
                       "unknown ref 'v0.9' in {repo} (not a commit, branch, tag or revision)"),
    "an ambiguous ref": (lambda k, t: ["twice", BAD, "--repo", str(k.repo)],
                         "ambiguous ref 'twice' in {repo}: warning: refname 'twice' is ambiguous."),
    "GOOD not an ancestor of BAD": (
        lambda k, t: [BAD, GOOD, "--repo", str(k.repo)],
        "GOOD v1.1 ({v11}) is not an ancestor of BAD v1.0 ({v10})"),
    "GOOD is BAD": (lambda k, t: [BAD, BAD, "--repo", str(k.repo)],
                    "GOOD v1.1 and BAD v1.1 are the same commit ({v11})"),
    "worktrees under a file": (
        lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--worktrees", str(t / "plain" / "f" / "x")],
        "cannot make worktrees under {plain}/f/x: {plain}/f is not a writable directory"),
    "worktrees where nothing can be made": (
        lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--worktrees", "/proc/bisectlab-rigs"],
        "cannot make worktrees under /proc/bisectlab-rigs: /proc is not a writable directory"),
    "an empty --run": (lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--run", ""],
                       "--run is empty: give the command that tests a commit"),
    "a blank --run": (lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--run", "  "],
                      "--run is empty: give the command that tests a commit"),
    "an empty --install": (lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--install", ""],
                           "--install is empty: give the command that installs a commit, or "
                           "leave --install out"),
    "--repo with --history": (
        lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--history", str(k.scenario)],
        "--repo and --history do not go together: a real hunt's history comes from its "
        "repository"),
    "--run without --repo": (lambda k, t: [GOOD, BAD, "--run", "true"],
                             "--run needs --repo: commands run on worktrees of a repository"),
    "--arch on real rigs": (
        lambda k, t: [GOOD, BAD, "--repo", str(k.repo), "--run", "true", "--arch", "x86_64"],
        "--arch is the simulated lab's: a real hunt's rigs are what they are"),
    "a ref whose name is not UTF-8": (
        lambda k, t: ["\udce9t", BAD, "--repo", str(k.repo)],
        "text that is not UTF-8 cannot be logged: '\\udce9t'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_nothing_logged_is_lost(run, kernel, tmp_path, case):
    assert run("bisect", GOOD, BAD, "--history", str(kernel.scenario), "--strategy", "git",
               "--seed", "1", "-q").exit_code == 0
    before = (logged_hunts(run), logged_tests(run))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "f").write_text("a file\n")
    git(tmp_path, "clone", "-q", "--bare", str(kernel.repo), "bare.git")
    git(kernel.repo, "tag", "twice", GOOD)
    git(kernel.repo, "branch", "twice", "v1.1-rc1")
    subprocess.run([b"git", b"tag", b"\xe9t", GOOD.encode()], cwd=kernel.repo, check=True)
    args, message = BAD_INPUT[case]
    run_flag = [] if "--run" in args(kernel, tmp_path) else ["--run", "true"]
    result = run("bisect", *args(kernel, tmp_path), *run_flag)
    expected = message.format(plain=tmp_path / "plain", bare=tmp_path / "bare.git",
                              repo=kernel.repo, v10=git(kernel.repo, "rev-parse", GOOD)[:12],
                              v11=git(kernel.repo, "rev-parse", BAD)[:12])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {expected}\n")
    assert (logged_hunts(run), logged_tests(run)) == before
    assert not (kernel.repo / ".git" / "bisectlab").exists()
    assert worktrees(kernel.repo) == [str(kernel.repo)]


def test_two_hunts_at_once_in_one_repository_keep_to_their_own_worktrees(
        run, kernel, tmp_path, start_cli, wait_for_count):
    other = kernel.candidates(GOOD, bad=kernel.merge)[-1]  # an older culprit, for the second hunt
    assert other != kernel.culprit and is_ancestor(kernel.repo, other, kernel.merge)
    slow = make_script(tmp_path / "a.sh", kernel.culprit, before="sleep 0.2")
    first = start_cli("bisect", GOOD, BAD, "--repo", kernel.repo, "--run", slow, "--strategy",
                      "git", "--db", "a.sqlite", "--json", "-q", cwd=tmp_path, stderr=None)
    wait_for_count(tmp_path / "a.sqlite", TESTS, 1, first)
    second = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--strategy", "git", "--run",
                       make_script(tmp_path / "b.sh", other, before="sleep 0.2"), "--db", "b.sqlite")
    out, _ = first.communicate(timeout=300)
    assert (json.loads(out)["culprit"], second["culprit"]) == (kernel.culprit, other)
    assert worktrees(kernel.repo) == [str(kernel.repo)]


def test_git_variables_pointing_at_another_repository_do_not_reach_the_rigs(run, kernel, tmp_path,
                                                                            monkeypatch):
    """As in a git hook: GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE name the user's other clone."""
    other = kernel.copy(tmp_path / "other").repo
    git(other, "reset", "-q", "--hard", GOOD)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    verdict = hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                        "--strategy", "git")
    assert (verdict["status"], verdict["culprit"]) == ("found", kernel.culprit)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert worktrees(other) == [str(other)] and worktrees(kernel.repo) == [str(kernel.repo)]
    assert git(other, "rev-parse", "HEAD") == git(other, "rev-parse", GOOD)


def test_an_untracked_relative_script_is_missing_in_the_rig_and_the_message_says_why(run, kernel,
                                                                                    tmp_path):
    make_script(tmp_path / "test.sh", kernel.culprit)  # in the user's directory, not in the repo
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", "./test.sh", "-q")
    assert result.exit_code == 2
    assert re.fullmatch(
        r"error: --run exited 127 on its first run: most likely a missing or non-executable script "
        r"\('\./test\.sh'\); its output ended: [^;]*\./test\.sh: (not found|No such file or "
        r"directory); commands run in the rig's worktree \(a checkout of the commit under test\): "
        f"give a script that is not in the repository by its absolute path, {tmp_path}/test.sh; "
        r"nothing was logged: hunt 1 ended aborted \(run the hunt again with a command that "
        r"runs\)\n", result.stderr)


def test_replay_hunt_of_a_real_hunt_points_to_its_transcript(run, kernel, tmp_path):
    script = make_script(tmp_path / "t.sh", kernel.culprit)
    assert hunt_json(run, GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
                     "--strategy", "git")["culprit"] == kernel.culprit
    result = run("replay", "hunt", "1")
    assert (result.exit_code, result.stderr) == (2, (
        "error: hunt 1 was run on real rigs: its tests cannot be run again here (bisectlab log 1 "
        "prints it as a transcript for bisectlab replay log)\n"))


def test_a_hunt_takes_sigterm_but_leaves_an_ignored_sighup_ignored():
    """`nohup bisectlab bisect ...` must outlive the terminal it was started from."""
    from bisectlab.cli.hunt import _interrupted_by

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _interrupted_by(signal.SIGTERM, signal.SIGHUP):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)


def two_rigs(kernel: Export, tmp_path: Path, command: str = "true") -> GitRigs:
    """Two rigs of hunt 1 (database "a") over the kernel repository, worktrees under tmp_path."""
    shas = git(kernel.repo, "rev-list", "--reverse", BAD).split()
    rigs = GitRigs.build(kernel.repo, SimpleNamespace(shas=shas), command,  # type: ignore[arg-type]
                         install_command=None, rigs=2, worktrees=tmp_path / "wt", adapters=None,
                         timeout=None, on_timeout="skip", seed=1, keep_worktrees=False)
    rigs.hunt_id, rigs.database = 1, "a"
    return rigs


def test_a_resumed_hunt_that_ends_removes_the_worktrees_it_kept_even_of_rigs_unused_since(
        kernel, tmp_path):
    """Both rigs tested before the hunt stopped; resumed, it ends having used rig1 only (or
    none: killed after its last test was logged), and every worktree goes, rig2's too."""
    for used_after in ((0,), ()):
        first = two_rigs(kernel, tmp_path)
        done = first.run_round([(5, 1, first.rigs[0]), (6, 1, first.rigs[1])], lambda i, r: None)
        first.close(finished=False)
        assert len(worktrees(kernel.repo)) == 3
        again = two_rigs(kernel, tmp_path)
        for result, rig in zip(done, again.rigs, strict=True):
            again.restore(result.commit, 1, rig, logged_result(result))
        for i in used_after:
            again.run(7, 1, again.rigs[i])
        again.close(finished=True)
        assert worktrees(kernel.repo) == [str(kernel.repo)]
        assert sorted(p.name for p in (tmp_path / "wt").iterdir()) == [".hunt-1.lock"]


def test_rigs_booting_one_commit_at_once_number_their_boots_the_same_whichever_starts_first(
        kernel, tmp_path):
    """BISECTLAB_BOOT of two rigs booting one commit in a round: rig1 takes the first boots
    the round may use, rig2 the next, however the rigs' threads run (rig1 waits here until
    rig2 has booted); the next round numbers past every boot used (rig2 stopped at its failing boot 5)."""
    command = (f'[ "$BISECTLAB_RIG" = rig1 ] && for i in $(seq 1200); do [ -e {tmp_path}/go ] '
               f'&& break; sleep 0.05; done; echo "$BISECTLAB_RIG $BISECTLAB_BOOT" >> '
               f'{tmp_path}/boots; [ "$BISECTLAB_RIG" = rig2 ] && touch {tmp_path}/go; '
               f'[ "$BISECTLAB_RIG $BISECTLAB_BOOT" != "rig2 5" ]')
    rigs = two_rigs(kernel, tmp_path, command)
    first = rigs.run_round([(5, 3, rigs.rigs[0]), (5, 3, rigs.rigs[1])], lambda i, r: None)
    assert [[b.attempt for b in r.boots] for r in first] == [[1, 2, 3], [4, 5]]
    assert (tmp_path / "boots").read_text().splitlines()[0] == "rig2 4"  # rig1 waited for it
    again = rigs.run_round([(5, 1, rigs.rigs[1]), (5, 2, rigs.rigs[0])], lambda i, r: None)
    assert [[b.attempt for b in r.boots] for r in again] == [[6], [7, 8]]
    rigs.close(finished=True)


def logged_result(result) -> dict:
    """A test result as the store gives it back to a resumed hunt."""
    return {"rig": result.rig, "installed": result.installed, "skipped": result.skipped,
            "lab_minutes": result.minutes, "destroyed_serials": ",".join(result.destroyed),
            "boot_rows": [{"attempt": b.attempt, "seed": None, "bricked": b.bricked,
                           "stray_write": False, "adapter_serial": b.adapter}
                          for b in result.boots]}


def test_a_hunt_killed_outright_leaves_no_command_running(kernel, tmp_path, start_cli):
    """kill -9 of the hunt's process: its watchdog kills the command it was running (which
    would otherwise run on past --timeout, beside the resumed hunt's)."""
    script = make_script(tmp_path / "t.sh", kernel.culprit,
                         before=f"echo $$ >> {tmp_path}/pids; sleep 300")
    proc = start_cli("bisect", GOOD, BAD, "--repo", kernel.repo, "--run", script, "--timeout",
                     "600", "-q", cwd=tmp_path, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    pids = tmp_path / "pids"
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    command = int(pids.read_text().split()[0])
    assert alive(command)
    proc.kill()
    proc.wait()
    assert all_dead([command])


def test_a_command_starts_only_once_the_watchdog_has_its_process_group(kernel, tmp_path):
    """No moment where a kill -9 of the hunt's process would leave a command the watchdog does
    not know of: the command waits for the watchdog to hear its group (slowed down here)."""
    marker = tmp_path / "ran"
    rigs = two_rigs(kernel, tmp_path, f"touch {marker}")
    heard, started = [], rigs.watchdog.started

    def slow_to_hear(group: int) -> None:
        time.sleep(0.5)
        heard.append(marker.exists())
        started(group)

    rigs.watchdog.started = slow_to_hear  # type: ignore[method-assign]
    try:
        rigs.run(5, 1, rigs.rigs[0])
    finally:
        rigs.close()
    assert heard == [False] and marker.exists()


def test_git_failing_mid_hunt_stops_it_as_kept_not_as_bad_input(run, kernel, tmp_path):
    """The first boot leaves a lock that makes the rig's next checkout fail: exit 1, the hunt
    kept with its logged test, and resume goes on (exit 2 would say nothing was written)."""
    lock = (f'[ -e {tmp_path}/locked ] || {{ touch {tmp_path}/locked; '
            'touch "$(git rev-parse --git-dir)/index.lock"; }')
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=lock)
    result = run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script, "-q")
    assert result.exit_code == 1
    assert re.fullmatch(r"error: git checkout failed: fatal: Unable to create .*index\.lock.*; "
                        r"hunt 1 is kept: bisectlab resume 1 goes on\n", result.stderr)
    assert logged_hunts(run)[0]["status"] == "interrupted" and len(logged_tests(run)) == 1
    git_dir = Path(git(Path(rig_worktree(kernel.repo, 1, 1)), "rev-parse", "--absolute-git-dir"))
    (git_dir / "index.lock").unlink()
    resumed = json.loads(run("resume", "1", "--json", "-q").stdout)
    assert (resumed["status"], resumed["culprit"]) == ("found", kernel.culprit)


def test_a_hunt_logged_with_an_empty_install_by_an_older_version_resumes(run, kernel, tmp_path):
    """`--install ""` was taken as no install (and logged so) before it was refused."""
    stop_once = f'[ -e {tmp_path}/stopped ] || {{ touch {tmp_path}/stopped; exit 200; }}'
    script = make_script(tmp_path / "t.sh", kernel.culprit, before=stop_once)
    assert run("bisect", GOOD, BAD, "--repo", str(kernel.repo), "--run", script,
               "-q").exit_code == 1
    with sqlite3.connect(tmp_path / "bisectlab.sqlite") as con:
        (params,) = con.execute("SELECT params FROM hunts WHERE id = 1").fetchone()
        con.execute("UPDATE hunts SET params = ? WHERE id = 1",
                    (json.dumps({**json.loads(params), "install": ""}),))
    resumed = json.loads(run("resume", "1", "--json", "-q").stdout)
    assert (resumed["status"], resumed["culprit"]) == ("found", kernel.culprit)
