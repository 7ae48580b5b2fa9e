"""The measurement scripts the README quotes still run (tiny sizes; the figures are in the README)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXPERIMENTS / name), *args], capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout


def test_p_price_compares_learnt_and_known_p():
    out = run_script("p_price.py", "--commits", "100", "--detect", "1", "--hunts", "3")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["p=1.0 learnt", "p=1.0 known"]
    assert all(re.search(r"to the verdict [\d.]+, right 1\.000 \(3 hunts\)", line) for line in lines)


def test_prior_calibration_reports_by_band_of_p():
    out = run_script("prior_calibration.py", "--commits", "60", "--hunts", "6")
    first, *bands = out.splitlines()
    assert re.fullmatch(r"\d of 6 right at a claimed 0\.99", first)
    assert sum(int(re.search(r": (\d+) of (\d+)", b).group(2)) for b in bands) == 6


def test_p_prior_frontier_prints_one_line_per_prior_with_every_rate():
    out = run_script("p_prior_frontier.py", "--commits", "60", "--hunts", "2", "--low-hunts", "1",
                     "--workers", "1")
    lines = out.splitlines()
    assert [line.split("  ")[0] for line in lines][:2] == ["a=0.0 c=0.5", "a=0.0 c=0.0"]
    assert all(len(re.findall(r"p=[\d.]+: [01]\.\d{3} [\d.]+ \([\d.]+x\)", line)) == 4
               for line in lines)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_fidelity_compares_every_step_with_real_git():
    out = run_script("git_fidelity.py", "--histories", "2", "--min-commits", "200",
                     "--max-commits", "300")
    *hunts, last = out.splitlines()
    assert len(hunts) == 2 and last == "2 of 2 histories: every step the same commit and the same line"
    for line in hunts:
        steps = int(re.search(r"; git (\d+) steps, ours \1;", line).group(1))
        assert f"same commit {steps}/{steps}, same line {steps}/{steps}, culprit same" in line
        assert line.endswith("commits: no divergence; lines: no divergence")


def test_import_scale_reports_export_import_load_and_generation():
    out = run_script("import_scale.py", "--sizes", "300", "--generate", "1000", "--repeat", "1")
    first, last = out.splitlines()
    assert re.fullmatch(r"N=\s+300: export-git\s+[\d.]+ s \(repository\s+[\d.]+ MB\)\s+import-git\s+"
                        r"[\d.]+ s\s+file\s+[\d.]+ MB\s+load\s+[\d.]+ s\s+\(297 commits, \d+ changed "
                        r"paths, \d+ tags\)", first)
    assert re.fullmatch(r"generate_kernel_history\(1000 commits\): [\d.]+ s \(median of 1\)", last)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_real_hunts_compares_real_rigs_with_bench_git_and_the_simulated_lab(tmp_path):
    scenario = tmp_path / "s.toml"
    subprocess.run([str(Path(sys.executable).parent / "bisectlab"), "history", "generate",
                    "--commits", "100", "--seed", "5", "--bug", "rate", "--detect", "1", "-o",
                    str(scenario)], check=True, capture_output=True)
    out = run_script("real_hunts.py", "--commits", "100", "--detect", "1", "--hunts", "1",
                     "--overhead-hunts", "1", "--scenario-hunts", "1", "--scenario", str(scenario),
                     "--range", "v1.0", "v1.1", "--workdir", str(tmp_path / "work"))
    accuracy, overhead, *sides, labs = out.splitlines()
    assert re.fullmatch(r"p=1, 100 commits, 1 hunts: real --repo --run accuracy 1\.000 \[0\.207, "
                        r"1\.000\], boots ([\d.]+); bisectlab bench accuracy 1\.000 \[0\.207, "
                        r"1\.000\], boots \1; the same test for test in 1 of 1", accuracy)
    assert overhead.startswith("overhead per test, 100 commits, p = 1, 1 hunts each")
    assert [side.split("  ")[1] for side in sides] == [
        "git bisect run", "bisectlab --strategy git", "bisectlab bayes"]
    assert all(re.search(r"[\d.]+ steps +\d+ / +\d+ / +-?\d+ ms  gap +-?\d+ ms$", s) for s in sides)
    assert re.fullmatch(rf"one driver, two labs: {scenario} v1\.0\.\.v1\.1, 1 seeds each: real "
                        r"accuracy 1\.000 \[0\.207, 1\.000\], boots ([\d.]+) \(sd 0\.0\); simulated "
                        r"accuracy 1\.000 \[0\.207, 1\.000\], boots \1 \(sd 0\.0\); the same test "
                        r"for test in 1 of 1", labs)


def test_startup_ab_times_a_boot_and_a_generation_on_two_revisions():
    out = run_script("startup_ab.py", "HEAD", "--boots", "1", "--generations", "1",
                     "--commits", "5000")
    assert re.search(r"boot --exit-status: HEAD [\d.]+ s, now [\d.]+ s, [\d.]+x", out)
    assert re.search(r"generation of 5,000 commits: HEAD [\d.]+ s, now [\d.]+ s", out)


def test_lab_time_phases_split_each_lanes_lab_days(tmp_path):
    bisectlab = str(Path(sys.executable).parent / "bisectlab")
    scenario, db = tmp_path / "k.toml", tmp_path / "c.sqlite"
    subprocess.run([bisectlab, "history", "generate", "--commits", "200", "--seed", "3", "--bug",
                    "rate", "--detect", "0.5", "-o", str(scenario)], check=True,
                   capture_output=True)
    subprocess.run([bisectlab, "replay", "campaign", "--history", str(scenario), "--hunts", "3",
                    "--rigs", "1", "--workers", "1", "--strategy", "bayes", "--strategy",
                    "bayes:boots-per-install=5", "--db", str(db), "-q"], check=True,
                   capture_output=True)
    out = run_script("lab_time_phases.py", str(db), "--detect", "0.5", "--against",
                     "bayes:boots-per-install=5").splitlines()
    assert re.match(r"campaign 1: \d+ candidates; information bound at p = 0.5: \d+ boots", out[0])
    lanes = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in out[2:4]}
    assert set(lanes) == {"bayes", "bayes:boots-per-install=5"}
    for hunts, days, culprit, parents, search, _, _ in lanes.values():
        assert hunts == 3 and abs(culprit + parents + search - days) < 2e-3  # one rig: they add up
    assert out[4].startswith("against bayes:boots-per-install=5, hunt for hunt")
    ratio, diff, error, pairs = re.fullmatch(
        r"  bayes +([\d.]+)x  ([+-][\d.]+) \+- ([\d.]+)  \((\d+) pairs\)", out[5]).groups()
    days, base = lanes["bayes"][1], lanes["bayes:boots-per-install=5"][1]
    assert int(pairs) == 3 and len(out) == 6  # the lane is not paired with itself
    assert abs(float(ratio) - days / base) < 2e-3 and abs(float(diff) - (days - base)) < 2e-3
    assert float(error) >= 0
    missing = subprocess.run([sys.executable, str(EXPERIMENTS / "lab_time_phases.py"), str(db),
                              "--against", "bayes:boots-per-install=7"], capture_output=True,
                             text=True)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith("error: no lane 'bayes:boots-per-install=7' in campaign 1")


def test_lab_time_phases_refuses_a_missing_database_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "lab_time_phases.py"),
                           str(tmp_path / "none.sqlite")], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (2, f"error: no campaign database at "
                                                 f"{tmp_path / 'none.sqlite'}\n")
    assert not (tmp_path / "none.sqlite").exists()
    (tmp_path / "notes.sqlite").write_text("not a database\n")
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "lab_time_phases.py"),
                           str(tmp_path / "notes.sqlite")], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("error: not a bisectlab database: ")
    assert len(done.stderr.splitlines()) == 1
    for flag, value in (("--hunts", "0"), ("--hunts", "-1"), ("--detect", "nan"),
                        ("--detect", "inf"), ("--detect", "0"), ("--campaign", "1.5")):
        done = subprocess.run([sys.executable, str(EXPERIMENTS / "lab_time_phases.py"),
                               str(tmp_path / "none.sqlite"), flag, value],
                              capture_output=True, text=True)
        assert done.returncode == 2 and f"argument {flag}: must be" in done.stderr, (flag, value)


def test_calibration_refuses_a_plan_quantile_out_of_range_in_one_line():
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "calibration.py"), "--detect", "0.5",
                           "--hunts", "2", "--plan-quantile", "nan"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("must be in [0, 0.5), not nan")


@pytest.mark.parametrize("script", ["startup_ab.py", "campaign_ab.py"])
def test_an_older_commit_that_is_not_there_is_one_line_and_exit_2(script):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / script), "no-such-rev"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: cannot extract no-such-rev from this checkout"


def test_campaign_ab_runs_the_same_hunts_on_the_same_code():
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "campaign_ab.py"), "HEAD",
                           "--hunts", "4", "--rounds", "1"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("hunts: ")]
    assert "identical on both sides, test for test" in line


def test_campaign_ab_with_a_pool_runs_the_same_hunts_as_one_worker():
    def digest(*workers: str) -> str:
        out = run_script("campaign_ab.py", "HEAD", "--hunts", "4", "--rounds", "1", *workers)
        assert re.search(r"now: .* 4 hunts, 2 workers, median of 1\)", out) or not workers, out
        (line,) = [x for x in out.splitlines() if x.startswith("hunts: ")]
        assert "identical on both sides, test for test" in line
        return re.search(r"digests (\w+)\)", line).group(1)

    assert digest("--workers", "2") == digest()


def test_long_lived_pool_runs_each_side_every_round():
    out = run_script("long_lived_pool.py", "--hunts", "3", "--rounds", "2")
    *sides, last = out.splitlines()
    assert [line.split(":")[0].strip() for line in sides] == [
        "1 worker", "2 workers", "2 workers, no freeze"]
    assert all(re.search(r"hunts/s \(\d+, \d+; 3 hunts, median of 2\)$", line) for line in sides)
    assert re.fullmatch(r"freeze / no freeze on 2 workers: [\d.]+x; speed-up over 1 worker: "
                        r"[\d.]+x with the freeze, [\d.]+x without \(.*\)", last)


def test_tree_split_deals_the_hunts_to_two_trees():
    out = run_script("tree_split.py", "--hunts", "6", "--rounds", "2")
    one, two = [x for x in out.splitlines() if " choices worked out, " in x]
    assert one.startswith("1 tree : ") and two.startswith("2 trees: ")
    worked = [int(re.search(r"(\d+) choices worked out", x).group(1)) for x in (one, two)]
    assert worked[1] >= worked[0] > 0  # two trees never share what one would
    assert "hunts: the same on both sides, test for test" in out
    assert re.search(r"one tree against 2: [\d.]+x the hunts per CPU second, the median of each "
                     r"round's \([\d.]+, [\d.]+\)", out)


@pytest.mark.parametrize("args", [["--boots", "0"], ["--commits", "nan"], ["--generations", "1e20"]])
def test_startup_ab_refuses_counts_that_make_no_sense(args):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "startup_ab.py"), "HEAD", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()  # one line: no usage before it, no traceback
    assert line.startswith(f"startup_ab.py: error: argument {args[0]}: must be")


@pytest.mark.parametrize(("script", "flag", "value"), [
    ("calibration.py", "--hunts", "0"), ("calibration.py", "--detect", "nan"),
    ("calibration.py", "--commits", "1e20"), ("calibration.py", "--workers", "0"),
    ("calibration.py", "--quantile", "0.7"), ("p_price.py", "--detect", "inf"),
    ("p_prior_frontier.py", "--low-hunts", "-1"), ("prior_calibration.py", "--commits", "5"),
    ("real_hunts.py", "--seed", "-1"), ("import_scale.py", "--sizes", "1.5"),
    ("git_fidelity.py", "--histories", "0"), ("beyond_one_machine.py", "--rounds", "0"),
    ("campaign_ab.py", "--hunts", "nan"), ("campaign_ab.py", "--workers", "0"),
    ("tree_split.py", "--trees", "1"), ("routing.py", "--depth", "0"),
    ("long_lived_pool.py", "--rounds", "0"), ("pool_writes.py", "--workers", "1"),
    ("tree_release.py", "--hunts", "0"),
])
def test_every_script_refuses_a_number_that_makes_no_sense_in_one_line(script, flag, value):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / script), flag, value],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()  # one line: no usage before it, no traceback
    assert line.startswith(f"{script}: error: argument {flag}: must be"), done.stderr


@pytest.mark.parametrize(("script", "args", "message"), [
    ("calibration.py", [], "error: nothing to measure: give --detect P (repeatable) or --scenario"),
    ("git_fidelity.py", ["--min-commits", "300", "--max-commits", "200"],
     "git_fidelity.py: error: --min-commits 300 is above --max-commits 200"),
])
def test_scripts_refuse_a_request_with_nothing_to_run(script, args, message):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / script), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"{message}\n"


def test_routing_counts_the_nodes_of_one_tree_dealt_and_routed():
    out = run_script("routing.py", "--hunts", "8", "--depth", "2")
    one = int(re.search(r"one tree holds (\d+) nodes", out).group(1))
    dealt = re.search(r"dealt in turn to 2 workers: (\d+) nodes \(\+(\d+) over one tree; "
                      r"(\d+)/(\d+)", out)
    total, extra, a, b = map(int, dealt.groups())
    assert total == one + extra == a + b and extra >= 1  # both trees hold the root at least
    routed = re.findall(r"routed by the first \d results?: \d+ subtrees, (\d+) nodes \(\+(\d+) ",
                        out)
    assert len(routed) == 2
    for held, over in routed:
        assert int(held) == one + int(over)  # each worker's tree holds the root


def test_pool_timeline_times_each_process_first_and_last_hunts():
    out = run_script("pool_timeline.py", "--hunts", "6", "--rounds", "1")
    one, two = [x.strip() for x in out.splitlines() if " first hunt began at " in x]
    pattern = (r"(\d) workers?: first hunt began at ([\d, ]+) ms(?:; the last hunts ended (\d+) ms "
               r"apart)?; run_campaign returned (\d+) ms after the last ended, (\d+) ms in all")
    for line, workers in ((one, 1), (two, 2)):
        match = re.fullmatch(pattern, line)
        assert match and int(match.group(1)) == workers, line
        firsts = [int(x) for x in match.group(2).split(", ")]
        assert 1 <= len(firsts) <= workers and firsts == sorted(firsts)
        assert (match.group(3) is None) == (workers == 1)
        assert max(firsts) + int(match.group(4)) <= int(match.group(5))  # all within the wall


def test_pool_writes_gives_the_speed_up_with_hunts_written_and_writes_skipped():
    out = run_script("pool_writes.py", "--hunts", "4", "--rounds", "1")
    rounds = [line for line in out.splitlines() if line.startswith("  round ")]
    assert len(rounds) == 1 and rounds[0].count("hunts/s") == 2
    lines = [line.strip() for line in out.splitlines() if "speed-up" in line]
    assert [line.split(":")[0] for line in lines] == ["hunts written", "writes skipped"]
    for line in lines:  # the script itself checks that one way writes every hunt, the other none
        one, many, ratio = map(float, re.search(
            r"([\d.]+) and\s+([\d.]+) hunts/s, speed-up ([\d.]+)x", line).groups())
        assert one > 0 and many > 0 and ratio == pytest.approx(many / one, rel=0.01)


def test_tree_release_times_one_workers_release_of_its_trees_against_its_run():
    out = run_script("tree_release.py", "--hunts", "4", "--rounds", "2")
    rounds = re.findall(r"round \d: release ([\d.]+) ms of a ([\d.]+) s run \(([\d.]+)%\)", out)
    assert len(rounds) == 2
    for ms, seconds, share in map(lambda r: map(float, r), rounds):  # each to its printed digits
        lowest = max(ms - 0.05, 0) / (10 * (seconds + 0.005))
        highest = (ms + 0.05) / (10 * max(seconds - 0.005, 1e-6))
        assert 0 <= ms < 1e3 * seconds and lowest - 0.005 <= share <= highest + 0.005
    assert re.search(r"4 hunts, 1 worker, medians of 2: release [\d.]+ ms, [\d.]+% of the run", out)
