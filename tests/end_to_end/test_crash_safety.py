"""Crash safety: SIGKILL the nightly run at many points, rerun the night, and compare.

Every trial starts from the same generated inbox (one arrival day with deletions, so the purge
and the byte-level compaction run) and an empty warehouse, reports folder and DAGSTER_HOME. It
runs `python -m pipelines nightly --date D`, kills it with SIGKILL at a point, reruns the night
(killing it again at a later point when the trial holds several), then runs it to completion, and
compares every table (an ordered content hash), every report file and every inbox event file
(redacted in place the same night) with an uninterrupted reference run. After every kill: the
warehouse opens, and no half-written report file is visible.

Kill points, all deterministic, chosen from a trace of the reference run:

* `sql:N`: just before the N-th SQL statement the run sends to the warehouse (ingestion, the purge,
  core state, the rules, the verifier, the checks, the report's bookkeeping), spread evenly;
* `step:<step>:N`: just before the N-th SQL statement of one step (every rerun reaches `:1`);
* `compaction:<stage>`: at each stage of the byte-level compaction (`pipelines.warehouse.compaction_hook`);
* `replace:<file name>`: just before the `os.replace` of the compaction's swap, of each report file
  and of each inbox file the night's erasure redacts in place (`part-*.jsonl`);
* `time:F`: the test sends SIGKILL after F times the reference run's duration (anywhere, including the
  middle of a DuckDB statement or of a file write).

Runs are forked from a "zygote" (this module run as a script) that has already imported Dagster,
Great Expectations and the pipeline, so a run costs its own work, not an interpreter start-up.
The forked child is an ordinary pipeline process: it runs `pipelines.cli.main(["nightly", ...])`
with the trial's environment, and it is killed with a real SIGKILL.

Knobs: `COMPLIANCE_CRASH_POINTS` (default 22, at least 20; `all` = before every statement, stage and
rename, one kill per trial),
`COMPLIANCE_CRASH_CHAIN` (kills per trial before the completing run; default 4, 1 = one kill per
trial), `COMPLIANCE_CRASH_SEED` (the timed kills).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import MANIFEST, generate_inbox, report_state, warehouse_state

REPO = Path(__file__).resolve().parents[2]
KEY = "crash-test-key-9f1c"
DAY = "2026-10-01"
REPORT_FILES = ("compliance_report.html", "summary.json", "violations.csv", "erasure_register.csv")
#: The folder of the remediation lists beside them (assets/reports/remediation.py).
REMEDIATION_DIR = "remediation"
#: How write_atomic names its temporary files: `.<name>.<random>.tmp` beside the file.
TEMP_FILE = re.compile(r"^\.(?P<name>[^/]+)\.[^./]+\.tmp$")
#: The phases the kills must reach (asset functions, by module).
PHASES = {
    "landing.assets:ingest_arrival_day",
    "purge.assets:purge_log",
    "compliance.violations:violations",
    "compaction.assets:warehouse_compaction",
    "reports.report:compliance_report",
}
COMPACTION_STEP = "compaction.assets:warehouse_compaction"


# ---------------------------------------------------------------------------------------------
# The zygote: `python tests/end_to_end/test_crash_safety.py` reads one JSON request a line, forks a child that
# runs the CLI with the requested kill point, and answers with how the child ended.
# ---------------------------------------------------------------------------------------------


def _caller_label() -> str:
    """The outermost asset/check function on the stack (the step), else the outermost pipeline frame."""
    frame = sys._getframe(2)
    step = pipeline = ""
    while frame is not None:
        path = frame.f_code.co_filename
        for part in ("/assets/", "/checks/"):
            if part in path:
                step = f"{path.split(part, 1)[1].removesuffix('.py').replace('/', '.')}:{frame.f_code.co_name}"
        if "/pipelines/" in path:
            pipeline = f"pipelines.{Path(path).stem}:{frame.f_code.co_name}"
        frame = frame.f_back
    return step or pipeline or "?"


def _install_kill_hooks(point: str | None, trace: list | None) -> None:
    """Name every SQL statement, compaction stage and rename of the run; SIGKILL this process at `point`.

    Names: `sql:N` (the N-th statement of the process), `step:<step>:N` (the N-th statement of a
    step), `compaction:<stage>`, `replace:<file name>`.
    """
    import pipelines.resources
    import pipelines.warehouse

    counters: dict[str, int] = {}

    def count(name: str) -> int:
        counters[name] = counters.get(name, 0) + 1
        return counters[name]

    def reached(kind: str, what: str) -> None:
        if kind == "sql":
            label = _caller_label()
            names = [f"sql:{count('sql')}", f"step:{label}:{count(label)}"]
        else:
            label = what
            names = [f"{kind}:{what}"]
        if trace is not None:
            trace.append([names[0], label])
        if point in names:
            os.kill(os.getpid(), signal.SIGKILL)

    class Counted:
        """A warehouse connection that reports every statement before it runs."""

        def __init__(self, con):
            self._con = con

        def __getattr__(self, name):
            return getattr(self._con, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._con.close()

        def execute(self, *args, **kwargs):
            reached("sql", "execute")
            return self._con.execute(*args, **kwargs)

        def executemany(self, *args, **kwargs):
            reached("sql", "executemany")
            return self._con.executemany(*args, **kwargs)

        def sql(self, *args, **kwargs):
            reached("sql", "sql")
            return self._con.sql(*args, **kwargs)

    original_open = pipelines.warehouse.open_connection

    def open_connection(*args, **kwargs):
        return Counted(original_open(*args, **kwargs))

    pipelines.warehouse.open_connection = open_connection
    pipelines.resources.open_connection = open_connection
    pipelines.warehouse.compaction_hook = lambda stage: reached("compaction", stage)

    original_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        reached("replace", Path(dst).name)
        return original_replace(src, dst, *args, **kwargs)

    os.replace = replace


def _child(request: dict) -> None:
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 99
    trace: list | None = [] if request.get("trace_file") else None
    try:
        os.environ.update(request["env"])
        _install_kill_hooks(request.get("point"), trace)
        from pipelines.cli import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        if trace is not None:
            Path(request["trace_file"]).write_text(json.dumps(trace))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _foreign_threads() -> list[str]:
    """Threads other than this one. jemalloc's background thread (pyarrow) is fork-aware: it is
    stopped before a fork and restarted after it."""
    me = threading.get_native_id()
    names = []
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) != me:
            name = (task / "comm").read_text().strip()
            if name != "jemalloc_bg_thd":
                names.append(name)
    return names


def zygote() -> None:
    sys.path.insert(0, str(REPO))
    import checks.gx.runner
    import pipelines.cli
    import pipelines.definitions  # noqa: F401  (resources read the trial's paths from the env at run time)
    import pipelines.runner  # noqa: F401  (every module a child runs is imported here, at one version)
    from assets.reports.summary import code_version

    checks.gx.runner._gx()  # GX's import and ephemeral context: what makes a first step slow
    # the report's code version hashes the source files: every child runs the code imported here
    code_version()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        threads = _foreign_threads()
        if threads:  # fork copies one thread: a lock held by another one would hang the child
            out.write(json.dumps({"error": f"threads in the zygote: {threads}"}) + "\n")
            out.flush()
            continue
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        kill_after, timeout = request.get("kill_after"), request["timeout"]
        killed_by_us = timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            elapsed = time.monotonic() - started
            if (kill_after is not None and elapsed >= kill_after) or elapsed >= timeout:
                timed_out = kill_after is None or elapsed < kill_after
                killed_by_us = True
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        answer = {
            "seconds": time.monotonic() - started,
            "exitcode": os.waitstatus_to_exitcode(status),
            "killed_by_parent": killed_by_us,
            "timed_out": timed_out,
        }
        out.write(json.dumps(answer) + "\n")
        out.flush()


# ---------------------------------------------------------------------------------------------
# The test side
# ---------------------------------------------------------------------------------------------


@dataclass
class Trial:
    root: Path
    runs: list[dict] = field(default_factory=list)

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def day_folder(self) -> Path:
        return self.reports / DAY

    def env(self) -> dict[str, str]:
        return {
            "COMPLIANCE_INBOX": str(self.inbox),
            "COMPLIANCE_WAREHOUSE": str(self.warehouse),
            "COMPLIANCE_REPORTS": str(self.reports),
            "COMPLIANCE_HASH_KEY": KEY,
            "DAGSTER_HOME": str(self.root / "dagster_home"),
            "COMPLIANCE_COMPACTION_DELAY_DAYS": "0",  # the night's purge is compacted that night
            # the zygote loads the Definitions before any trial's inbox exists: its partitions start at DAY
            "COMPLIANCE_FIRST_DAY": DAY,
        }

    def log(self, i: int) -> str:
        return (self.root / f"run-{i}.log").read_text(errors="replace")


class Zygote:
    def __init__(self, root: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
        env.update(Trial(root / "zygote").env())  # every setting set: the resources read them from the env
        env.update(PYTHONPATH=str(REPO), GX_ANALYTICS_ENABLED="False", OPENBLAS_NUM_THREADS="1")
        self.stderr = open(root / "zygote.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
            cwd=REPO,
        )
        hello = self.proc.stdout.readline()
        assert hello and json.loads(hello)["ready"], (root / "zygote.log").read_text()[-3000:]

    def nightly(
        self,
        trial: Trial,
        *,
        point: str | None = None,
        kill_after: float | None = None,
        trace_file: Path | None = None,
        timeout: float = 300,
    ) -> dict:
        i = len(trial.runs)
        request = {
            "argv": ["nightly", "--date", DAY],
            "env": trial.env(),
            "log": str(trial.root / f"run-{i}.log"),
            "point": point,
            "kill_after": kill_after,
            "timeout": timeout,
            "trace_file": str(trace_file) if trace_file else None,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer
        answer["point"] = point or (f"time:{kill_after:.2f}s" if kill_after is not None else None)
        trial.runs.append(answer)
        assert not answer["timed_out"], f"run {i} of {trial.root.name} hung:\n{trial.log(i)[-3000:]}"
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.stderr.close()


def new_trial(base: Path, name: str) -> Trial:
    trial = Trial(base / name)
    trial.root.mkdir()
    shutil.copytree(base / "inbox", trial.inbox)
    return trial


def assert_no_partial_report(trial: Trial, *, after_completion: bool) -> None:
    """Report files are complete whenever they are visible; a killed write leaves at most a hidden
    `.<name>.*.tmp` file, which the next run removes."""
    folder = trial.day_folder
    if not folder.exists():
        return
    names = {p.name for p in folder.iterdir()} - {REMEDIATION_DIR}
    leftovers = {n for n in names if TEMP_FILE.match(n)}
    assert names - leftovers <= {*REPORT_FILES, MANIFEST}, names
    assert all(TEMP_FILE.match(n)["name"] in {*REPORT_FILES, MANIFEST} for n in leftovers), leftovers
    # the remediation lists (remediation/<file>.csv): whole CSV files, or a hidden temporary file
    lists = {f"{REMEDIATION_DIR}/{p.name}" for p in (folder / REMEDIATION_DIR).glob("*")}
    list_leftovers = {n for n in lists if TEMP_FILE.match(n.rpartition("/")[2])}
    assert all(n.endswith(".csv") for n in lists - list_leftovers), lists
    leftovers |= list_leftovers
    names |= lists
    if after_completion:
        assert not leftovers, f"temporary files left behind: {leftovers}"
    for name in names - leftovers:
        data = (folder / name).read_bytes()
        assert data.endswith(b"\n") or name == "compliance_report.html", name
        if name == "summary.json":
            assert json.loads(data)["run_date"] == DAY
        elif name.endswith(".csv"):
            rows = list(csv.reader(io.StringIO(data.decode())))
            assert rows and all(len(r) == len(rows[0]) for r in rows), name
        elif name == "compliance_report.html":
            assert data.rstrip().endswith(b"</html>"), "truncated page"
        elif name == MANIFEST:
            for line in data.decode().splitlines():
                digest, listed = line.split("  ")
                assert hashlib.sha256((folder / listed).read_bytes()).hexdigest() == digest, listed


def assert_recoverable(trial: Trial) -> None:
    """Right after a kill: the warehouse file opens and the report folder shows no partial file."""
    if trial.warehouse.exists():
        warehouse_state(trial.warehouse)
    assert_no_partial_report(trial, after_completion=False)


@dataclass
class Reference:
    seconds: float
    tables: dict[str, tuple[int, str]]
    reports: dict[str, bytes]
    trace: list[list[str]]
    inbox: dict[str, bytes]


def inbox_state(trial: Trial) -> dict[str, bytes]:
    """Every file under <inbox>/events/ (a redaction's `.<name>.redact` copy would show here too)."""
    root = trial.inbox / "events"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def is_inbox_rewrite(point: str) -> bool:
    """`replace:<name>` of an inbox event file the night redacts (not the warehouse nor a report file)."""
    return point.startswith("replace:") and point.removeprefix("replace:").endswith((".jsonl", ".jsonl.gz"))


def run_to_completion(zygote: Zygote, trial: Trial) -> None:
    answer = zygote.nightly(trial)
    i = len(trial.runs) - 1
    assert answer["exitcode"] == 0, f"{trial.root.name} run {i}: {answer}\n{trial.log(i)[-3000:]}"
    assert "Traceback" not in trial.log(i)
    assert not Path(str(trial.warehouse) + ".compact").exists()
    assert_no_partial_report(trial, after_completion=True)
    assert_instance_settled(trial)


def assert_instance_settled(trial: Trial) -> None:
    """The killed runs are marked failed and hold no slot of pool `warehouse`; the last one succeeded."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(trial.root / "dagster_home")) as instance:
        runs = instance.get_runs()  # newest first
        assert runs and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert all(r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for r in runs)
        assert not instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots


def make_reference(zygote: Zygote, base: Path) -> Reference:
    trial = new_trial(base, "reference")
    trace_file = base / "trace.json"
    started = time.monotonic()
    zygote.nightly(trial, trace_file=trace_file)
    seconds = time.monotonic() - started
    assert trial.runs[0]["exitcode"] == 0, trial.log(0)[-3000:]
    assert_no_partial_report(trial, after_completion=True)
    return Reference(
        seconds,
        warehouse_state(trial.warehouse),
        report_state(trial.day_folder),
        json.loads(trace_file.read_text()),
        inbox_state(trial),
    )


class Plan:
    """Kill points named after the reference run's trace, in run order."""

    def __init__(self, reference: Reference):
        self.reference = reference
        self.order: dict[str, float] = {}
        self.step_starts: list[str] = []
        seen: set[str] = set()
        self.compaction_statements: list[str] = []
        n = len(reference.trace)
        for i, (point, label) in enumerate(reference.trace):
            self.order[point] = i / n
            if point.startswith("sql:") and label not in seen:
                seen.add(label)
                start = f"step:{label}:1"
                self.order[start] = i / n
                self.step_starts.append(start)
            if point.startswith("sql:") and label == COMPACTION_STEP:
                statement = f"step:{label}:{len(self.compaction_statements) + 1}"
                self.order[statement] = i / n
                self.compaction_statements.append(statement)
        # compaction runs in any rerun that starts before the compaction request is cleared
        self.compaction_end = self.order["compaction:replaced"]
        #: The swaps of the inbox files the night redacts in place: a rerun after a kill before one
        #: reaches it (the redaction, or the completion of a recorded rewrite as the night starts).
        self.inbox_rewrites = [p for p in self.order if is_inbox_rewrite(p)]
        #: Where a kill is most likely to tear something: every statement of the compaction step
        #: (the swap and its bookkeeping), every compaction stage, every report file's rename.
        self.critical = {
            *self.compaction_statements,
            *(p for p in self.order if p.startswith("compaction:")),
            *(f"replace:{f}" for f in (*REPORT_FILES, MANIFEST)),
            *self.inbox_rewrites,
        }

    def step_of(self, point: str) -> str:
        """The step a kill point is in (a timed kill: wherever the run was)."""
        if point.startswith("step:"):
            return point.split(":", 1)[1].rsplit(":", 1)[0]
        if point.startswith("compaction:") or point == "replace:warehouse.duckdb":
            return "compaction.assets:warehouse_compaction"
        if is_inbox_rewrite(point):
            return "purge.assets:purge_log"
        if point.startswith("replace:"):
            return "reports.report:compliance_report"
        return dict(self.reference.trace).get(point, "?")

    def position(self, point: str) -> float:
        if point.startswith("time:"):
            return float(point.removeprefix("time:"))
        return self.order[point]

    def everything(self) -> list[str]:
        return [p for p, _ in self.reference.trace]

    def primaries(self, count: int, rng: random.Random) -> list[str]:
        """`count` first kills: amid each phase's statements, in the compaction and the report,
        then spread evenly over the run, a quarter of them at random times."""
        by_step: dict[str, list[str]] = {}
        for point, label in self.reference.trace:
            if point.startswith("sql:"):
                by_step.setdefault(label, []).append(point)
        chosen = [by_step[phase][len(by_step[phase]) // 2] for phase in sorted(PHASES) if phase in by_step]
        chosen += ["compaction:copied", "replace:summary.json"]
        timed = count // 4
        trace = self.everything()
        spread = count - timed - len(chosen)
        chosen += [trace[round((i + 0.5) * len(trace) / spread)] for i in range(max(0, spread))]
        chosen = chosen[: count - timed]
        return chosen + [f"time:{rng.uniform(0.02, 0.98):.3f}" for _ in range(timed)]

    def reachable_later(self, after: str) -> list[str]:
        """Points every rerun reaches (step starts, report renames, compaction stages while the
        compaction is still due, and the inbox rewrites after a named kill before them), later in
        the run than `after`."""
        pos = self.position(after)
        candidates = {*self.step_starts, *(f"replace:{f}" for f in (*REPORT_FILES, MANIFEST))}
        if not after.startswith("time:"):  # a timed kill's place in the run is only approximate
            candidates |= set(self.inbox_rewrites)
        if pos <= self.compaction_end:
            candidates |= {p for p in self.order if p.startswith("compaction:")} | {*self.compaction_statements}
        return sorted((p for p in candidates if self.order[p] > pos), key=self.order.__getitem__)

    def trials(self, kills: int, chain: int, rng: random.Random) -> list[list[str]]:
        """Trials of up to `chain` kills each, `kills` in all: a first kill anywhere, then kills of
        the reruns at later points (every rerun redoes the night from the start), preferring the
        critical points not used yet, then the points used least so far."""
        # Regression: every statement of the compaction step after the swap (its bookkeeping),
        # one after another; each rerun must compact again and reach the next one.
        after_swap = [p for p in self.compaction_statements if self.order[p] > self.compaction_end]
        fixed = [after_swap[i : i + chain] for i in range(0, len(after_swap), chain)]
        # Killed at the swap of the first inbox file the night redacts in place (after its rewrite
        # was recorded): the rerun must finish it.
        fixed += [[p] for p in self.inbox_rewrites[:1]]
        rest = kills - sum(len(trial) for trial in fixed)
        trials = [[p] for p in self.primaries(max(1, -(-rest // chain)), rng)]
        used = {p: 1 for trial in trials for p in trial}
        total = len(trials)
        grown = True
        while total < rest and grown:
            grown = False
            for trial in trials:
                later = self.reachable_later(trial[-1])
                if total < rest and len(trial) < chain and later:
                    rank = {p: (used.get(p, 0), p not in self.critical) for p in later}
                    best = min(rank.values())
                    pick = rng.choice([p for p in later if rank[p] == best])
                    used[pick] = used.get(pick, 0) + 1
                    trial.append(pick)
                    total += 1
                    grown = True
        return fixed + trials


def run_trial(zygote: Zygote, base: Path, reference: Reference, name: str, kills: list[str]) -> Trial:
    trial = new_trial(base, name)
    for point in kills:
        if point.startswith("time:"):
            answer = zygote.nightly(trial, kill_after=float(point.removeprefix("time:")) * reference.seconds)
        else:
            answer = zygote.nightly(trial, point=point)
        i = len(trial.runs) - 1
        # a timed kill may come after the run ended; a named point must have been reached
        assert answer["exitcode"] == -signal.SIGKILL or point.startswith("time:"), (
            f"{name}: kill point {point} not reached: {answer}\n{trial.log(i)[-3000:]}"
        )
        assert_recoverable(trial)
    run_to_completion(zygote, trial)
    tables = warehouse_state(trial.warehouse)
    differing = sorted(t for t in set(tables) | set(reference.tables) if tables.get(t) != reference.tables.get(t))
    assert not differing, f"{name} (kills {kills}): tables differ from the uninterrupted run: {differing}"
    reports = report_state(trial.day_folder)
    assert reports.keys() == reference.reports.keys()
    for file in reports:
        assert reports[file] == reference.reports[file], f"{name} (kills {kills}): {file} differs"
    inbox = inbox_state(trial)  # redacted as the reference's, no rewrite copy left behind
    assert inbox.keys() == reference.inbox.keys(), f"{name} (kills {kills}): {set(inbox) ^ set(reference.inbox)}"
    assert [f for f in inbox if inbox[f] != reference.inbox[f]] == [], f"{name} (kills {kills}): inbox files differ"
    return trial


@pytest.fixture(scope="module")
def crash_world(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    generate_inbox(base / "inbox", accounts=150, days=1, start=DAY, seed=3)
    zygote = Zygote(base)
    try:
        yield base, zygote, make_reference(zygote, base)
    finally:
        zygote.close()


@pytest.mark.slow
def test_killed_nightly_runs_recover_to_the_uninterrupted_result(crash_world):
    base, zygote, reference = crash_world
    plan = Plan(reference)
    # the reference run went through every phase the kill points must cover
    assert PHASES <= {label for _, label in reference.trace}
    stages = {f"compaction:{s}" for s in ("checkpointed", "copying", "copied", "synced", "replaced")}
    assert stages <= plan.order.keys()
    assert {f"replace:{f}" for f in (*REPORT_FILES, MANIFEST)} <= plan.order.keys()
    # the night redacts inbox files in place (its deletions' own lines): their swaps are kill points
    assert plan.inbox_rewrites

    rng = random.Random(int(os.environ.get("COMPLIANCE_CRASH_SEED", "7")))
    raw = os.environ.get("COMPLIANCE_CRASH_POINTS", "22")
    if raw == "all":
        trials = [[p] for p in plan.everything()]
    else:
        trials = plan.trials(max(20, int(raw)), int(os.environ.get("COMPLIANCE_CRASH_CHAIN", "4")), rng)
    killed = []
    for i, kills in enumerate(trials):
        trial = run_trial(zygote, base, reference, f"trial-{i:03d}", kills)
        killed += [r["point"] for r in trial.runs if r["exitcode"] == -signal.SIGKILL]
        shutil.rmtree(trial.root)
    assert len(killed) >= 20, killed
    assert set(plan.inbox_rewrites) & set(killed), killed  # killed amid a rewrite of the inbox too
    # the kills reached every phase: ingestion, the purge, the rules, the compaction, the report
    assert PHASES <= {plan.step_of(p) for p in killed}, killed


# ---------------------------------------------------------------------------------------------
# What a crash or a full disk can leave behind: one clear line and exit 2, nothing overwritten
# ---------------------------------------------------------------------------------------------


def _cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    full.update(Trial(tmp_path).env(), PYTHONPATH=str(REPO), **env)
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "nightly", "--date", DAY],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    "content",
    [b"", b"DUCK\0\0\0\0garbage", "truncated"],
    ids=["empty file", "bad header", "truncated database"],
)
def test_a_damaged_warehouse_is_one_clear_error_and_is_left_alone(tmp_path, content):
    import duckdb

    warehouse = Trial(tmp_path).warehouse
    if content == "truncated":  # a real database cut short, as a full disk leaves it
        con = duckdb.connect(str(warehouse))
        con.execute("CREATE TABLE t AS SELECT range AS x, repeat('y', 100) AS y FROM range(100000)")
        con.close()
        content = warehouse.read_bytes()[:20000]
    warehouse.write_bytes(content)
    line = _one_error_line(_cli(tmp_path))
    assert "not a usable DuckDB database" in line and "COMPLIANCE_WAREHOUSE" in line
    assert warehouse.read_bytes() == content


@pytest.mark.parametrize(
    "yaml",
    ["concurrency: [\n", "concurrency:\n  pools:\n    default_limit: many\n", "run_storage:\n  module: nowhere\n"],
    ids=["not yaml", "wrong type", "unknown storage"],
)
def test_a_damaged_dagster_yaml_is_one_clear_error(tmp_path, yaml):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml)
    line = _one_error_line(_cli(tmp_path))
    assert "DAGSTER_HOME" in line and "dagster.yaml" in line
    assert not (tmp_path / "reports" / DAY).exists()


if __name__ == "__main__":
    zygote()
