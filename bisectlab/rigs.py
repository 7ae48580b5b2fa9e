"""Real rigs: git worktrees of the user's repository, a run command, an optional install command.

Each rig is a worktree of the repository detached at the commit under test (the user's own work
tree and branch are never touched). A test installs the commit if the rig does not have it
(``--install``, once: build, flash, kexec), then runs ``--run`` up to b times, stopping at the
first failure. Commands run in the rig's worktree, in a process group of their own, with
BISECTLAB_COMMIT, BISECTLAB_RIG, BISECTLAB_BOOT (the how-manyth boot of this commit in this hunt)
and BISECTLAB_HUNT in their environment. Their exit status follows `git bisect run`:

    0                 pass
    1-127 but 125     the bug showed (an adapter destroyed, with --adapters)
    125               untestable: the commit is skipped (a failed install too, as ktest's
                      BISECT_SKIP does for a failed build)
    126, 127 at first most likely a missing or non-executable script (a rig's first run, or
                      its first install, in this process: a resumed hunt's too): the hunt aborts
    128 or more, or a signal: the hunt aborts, its state kept (bisectlab resume continues it)

Each boot keeps its exit status, wall time and the tail of its output; whatever a command left
running in its process group is killed when it ends, and a watchdog process kills whatever
is running should the hunt's process be killed outright (kill -9). The rigs of a round run at
once, in threads that each wait on their own commands; when one aborts, the others finish the
command they are running (a flash is not cut in half) and start no other; Ctrl-C or SIGTERM
kills their commands at once. A hunt that stops without a verdict keeps its rigs' worktrees, so
that `bisectlab resume` finds the kernels they built; a worktree gone by then is installed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bisectlab.errors import BisectlabError
from bisectlab.gitrepo import REPOSITORY_ENV
from bisectlab.history import History
from bisectlab.interrupts import held
from bisectlab.lab import AdapterBox, BootRecord, Costs, FittedRigs, TestResult, fit_logged_adapter

OUTPUT_TAIL = 8192          # bytes of a command's output kept with its boot
TIMEOUT_ACTIONS = ("skip", "fail", "abort")
DEFAULT_ON_TIMEOUT = "skip"  # a hang shows neither the bug nor its absence: never guess
EXIT_SKIP = 125
MISSING_SCRIPT = (126, 127)


class RigAbort(BisectlabError):
    """A run command asked to stop the hunt (exit >= 128, a signal, a missing script): the
    hunt keeps its state and `bisectlab resume` continues it (a MissingCommand before the hunt
    logged a test ends it aborted instead: there is nothing to continue)."""


class MissingCommand(RigAbort):
    """A command that exited 126 or 127 on its first run: most likely a missing or
    non-executable script, which `bisectlab resume` would run again as logged."""


class RigStopped(BisectlabError):
    """A rig's thread stopped before its next command: another rig aborted, or Ctrl-C."""


@dataclass
class Rig:
    """One real rig: its worktree, and the commit it has installed (None: none yet)."""

    name: str
    worktree: Path
    installed: int | None = None
    checked_out: int | None = None
    adapter: str | None = None
    ran: bool = False          # has run --run in this process (126/127: a missing script before)
    install_ran: bool = False  # has run --install in this process (the same, for the install)
    restored: bool = False     # its state comes from a resumed hunt's log, its worktree unchecked


@dataclass(frozen=True)
class Command:
    """A command's outcome: its exit status (negative: killed by that signal; None: timed out),
    wall seconds and the tail of its output."""

    status: int | None
    seconds: float
    output: str


@dataclass
class GitRigs(FittedRigs[Rig]):
    """M rigs over git worktrees of one repository, running real commands (a Runner)."""

    repo: Path
    history: History
    run_command: str
    install_command: str | None = None
    rigs: list[Rig] = field(default_factory=list)
    box: AdapterBox = field(default_factory=lambda: AdapterBox(None, "REAL", model="adapter"))
    timeout: float | None = None
    on_timeout: str = DEFAULT_ON_TIMEOUT
    hunt_id: int | None = None
    database: str = ""  # the identity of the database the hunt is logged in (Store.identity)
    keep_worktrees: bool = False
    attempts: dict[int, int] = field(default_factory=dict)
    running: dict[int, tuple[subprocess.Popen, str]] = field(default_factory=dict)  # by pid, rig
    watchdog: Watchdog = field(default_factory=lambda: Watchdog(), repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    commands_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    worktrees: Path | None = None
    folder: Path | None = None
    folder_lock: Any = field(default=None, repr=False)
    costs: Costs | None = None  # the lab's minutes, as the strategy prices tests

    @classmethod
    def build(cls, repo: Path, history: History, run_command: str, *, install_command: str | None,
              rigs: int, worktrees: Path, adapters: int | None, timeout: float | None,
              on_timeout: str, seed: int, keep_worktrees: bool,
              costs: Costs | None = None) -> GitRigs:
        """Rigs named rig1..rigM with worktrees under ``worktrees``, in a folder of the hunt's
        own (see :meth:`place`), made when first used."""
        if not run_command.strip():
            raise BisectlabError("--run is empty: give the command that tests a commit")
        if install_command is not None and not install_command.strip():
            raise BisectlabError("--install is empty: give the command that installs a commit, "
                                 "or leave --install out")
        if on_timeout not in TIMEOUT_ACTIONS:
            raise BisectlabError(f"--on-timeout is one of {', '.join(TIMEOUT_ACTIONS)}")
        check_writable(worktrees)
        box = AdapterBox.of(adapters, seed, model="adapter")
        out = cls(Path(repo), history, run_command, install_command or None,
                  [Rig(f"rig{i + 1}", worktrees / f"rig{i + 1}") for i in range(rigs)], box,
                  timeout, on_timeout, keep_worktrees=keep_worktrees, worktrees=worktrees,
                  costs=costs)
        for rig in out.rigs:
            rig.adapter = box.take()
        return out

    # the Runner seam ----------------------------------------------------------------------------

    def run(self, commit: int, boots: int, rig: Rig) -> TestResult:
        """Install the commit on the rig if it lacks it, then boot it up to ``boots`` times."""
        return self.run_round([(commit, boots, rig)], lambda i, r: None)[0]

    def run_round(self, tests: Sequence[tuple[int, int, Rig]],
                  on_done: Callable[[int, TestResult], None]) -> list[TestResult]:
        """The tests of one round at once, one thread per rig; ``on_done(i, result)`` hears each
        as it ends, in this thread (to log it). Ctrl-C or an abort stops the whole round."""
        if not tests:  # a resumed hunt's round, all of it restored from the log
            return []
        firsts = self._first_attempts(tests)
        if len(tests) == 1:
            result = self._test(*tests[0], firsts[0])
            on_done(0, result)
            return [result]
        results: dict[int, TestResult] = {}
        pool = ThreadPoolExecutor(len(tests))
        futures: dict[Future[TestResult], int] = {}
        try:
            futures = {pool.submit(self._test, *test, first): i
                       for i, (test, first) in enumerate(zip(tests, firsts, strict=True))}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                on_done(futures[future], results[futures[future]])
        except BaseException as exc:
            try:  # an error lets the others finish their command; Ctrl-C kills them
                self._stop_round(pool, kill=not isinstance(exc, Exception))
            finally:
                _log_finished(futures, results, on_done)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [results[i] for i in range(len(tests))]

    def _stop_round(self, pool: ThreadPoolExecutor, kill: bool) -> None:
        """No rig starts another command; with ``kill`` the running ones die now, else they
        end first (Ctrl-C meanwhile kills them); then the rigs' threads are waited for."""
        self.stopping.set()
        if kill:
            self.stop_all()
        elif self.running:
            with self.commands_lock:
                busy = sorted(rig for _, rig in self.running.values())
            print(f"waiting for {' and '.join(busy)} to end the command under way (Ctrl-C "
                  "kills it)", file=sys.stderr, flush=True)
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:
            self.stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            raise

    def restore(self, commit: int, boots: int, rig: Rig, logged: dict[str, Any]) -> TestResult:
        """A test a resumed hunt had logged: taken as it is, the rigs' state moved on by it."""
        result = TestResult.from_log(commit, logged)
        self.attempts[commit] = max([self.attempts.get(commit, 0),
                                     *(b.attempt for b in result.boots)])
        rig = next((r for r in self.rigs if r.name == result.rig), rig)
        fit_logged_adapter(self.rigs, rig, result)
        rig.restored = True  # ran and install_ran stay: a resumed process may not find the
        # scripts (another shell, another PATH), so 126/127 at its rigs' first runs still stop it
        if result.installed:  # a skip without boots is a failed install, as _test has it
            rig.installed = commit if result.boots or not result.skipped else None
        for _ in result.destroyed:
            rig.adapter = self.box.take()
        return result

    def _still_installed(self, rig: Rig) -> None:
        """A resumed rig keeps the commit its log says it installed only if its worktree is
        still there at that commit (the hunt that stopped kept it), its tracked files unchanged
        (a checkout killed midway leaves HEAD behind them); otherwise it installs anew."""
        rig.restored = False
        if rig.installed is None:
            return
        self.place(rig)
        sha = self.history.shas[rig.installed]
        head = (git(rig.worktree, "rev-parse", "HEAD", check=False).strip()
                if (rig.worktree / ".git").exists() else None)
        if head == sha and not git(rig.worktree, "status", "--porcelain",  # not half checked out
                                   "--untracked-files=no", check=False).strip():
            rig.checked_out = rig.installed
        else:
            rig.installed = None

    # one test ------------------------------------------------------------------------------------

    def _first_attempts(self, tests: Sequence[tuple[int, int, Rig]]) -> list[int]:
        """Each test's first boot number: the commit's next, past the boots that the round's
        earlier tests of it may take, so that rigs booting one commit at once number their boots
        the same way whichever starts first (a number a test does not reach is never used)."""
        reserved: dict[int, int] = {}
        firsts = []
        for commit, boots, _ in tests:
            taken = self.attempts.get(commit, 0) + reserved.get(commit, 0)
            firsts.append(taken + 1)
            reserved[commit] = reserved.get(commit, 0) + boots
        return firsts

    def _test(self, commit: int, boots: int, rig: Rig, first_attempt: int) -> TestResult:
        started = time.monotonic()
        if rig.restored:
            self._still_installed(rig)
        installed = rig.installed != commit
        self._check_out(rig, commit)
        if installed:
            if self.install_command:
                done = self._command(self.install_command, rig, commit, 0)
                first, rig.install_ran = not rig.install_ran, True
                if done.status != 0:
                    rig.installed = None
                    self._check_install(done, first)
                    return self._skipped(commit, rig, (), started, installed,
                                         f"install failed ({describe(done)}): skipped"
                                         + last_words(done))
            rig.installed = commit
        records: list[BootRecord] = []
        for attempt in range(first_attempt, first_attempt + boots):
            self._booting(commit, attempt)
            done = self._command(self.run_command, rig, commit, attempt)
            first, rig.ran = not rig.ran, True
            verdict = self._meaning(done, first)
            records.append(BootRecord(attempt, None, verdict == "bad", False, rig.adapter,
                                      done.status, done.seconds, done.output))
            if verdict == "skip":
                return self._skipped(commit, rig, tuple(records), started, installed,
                                     f"{describe(done)}: untestable, skipped" + last_words(done))
            if verdict == "bad":
                destroyed = (rig.adapter,) if rig.adapter is not None else ()
                with self.lock:  # two rigs' adapters may die at once: each gets its own spare
                    rig.adapter = self.box.take()
                note = (f"{describe(done)}: counted as the bug (--on-timeout fail)"
                        if done.status is None else "")
                return TestResult(commit, rig.name, tuple(records), destroyed,
                                  (time.monotonic() - started) / 60, installed, note=note)
        return TestResult(commit, rig.name, tuple(records), (), (time.monotonic() - started) / 60,
                          installed)

    def _booting(self, commit: int, attempt: int) -> None:
        """Boot number ``attempt`` of ``commit`` is used: the next round numbers past it."""
        with self.lock:
            self.attempts[commit] = max(self.attempts.get(commit, 0), attempt)

    def _skipped(self, commit: int, rig: Rig, records: tuple[BootRecord, ...], started: float,
                 installed: bool, note: str) -> TestResult:
        return TestResult(commit, rig.name, records, (), (time.monotonic() - started) / 60,
                          installed, True, note)

    def _check_install(self, done: Command, first: bool) -> None:
        """RigAbort where a failed install means the hunt cannot go on (as a run's would: a
        missing install script, exit 128 or more, a signal, a timeout with --on-timeout abort);
        any other failure skips the commit."""
        if done.status is None:
            if self.on_timeout == "abort":
                raise RigAbort(f"--install timed out after {self.timeout:g} s (--on-timeout "
                               "abort)" + last_words(done))
        elif done.status in MISSING_SCRIPT and first:
            raise MissingCommand(f"--install exited {done.status} on its first run: most "
                                 f"likely a missing or non-executable script "
                                 f"({self.install_command!r})" + last_words(done)
                                 + relative_script_hint(self.install_command or ""))
        elif done.status < 0 or done.status >= 128:
            raise RigAbort(f"--install {describe(done)}: the hunt stops (exit 128 or more, or a "
                           "signal)" + last_words(done))

    def _meaning(self, done: Command, first: bool) -> str:
        """pass, bad or skip, by git bisect run's contract; RigAbort where it says stop."""
        if done.status is None:
            if self.on_timeout == "abort":
                raise RigAbort(f"--run timed out after {self.timeout:g} s (--on-timeout abort)"
                               + last_words(done))
            return {"skip": "skip", "fail": "bad"}[self.on_timeout]
        if done.status in MISSING_SCRIPT and first:
            raise MissingCommand(f"--run exited {done.status} on its first run: most likely a "
                                 f"missing or non-executable script ({self.run_command!r})"
                                 + last_words(done) + relative_script_hint(self.run_command))
        if done.status < 0 or done.status >= 128:
            raise RigAbort(f"--run {describe(done)}: the hunt stops (exit 128 or more, or a "
                           "signal, asks git bisect run to abort)" + last_words(done))
        if done.status == EXIT_SKIP:
            return "skip"
        return "pass" if done.status == 0 else "bad"

    def _check_out(self, rig: Rig, commit: int) -> None:
        """The rig's worktree detached at ``commit`` (made on first use; checked out only when
        its commit changes)."""
        sha = self.history.shas[commit]
        if rig.checked_out == commit:
            return
        if self.stopping.is_set():
            raise RigStopped("stopped")
        if rig.checked_out is None:
            self.place(rig)
        if not (rig.worktree / ".git").exists():
            rig.worktree.parent.mkdir(parents=True, exist_ok=True)
            with self.lock:  # git worktree add reads the others' half-made metadata
                git(self.repo, "worktree", "add", "--force", "--detach", str(rig.worktree), sha)
        else:
            git(rig.worktree, "checkout", "--quiet", "--force", "--detach", sha)
        rig.checked_out = commit

    def place(self, rig: Rig) -> None:
        """Put the rig's worktree in worktrees/hunt-N/rigK, N the hunt's number, in a folder
        this process holds a lock on (hunt-N.2, .3 ... if another process holds hunt-N: a hunt
        of the same number in another database), so two hunts never share a worktree (no
        --worktrees folder: the rig's own path stays)."""
        if self.worktrees is None:
            return
        with self.lock:
            rig.worktree = self._folder() / rig.name

    def _folder(self) -> Path:
        """This hunt's folder of worktrees, claimed on first use."""
        if self.folder is None:
            self.folder, self.folder_lock = claim_folder(
                self.worktrees, "hunt" if self.hunt_id is None else f"hunt-{self.hunt_id}",
                self.database)
        return self.folder

    def _command(self, command: str, rig: Rig, commit: int, boot: int) -> Command:
        """Run one command in the rig's worktree, its output into a file, its tail kept."""
        env = {**clean_environment(), "BISECTLAB_COMMIT": self.history.shas[commit],
               "BISECTLAB_RIG": rig.name, "BISECTLAB_BOOT": str(boot),
               "BISECTLAB_HUNT": "" if self.hunt_id is None else str(self.hunt_id)}
        with tempfile.TemporaryFile() as out:
            started = time.monotonic()
            with self.commands_lock:  # stop_all either sees this command or it never starts
                if self.stopping.is_set():
                    raise RigStopped("stopped")
                gate, opener = os.pipe()
                try:
                    proc = subprocess.Popen(["/bin/sh", "-c", GATED, "sh", command],
                                            cwd=rig.worktree, env=env, stdin=gate, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
                    self.running[proc.pid] = proc, rig.name
                    self.watchdog.started(proc.pid)
                    os.write(opener, b"go\n")
                finally:
                    os.close(gate)
                    os.close(opener)
            exited = False
            try:
                exited = wait_unreaped(proc, self.timeout)
            finally:
                with self.commands_lock:
                    self.running.pop(proc.pid, None)
                kill_group(proc)  # a hung command, or what a finished one left running
                self.watchdog.ended(proc.pid)
            seconds = time.monotonic() - started
            return Command(proc.returncode if exited else None, seconds, tail(out))

    def stop_all(self) -> None:
        """Kill every command still running and start no other (Ctrl-C, SIGTERM, the hunt
        closing); a rig busy in git stops before its next command."""
        self.stopping.set()
        with self.commands_lock:  # each still unreaped: its pid is its process group's
            for proc, _ in self.running.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def close(self, finished: bool = True) -> None:
        """Remove the rigs' worktrees unless asked to keep them, or the hunt has not
        ``finished`` (bisectlab resume will want the kernels they built)."""
        self.stop_all()
        self.watchdog.close()
        if self.keep_worktrees or not finished:
            self._release()
            return
        if any(rig.restored for rig in self.rigs):  # kept by the stopped hunt, unused since
            for rig in self.rigs:
                self.place(rig)
        for rig in self.rigs:
            if rig.worktree.exists():
                git(self.repo, "worktree", "remove", "--force", str(rig.worktree), check=False)
        if self.folder is not None:
            with contextlib.suppress(OSError):  # the hunt's folder, if nothing else is in it
                self.folder.rmdir()
                (self.folder.parent / f".{self.folder.name}.owner").unlink()
        git(self.repo, "worktree", "prune", check=False)
        self._release()

    def _release(self) -> None:
        """Let another process take this hunt's folder of worktrees."""
        if self.folder_lock is not None:
            self.folder_lock.close()
            self.folder_lock = None


# A command waits at this gate until the watchdog has its process group, so that a kill -9
# of the hunt's process at any moment leaves none unknown to it (the gate closing unopened, the
# hunt's process gone, ends it before it starts); it then runs as `sh -c COMMAND`, stdin empty.
GATED = 'read -r go || exit 1; exec /bin/sh -c "$1" </dev/null'

WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, group = line.split()
    (groups.add if sign == "+" else groups.discard)(int(group))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class Watchdog:
    """A process that kills the commands a hunt's process left running if that process is
    killed outright (kill -9), which no handler of its own can see: it hears each command's
    process group start and end through a pipe, and kills those still running when the pipe
    closes. Without it a command, in a session of its own, runs on past its timeout, and a
    resumed hunt starts a second one in the same worktree."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def started(self, group: int) -> None:
        self._send(f"+ {group}\n")

    def ended(self, group: int) -> None:
        self._send(f"- {group}\n")

    def close(self) -> None:
        """Let the watchdog go (it kills what is still listed: nothing, once commands ended)."""
        with self._lock:
            if self._proc is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait()
                self._proc = None

    def _send(self, line: str) -> None:
        with self._lock, contextlib.suppress(OSError):  # a watchdog gone is no reason to stop
            if self._proc is None:  # started with the first command, in a session of its own
                self._proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHDOG],
                                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, text=True,
                                              start_new_session=True)
            self._proc.stdin.write(line)  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]


def _log_finished(futures: dict[Future[TestResult], int], results: dict[int, TestResult],
                  on_done: Callable[[int, TestResult], None]) -> None:
    """A round cut short (one rig aborted, Ctrl-C): the tests other rigs had finished by then
    are logged all the same, their destroyed adapters with them; a store that fails stops it."""
    with contextlib.suppress(BisectlabError), held():  # a Ctrl-C now waits for them all
        for future, i in futures.items():
            if i in results or not future.done() or future.cancelled() or future.exception():
                continue
            results[i] = future.result()
            on_done(i, results[i])


def last_words(done: Command) -> str:
    """The last line a command printed, to say why it stopped the hunt or skipped a commit."""
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    return f"; its output ended: {lines[-1][:200]}" if lines else ""


def relative_script_hint(command: str) -> str:
    """A word on where commands run, if the command starts with a relative path (./test.sh):
    in the rig's worktree, a checkout of the commit, where an untracked script is not."""
    words = command.split()
    if not words or "/" not in words[0] or words[0].startswith(("/", "~", "$")):
        return ""
    here = Path(words[0])
    return ("; commands run in the rig's worktree (a checkout of the commit under test): give a "
            "script that is not in the repository by its absolute path"
            + (f", {here.resolve()}" if here.is_file() else ""))


def describe(done: Command) -> str:
    """A command's end in words: 'exit 3', 'killed by signal 9', 'timed out'."""
    if done.status is None:
        return f"timed out after {done.seconds:.0f} s"
    if done.status < 0:
        return f"killed by signal {-done.status}"
    return f"exit {done.status}"


def wait_unreaped(proc: subprocess.Popen, timeout: float | None) -> bool:
    """Wait until a command exits (True) or ``timeout`` seconds pass (False), leaving it
    unreaped: until it is, its pid, which is its process group's id, cannot be anyone else's."""
    if timeout is None:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        return True
    deadline, delay = time.monotonic() + timeout, 0.0005
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(2 * delay, 0.05)
    return True


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a command and everything it started (its process group), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tail(out: Any) -> str:
    """The last OUTPUT_TAIL bytes written to a file, as text a database takes: what is not
    UTF-8, and NUL (which PostgreSQL's text refuses), read as U+FFFD."""
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - OUTPUT_TAIL))
    return out.read().decode("utf-8", "replace").replace("\x00", "\ufffd")


def claim_folder(parent: Path, stem: str, owner: str = "") -> tuple[Path, Any]:
    """The folder of worktrees a hunt works in: one ``owner`` kept (a stopped hunt resumed),
    else the first of parent/stem, stem.2, stem.3 ... that no other process holds and no other
    owner has kept (.stem.owner beside it names the one that made it); and the open lock file
    (.stem.lock, kept) that holds it until closed or this process ends."""
    parent.mkdir(parents=True, exist_ok=True)
    numbered = itertools.chain([stem], (f"{stem}.{k}" for k in itertools.count(2)))
    for name in itertools.chain(_kept_by(parent, stem, owner), numbered):
        claimed = _claim(parent, name, owner)
        if claimed is not None:
            return claimed
    raise AssertionError("unreachable")


def _kept_by(parent: Path, stem: str, owner: str) -> list[str]:
    """The folders stem, stem.2 ... under ``parent`` that ``owner`` made and kept."""
    kept = []
    for marker in parent.glob(f".{glob.escape(stem)}*.owner"):
        name = marker.name[1:-len(".owner")]
        if not re.fullmatch(rf"{re.escape(stem)}(\.[0-9]+)?", name):
            continue
        try:  # read without its lock: the hunt that holds it may be removing it
            mine = marker.read_text() == owner
        except FileNotFoundError:
            continue
        if mine and (parent / name).is_dir():
            kept.append(name)
    return sorted(kept, key=lambda name: (len(name), name))


def _claim(parent: Path, name: str, owner: str) -> tuple[Path, Any] | None:
    """parent/name and its held lock, unless another process holds it or another owner kept it."""
    lock = open(parent / f".{name}.lock", "a")  # noqa: SIM115 (held until the hunt ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    marker = parent / f".{name}.owner"
    kept_by = marker.read_text() if marker.exists() else None
    if kept_by not in (None, owner) and (parent / name).exists():
        lock.close()
        return None
    marker.write_text(owner)
    return parent / name, lock


def check_writable(directory: Path) -> None:
    """The rigs' worktrees can be made under ``directory`` (BisectlabError if not): a folder is
    made and removed in its nearest existing ancestor (root passes any access check, and some
    file systems refuse what their permissions allow)."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bisectlab-probe-", dir=probe))
    except OSError:
        raise BisectlabError(f"cannot make worktrees under {directory}: {probe} is not a "
                             "writable directory") from None


def default_worktrees(repo: Path) -> Path:
    """Where rigs' worktrees go unless the user names a place: under the repository's git dir."""
    common = git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    return Path(common) / "bisectlab" / "rigs"


def clean_environment() -> dict[str, str]:
    """This process's environment without the variables that point git at another repository
    (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE ...: set in a git hook or by the user), which would
    make git, and a run command's git, look past the rig's worktree."""
    return {k: v for k, v in os.environ.items() if k not in REPOSITORY_ENV}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git to its end: in a session of its own, which the terminal's Ctrl-C does not reach,
    and with this process's Ctrl-C held until it ends, so that a checkout is never cut in half;
    its output (BisectlabError with git's first line if it fails and ``check``)."""
    with held(second_at_once=True):
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              env=clean_environment(), stdin=subprocess.DEVNULL,
                              start_new_session=True)
    if check and done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        line = next((x for x in lines if x.startswith(("fatal:", "error:"))), lines[0])
        raise BisectlabError(f"git {args[0]} failed: {line}")
    return done.stdout
