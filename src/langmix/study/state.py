"""The state of one run directory, from its files alone (never from who started it or where).

- `claim.json`: the owner of a run in progress (host, pid, SLURM job id, a token) and a heartbeat the owner
  refreshes every HEARTBEAT_S seconds. Claims are created with O_EXCL, so two drivers never run the same run;
  a claim whose heartbeat is older than STALE_S is abandoned and may be taken over (atomically, by renaming it).
- `status.json`: what the last attempt recorded (running / failed with the error and the tail of its log).
- `DONE`: written last, with a digest of every output file and the run's key (`done.py`); a run whose outputs no
  longer match is `corrupt`, a directory holding another run's files (copied or moved over it) is `foreign`.
- `.staging/`, `SWAP.json`: new files of a run and the journal that swaps them in (`swap_in`): an interrupted swap is
  completed, or rolled back, at the next look, so rewriting a finished run never leaves it corrupt.

Every record is written whole (tmp + rename), so one that cannot be read, or is not what its writer writes, was
damaged from outside (a disk, a sync tool, a hand edit): a damaged claim or status reads as absent, a damaged DONE or
swap journal makes the run `corrupt` (its files cannot be vouched for; the next run redoes it, `prepare_redo`), and
nothing a damaged journal names is moved or deleted.

States: done | corrupt | foreign | failed | running | interrupted | pending.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from langmix import durable
from langmix.study.done import (DONE, Foreign, done_files, done_record, held_key, name_key, read_record,
                                verify_done)

log = logging.getLogger(__name__)

CLAIM = "claim.json"
SWAP = "SWAP.json"  # the journal of `swap_in`
STAGING = ".staging"
FOREIGN = "foreign-"  # the folder in a run where `prepare_redo` sets another run's files aside
STALE = "stale-"  # where an evaluation of a training redone (foreign or corrupt) is set aside (`runner.run_job`)
# A live owner refreshes its claim every HEARTBEAT_S seconds; a claim not refreshed for STALE_S is abandoned.
# Both can be set through the environment (e.g. shorter in tests, longer on a slow shared filesystem).
HEARTBEAT_S = float(os.environ.get("LANGMIX_HEARTBEAT_S", 10.0))
STALE_S = float(os.environ.get("LANGMIX_CLAIM_STALE_S", 60.0))


def _process_identity(pid: int) -> str | None:
    """The PID namespace and kernel start time of process `pid` (Linux /proc), or None where unknown. Two processes
    with one hostname but separate PID namespaces (containers on the host network) cannot see each other's pids;
    the start time tells a reused pid from the owner."""
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{namespace} {stat.rsplit(')', 1)[1].split()[19]}"  # field 22, after the command name
    except (OSError, IndexError):
        return None


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "process": _process_identity(os.getpid()),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "token": secrets.token_hex(8)}


def write_json_atomic(path: Path, data: dict, flush: bool = False) -> None:
    """Write `data` as JSON to `path`: readers and a crashed process see the old file or the new one. `flush`: a
    crash of the machine too (`durable.write_text`: ~10 ms; for records nothing else can rebuild). A directory
    squatting on a record's name (a record is a file) is removed first."""
    if path.is_dir() and not path.is_symlink():
        log.warning("%s: a directory stood where this record belongs; removed", path)
        shutil.rmtree(path)
    durable.write_text(path, json.dumps(data, indent=2), flush=flush)


def _remove(path: Path) -> None:
    """Remove `path` whatever its kind (a file; a record damaged into a folder, a staging folder), if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive_lock(path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock (flock) on `path`, created if missing, until the block ends; where another process
    (or thread) holds it, log `waiting` and wait for it. Released by the kernel if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s", waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:  # a shared filesystem without flock (Lustre without -o flock, NFS without lockd)
            log.warning("%s: this filesystem cannot lock files (%s); going on without the lock: do not run two "
                        "of these at once here", path, exc.strerror or exc)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ClaimLost(RuntimeError):
    """This process no longer holds the claim of the run it works on: another process took it over (this one was
    suspended, or its heartbeats failed for STALE_S). The work stops and writes nothing more."""


class Claim:
    """An exclusive claim on a run directory, held while the run executes; refreshes its heartbeat. The work
    calls `ensure()` before it writes (every training step, the final outputs): it raises ClaimLost once the claim
    is gone, so two processes never write one run."""

    def __init__(self, path: Path, owner: dict) -> None:
        self.path, self.owner = path, owner
        self._stop = threading.Event()
        self.lost = threading.Event()
        self.last_beat = time.time()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _still_mine(self) -> bool:
        """Whether claim.json still names this owner (False when it is gone or names another); OSError other
        than a missing file and an unreadable claim (ValueError) propagate."""
        try:
            current = json.loads(self.path.read_text())
        except FileNotFoundError:
            return False
        if not isinstance(current, dict):
            raise ValueError(f"{self.path} is not a claim")
        if _token(current) != self.owner["token"]:
            log.error("lost the claim on %s to %s", self.path.parent, current.get("owner"))
            return False
        return True

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self._still_mine():
                    self.lost.set()
                    return
                write_json_atomic(self.path, {"owner": self.owner, "heartbeat": time.time()})
                self.last_beat = time.time()
            except (OSError, ValueError) as exc:  # a filesystem hiccup: try again at the next beat
                log.warning("could not refresh the claim on %s (%s); retrying", self.path.parent, exc)

    def ensure(self) -> None:
        """Raise ClaimLost if the claim is no longer this process's. Free while heartbeats are on time; when they
        are overdue (this process was suspended, or the filesystem failed), the claim file is read now."""
        if self.lost.is_set():
            raise ClaimLost(f"{self.path.parent.name}: another process took over this run")
        if time.time() - self.last_beat < 2 * HEARTBEAT_S:
            return
        try:
            mine = self._still_mine()
        except (OSError, ValueError):  # cannot tell: after STALE_S another driver may have taken it over
            mine = time.time() - self.last_beat < STALE_S
        if not mine:
            self.lost.set()
            raise ClaimLost(f"{self.path.parent.name}: another process took over this run")

    def release(self) -> None:
        self._stop.set()
        try:
            if _token(json.loads(self.path.read_text())) == self.owner["token"]:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> "Claim":
        _HELD.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _HELD.remove(self)
        self.release()


_HELD: list[Claim] = []  # the claims this process works under, innermost last


def ensure_claim() -> None:
    """`Claim.ensure()` of the claim this process works under, if any: call before writing a run's outputs."""
    if _HELD:
        _HELD[-1].ensure()


def _token(claim: object) -> object:
    """The owner token a claim records (None where it records none)."""
    owner = claim.get("owner") if isinstance(claim, dict) else None
    return owner.get("token") if isinstance(owner, dict) else None


def read_claim(run: Path) -> dict | None:
    """The run's claim, or None where there is none or it is not one (unreadable, no numeric heartbeat, an owner
    that is not a mapping): `try_claim` judges such a file by its age."""
    claim = read_record(run / CLAIM)
    if claim is None or not isinstance(claim.get("owner", {}), dict) or _heartbeat(claim) is None:
        return None
    return claim


def _heartbeat(claim: object) -> float | None:
    """When a claim was last refreshed (None where it records no finite number, or one further in the future than
    STALE_S: a damaged record, or a clock so far off that the claim would otherwise stay live for ever)."""
    beat = claim.get("heartbeat") if isinstance(claim, dict) else None
    if isinstance(beat, bool) or not isinstance(beat, (int, float)) or not math.isfinite(beat):
        return None
    return float(beat) if beat - time.time() <= STALE_S else None


def claim_is_live(claim: dict | None) -> bool:
    """A claim refreshed within STALE_S, unless its owner ran on this host, in this PID namespace, and that process
    is gone (a driver killed with SIGKILL: its runs are free at once, not after STALE_S). Where the owner's process
    cannot be identified here (another host or container, or no /proc), the heartbeat alone decides."""
    beat = _heartbeat(claim)
    if beat is None or time.time() - beat >= STALE_S:
        return False
    owner = claim.get("owner") if isinstance(claim.get("owner"), dict) else {}  # type: ignore[union-attr]
    mine = _process_identity(os.getpid())
    pid, process = owner.get("pid"), owner.get("process")
    if (owner.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0 and isinstance(process, str)
            and process and mine
            and process.split()[0] == mine.split()[0]):  # the same PID namespace: its pids mean the same
        return _process_identity(pid) == process  # gone, or the pid now belongs to another process
    return True


def try_claim(run: Path) -> Claim | None:
    """Claim `run` for this process, or None when a live owner holds it."""
    run.mkdir(parents=True, exist_ok=True)
    path = run / CLAIM
    for _ in range(2):
        owner = _owner()
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            current = read_claim(run)
            if current is None:
                # being written right now, or unreadable garbage: judge by the file's age
                try:
                    if time.time() - path.stat().st_mtime < STALE_S:
                        return None
                except FileNotFoundError:
                    continue
            elif claim_is_live(current):
                return None
            try:  # take the abandoned claim over: only one process can rename this file away
                path.rename(run / f"claim.stale.{owner['token']}")
                _remove(run / f"claim.stale.{owner['token']}")  # a file, or a directory squatting on the name
                log.warning("%s: taking over an abandoned claim of %s", run.name,
                            (current or {}).get("owner"))
            except FileNotFoundError:
                return None
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"owner": owner, "heartbeat": time.time()}, f)
        claim = Claim(path, owner)
        claim._thread.start()
        return claim
    return None


def write_status(run: Path, state: str, **extra) -> None:
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "status.json", {"state": state, "host": socket.gethostname(), "pid": os.getpid(),
                                             "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "time": time.time(),
                                             **extra})


def read_status(run: Path) -> dict | None:
    return read_record(run / "status.json")


def mark_done(run: Path, outputs: list[str], key: str | None = None) -> None:
    """Write DONE last, recording a check of every output (files, or every file under a directory) and the key of
    the run (default: the one `run` is named for)."""
    write_json_atomic(run / DONE, done_record(run, outputs, key or name_key(run)))


def staging_dir(run: Path) -> Path:
    """An empty directory inside `run` to write a finished run's new files into (`swap_in`); one left by an
    interrupted writer is removed first. Call under the run's claim."""
    staged = run / STAGING
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    return staged


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)  # the run directory is synced once, after the last move (`_finish_swap`)


def swap_in(run: Path, staged: Path, files: list[str], outputs: list[str], key: str | None = None) -> None:
    """Move `files` (plain files, all written in `staged`) into `run` and mark it done over `outputs`, crash-safe:
    the journal (SWAP) records the move and the new DONE before anything is moved, so a swap interrupted at any
    point is completed by the next look at the run (`run_state`), and one interrupted before the journal is rolled
    back (the staged files dropped, the run's files untouched). Replaces the files of a finished run (re-scoring)
    without ever leaving it corrupt. `key`: the run's (`mark_done`)."""
    write_json_atomic(run / SWAP, {"staging": staged.name, "files": files,  # lost, the run would be redone
                                   "done": done_record(staged, outputs, key or name_key(run))}, flush=True)
    _finish_swap(run)


def _plain_name(name: object) -> bool:
    """A file name inside one directory (no folder part, not `.` or `..`)."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _read_journal(run: Path) -> dict | None:
    """The run's swap journal, or None where it is damaged: unreadable, or not what `swap_in` writes (the staging
    directory's name, plain file names, a DONE record vouching for files)."""
    journal = read_record(run / SWAP)
    if journal is None or journal.get("staging") != STAGING:
        return None
    files, done = journal.get("files"), journal.get("done")
    if not isinstance(files, list) or not all(_plain_name(name) for name in files):
        return None
    return journal if isinstance(done, dict) and done_files(done) is not None else None


class DamagedJournal(ValueError):
    """A run's swap journal that cannot be read: the run cannot be trusted (`corrupt`)."""


_DAMAGED_SEEN: set[Path] = set()  # runs whose damaged journal this process has warned about


def _finish_swap(run: Path) -> None:
    journal = _read_journal(run)
    if journal is None:
        raise DamagedJournal(f"{run.name}: its swap journal {SWAP} is damaged")
    staged = run / STAGING
    for name in journal["files"]:
        if (staged / name).exists():  # not moved yet
            _move(staged / name, run / name)
    durable.fsync_dir(run)  # the moves reach the disk before the DONE that vouches for them
    write_json_atomic(run / DONE, journal["done"])
    (run / SWAP).unlink()
    shutil.rmtree(staged, ignore_errors=True)


def _settle(run: Path) -> str | None:
    """Complete an interrupted swap (journal written) or roll one back (staged files only): None when settled;
    'running' when a live process holds the run (it may be writing them now); 'corrupt' when the journal is
    damaged (left as found, with the staged files: nothing it names is trusted; `prepare_redo` removes them)."""
    def settle() -> str | None:
        if (run / SWAP).exists():
            if _read_journal(run) is None:
                if run not in _DAMAGED_SEEN:
                    _DAMAGED_SEEN.add(run)
                    log.warning("%s: its swap journal %s is damaged, so its files cannot be trusted: corrupt (the "
                                "next `study run` redoes it)", run.name, SWAP)
                return "corrupt"
            log.warning("%s: completing an interrupted rewrite of its files", run.name)
            _finish_swap(run)
        elif (run / STAGING).exists():
            shutil.rmtree(run / STAGING, ignore_errors=True)
        return None

    if any(c.path.parent == run for c in _HELD):
        return settle()
    claim = try_claim(run)
    if claim is None:
        return "running"
    with claim:
        return settle()


def set_aside(run: Path, prefix: str = STALE) -> Path:
    """Move every file of `run` (under its claim) into a new `<prefix><time>` folder inside it, and return that
    folder: earlier set-aside folders and the claim stay. What says whose files these are (`held_key`) is moved
    last, DONE the very last, so a set-aside interrupted at any point still reads as before (foreign, or done) and
    the next run completes it (into a folder of its own): no file is ever written over."""
    aside = run / f"{prefix}{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"
    aside.mkdir()
    last = ("identity.json", "results.parquet", DONE)
    for path in sorted(run.iterdir(), key=lambda p: (last.index(p.name) if p.name in last else -1, p.name)):
        if path != aside and path.name != CLAIM and not path.name.startswith((FOREIGN, STALE, "claim.")):
            os.replace(path, aside / path.name)
    return aside


def prepare_redo(run: Path, state: str) -> None:
    """Clear a run that is not done (its `run_state`, read under its claim, which settled any sound journal) for
    its redo: its DONE, a damaged swap journal and staged files; where it holds another run's files (`foreign`),
    every file is set aside first, in a `foreign-<time>` folder inside it (the work of a run moved here is kept;
    a training would refuse its checkpoints)."""
    if state == "foreign":
        held = held_key(run, read_record(run / DONE) or {})
        aside = set_aside(run, FOREIGN)
        log.warning("%s held the files of run %s (a directory copied or moved over it): set aside in %s (delete it "
                    "once not needed); the run is redone", run.name, held, aside)
    for name in (DONE, SWAP, STAGING):
        _remove(run / name)


def run_state(run: Path) -> str:
    """done | corrupt | foreign | failed | running | interrupted | pending. An interrupted `swap_in` is settled
    first. `foreign`: the directory holds another run's files (`done.Foreign`; without a DONE, where the files it
    holds name another run: `held_key`)."""
    if (run / SWAP).exists() or (run / STAGING).exists():
        unsettled = _settle(run)
        if unsettled is not None:
            return unsettled
    if (run / DONE).exists():
        problem = verify_done(run)
        return "done" if problem is None else "foreign" if isinstance(problem, Foreign) else "corrupt"
    held = held_key(run, {})  # unfinished, but another run's (its identity.json or results copied over it)
    if held is not None and held != name_key(run):
        return "foreign"
    if claim_is_live(read_claim(run)):
        return "running"
    status = read_status(run)
    if status is None:
        return "interrupted" if (run / "checkpoints").exists() else "pending"
    return "failed" if status.get("state") == "failed" else "interrupted"
