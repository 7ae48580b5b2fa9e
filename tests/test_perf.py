"""`bisectlab perf --scale` end to end on a small history: every figure is measured in fresh
processes and reported beside its target (no timing is asserted: the machine decides those)."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from bisectlab.perf import (
    SCALE_BASELINE,
    ScaleRun,
    _run_child,
    baseline_source,
    format_scale,
    run_scale,
)

SMALL = ScaleRun(commits=3000, decisions=3, repeats=1, small=1000, git_repeats=1)


def test_scale_report_measures_every_figure_in_child_processes():
    report = run_scale(SMALL, baseline=None)
    now = report["now"]
    assert now["candidates"] == 2999 and report["baseline"] is None and "today" not in report
    for key in ("build_s", "first_s", "later_s", "generation_s", "decision_small_s"):
        assert 0 < now[key] < 60
    assert 20 < now["peak_rss_mb"] < 2000  # a whole Python process with numpy and scipy
    text = format_scale(report)
    for label in ("SearchSpace", "first bayes decision", "later bayes decisions", "peak RSS",
                  "history generation", "1,000 commits: a bayes decision"):
        assert label in text
    if shutil.which("git"):
        assert set(report["git"]) == {"git_step_s", "git_step_graph_s"} and "git rev-list" in text


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_a_child_s_peak_rss_is_its_own_not_its_parent_s():
    ballast = bytearray(300 * 2**20)  # the parent's high-water mark rises past 300 MB
    ballast[::4096] = b"\1" * len(ballast[::4096])
    child = _run_child(None, 3000, 2, "hunt")
    assert 20 < child["peak_rss_mb"] < 250  # wait4's maximum RSS would read over 300 MB
    del ballast


def test_an_older_commits_code_comes_with_its_migrations(tmp_path):
    """An installed bisectlab cannot lend the extracted package its db/ (a non-editable
    install's bisectlab.migrations is not the extracted package's): it is extracted too."""
    source = baseline_source("HEAD", str(tmp_path / "head"))
    if source is None:
        pytest.skip("not a git checkout")
    assert (Path(source) / "bisectlab" / "store.py").exists()
    assert (Path(source) / "db" / "env.py").exists() and any((Path(source) / "db").glob("versions/*.py"))


def test_an_older_package_gets_the_kernels_of_its_own_source(tmp_path):
    """A side-by-side run compares Python with Python: an older package whose _kernels.c is
    this build's gets the built module; one with another _kernels.c gets that one built; one
    whose source does not build, or with none, gets nothing (and runs numpy)."""
    import importlib.util

    from bisectlab import compiled
    from bisectlab.perf import _lend_kernels

    if compiled.kernels is None:
        pytest.skip("the kernels were not built")
    built = Path(compiled.kernels.__file__)
    if not (built.parent / "_kernels.c").is_file():
        pytest.skip("an install without the kernels' source beside them")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(os.environ.get("CC", compiler).split()[0]) is None:
        pytest.skip("no C compiler to build an older package's kernels with")
    ours = (built.parent / "_kernels.c").read_bytes()
    older = ours.replace(b"#define KERNELS_VERSION ", b"#define KERNELS_VERSION 90 + ")
    assert older != ours
    for name, text in (("same", ours), ("older", older), ("broken", b"not C at all"),
                       ("none", None)):
        package = tmp_path / name / "bisectlab"
        package.mkdir(parents=True)
        if text is not None:
            (package / "_kernels.c").write_bytes(text)
        _lend_kernels(package)
        assert (package / built.name).is_file() == (name in ("same", "older")), name
    spec = importlib.util.spec_from_file_location("bisectlab._kernels",
                                                  tmp_path / "older" / "bisectlab" / built.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.version == 90 + compiled.VERSION


def test_an_installed_bisectlab_takes_older_code_from_the_checkout_it_runs_in(tmp_path,
                                                                            monkeypatch):
    """After `pip install .` the code runs from site-packages, not a checkout: the commit is
    taken from the checkout the command runs in."""
    import bisectlab.perf

    checkout = Path(bisectlab.perf.__file__).resolve().parent.parent
    if baseline_source("HEAD", str(tmp_path / "here")) is None:
        pytest.skip("not a git checkout")
    monkeypatch.setattr(bisectlab.perf, "__file__", str(tmp_path / "site" / "bisectlab" / "perf.py"))
    monkeypatch.chdir(tmp_path)
    assert baseline_source("HEAD", str(tmp_path / "elsewhere")) is None
    for where in (checkout, checkout / "experiments"):  # its root, or a folder in it
        monkeypatch.chdir(where)
        source = baseline_source("HEAD", str(tmp_path / "installed" / where.name))
        assert source is not None and (Path(source) / "bisectlab" / "store.py").exists()


def test_scale_report_puts_the_baseline_code_beside(tmp_path):
    if baseline_source(SCALE_BASELINE, str(tmp_path / "probe")) is None:
        pytest.skip("not a git checkout with the baseline commit")
    report = run_scale(ScaleRun(commits=2000, decisions=2, repeats=1, small=500, git_repeats=1),
                       baseline=SCALE_BASELINE)
    assert report["baseline"] == SCALE_BASELINE
    assert report["today"]["candidates"] == report["now"]["candidates"]
    assert "today" in format_scale(report).splitlines()[1]


def test_a_baseline_that_names_no_commit_is_an_error_not_a_skipped_column(tmp_path):
    """In a checkout, an unknown --baseline was reported as 'not in a git checkout here' after
    minutes of measuring, exit 0."""
    from bisectlab.errors import BisectlabError

    if baseline_source(SCALE_BASELINE, str(tmp_path / "probe")) is None:
        pytest.skip("not a git checkout with the baseline commit")
    assert baseline_source("no-such-rev", str(tmp_path / "other")) is None  # the experiments'
    with pytest.raises(BisectlabError, match=r"^--baseline no-such-rev: no commit of that name"):
        run_scale(SMALL, baseline="no-such-rev")  # before a figure is measured


def test_older_kernels_build_with_the_flags_ours_do():
    """An older package's kernels are built as pyproject.toml builds this one's (said twice,
    in perf.KERNEL_FLAGS and pyproject.toml, so held equal here)."""
    import tomllib

    from bisectlab.perf import KERNEL_FLAGS

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    modules = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["ext-modules"]
    assert [tuple(m["extra-compile-args"]) for m in modules] == [KERNEL_FLAGS]


def test_a_failed_or_killed_child_is_one_line():
    """A measuring child's failure says why in one line: its last line of error, or the signal
    that killed it (kill -9 of a campaign child), never a traceback of this process."""
    from bisectlab.perf import ChildFailed, json_child

    with pytest.raises(ChildFailed, match=r"^boom$"):
        json_child("import sys; print('x'); sys.exit('first\\nboom')")
    with pytest.raises(ChildFailed, match=r"^killed by signal 9$"):
        json_child("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(ChildFailed, match=r"^exit 3, no output$"):
        json_child("import sys; sys.exit(3)")


def test_children_run_at_once(tmp_path):
    """Each child waits for the other's file: run one after the other, the first would give
    up and fail."""
    from bisectlab.perf import ChildFailed, json_children

    code = ("import json, pathlib, sys, time\n"
            "mine, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
            "mine.touch()\n"
            "deadline = time.time() + 20\n"
            "while not other.exists():\n"
            "    if time.time() > deadline: sys.exit('alone')\n"
            "    time.sleep(0.01)\n"
            "print(json.dumps({'me': mine.name}))\n")
    a, b = tmp_path / "a", tmp_path / "b"
    assert json_children(code, [(a, b), (b, a)]) == [{"me": "a"}, {"me": "b"}]
    with pytest.raises(ChildFailed, match=r"^alone$"):  # the other never comes
        json_children(code.replace("20", "0.2"), [(tmp_path / "c", tmp_path / "never")])


def test_a_failing_child_stops_the_others_and_says_why(tmp_path):
    """The first child to fail ends the wait: a sibling that would run for minutes is killed,
    not waited for (the bound below is far above the failure's own second)."""
    import time

    from bisectlab.perf import ChildFailed, json_children

    code = ("import sys, time\n"
            "if sys.argv[1] == 'fail': sys.exit('broke at once')\n"
            "time.sleep(600)\n")
    began = time.monotonic()
    with pytest.raises(ChildFailed, match=r"^broke at once$"):
        json_children(code, [("sleep",), ("fail",)])
    assert time.monotonic() - began < 300


def test_a_child_that_writes_much_never_waits_for_another(tmp_path):
    """Output goes to files: the second child writes far more than a pipe holds, then a file
    that the first waits for; read one after the other from pipes, the second would block and
    the first give up."""
    from bisectlab.perf import json_children

    code = ("import json, pathlib, sys, time\n"
            "flag = pathlib.Path(sys.argv[2])\n"
            "if sys.argv[1] == 'chatty':\n"
            "    sys.stderr.write('x' * 400_000); sys.stderr.flush(); flag.touch()\n"
            "else:\n"
            "    deadline = time.time() + 30\n"
            "    while not flag.exists():\n"
            "        if time.time() > deadline: sys.exit('never came')\n"
            "        time.sleep(0.01)\n"
            "print(json.dumps({'me': sys.argv[1]}))\n")
    flag = tmp_path / "flag"
    assert json_children(code, [("waiting", flag), ("chatty", flag)]) == [
        {"me": "waiting"}, {"me": "chatty"}]


def test_a_pair_is_timed_while_both_campaigns_ran():
    """Hunts per second over the time both ran (the hunts each finished in it), per CPU second
    over both; campaigns that never overlapped are refused."""
    from bisectlab.perf import ChildFailed, pair_figures

    first = {"started": 10.0, "ended": 14.0, "finished_at": [11.0, 12.0, 13.0, 14.0],
             "ran": 4, "cpu_s": 4.0}
    second = {"started": 11.0, "ended": 16.0, "finished_at": [12.5, 13.5, 15.0, 16.0],
              "ran": 4, "cpu_s": 6.0}
    figures = pair_figures([first, second])
    assert figures["hunts_per_s"] == 5 / 3  # 12, 13, 14 and 12.5, 13.5 in (11, 14]
    assert figures["hunts_per_cpu_s"] == 8 / 10
    assert (figures["start_spread_s"], figures["end_spread_s"]) == (1.0, 2.0)
    with pytest.raises(ChildFailed, match="did not run at the same time"):
        pair_figures([first, {**second, "started": 14.5}])


def test_a_campaign_waits_for_the_others_at_the_barrier_and_no_longer(tmp_path):
    from bisectlab.perf import ChildFailed, wait_for_all

    (tmp_path / "ready.1").touch()
    wait_for_all(str(tmp_path), 2)  # the other is ready: no wait
    with pytest.raises(ChildFailed, match=r"^3 campaigns were not ready within 0.05 s$"):
        wait_for_all(str(tmp_path), 3, patience=0.05)


def test_perf_says_in_one_line_that_a_campaign_child_was_killed(run, monkeypatch):
    from bisectlab import perf

    monkeypatch.setattr(perf, "_CAMPAIGN_CHILD", "import os, signal; os.kill(os.getpid(), 9)")
    result = run("perf", "--campaign", "--quick")
    assert (result.exit_code, result.stderr) == (
        2, "error: perf campaign child failed: killed by signal 9\n")
