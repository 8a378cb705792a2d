"""SIGKILL a process in the middle of its writes, again and again: the store stays whole.

After each kill the store must open, every record must decode and match its own key and
generation (no torn value), all records must carry one generation (transactions are atomic), and
that generation must be at least the last one the child reported as committed (commits are
durable) and at most one more (the commit it had not reported yet).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protocol.records import AuditEntry
from storage import Store
from tests.integration.storage_crash_child import (
    CODEC,
    DB,
    RECORDS,
    CrashRecord,
    payload,
    record_keys,
)

CHILD = Path(__file__).with_name("storage_crash_child.py")
REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("STORAGE_CRASH_ROUNDS", "5"))
"""Kills per run; raise it for a soak: ``STORAGE_CRASH_ROUNDS=200 pytest ...``."""
WAIT = 60.0


def start_child(directory: Path) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def next_line(lines: queue.Queue[str | None], proc: subprocess.Popen[str]) -> str:
    line = lines.get(timeout=WAIT)
    if line is None:
        stderr = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"the writer exited early ({proc.poll()}): {stderr}")
    return line


def verify(directory: Path, reported: int, context: str) -> int:
    """Check the store after a kill; return its generation."""
    with Store.open(directory, codec=CODEC) as store:
        records = list(store.items(DB, expect=CrashRecord))
        assert store.bad_values == 0, f"{context}: undecodable records"
        assert [key for key, _ in records] == record_keys(), f"{context}: records missing"
        generations = {rec.generation for _, rec in records}
        assert len(generations) == 1, f"{context}: mixed generations {sorted(generations)}"
        (generation,) = generations
        for key, rec in records:
            assert rec.key == key.decode(), f"{context}: {key!r} holds {rec.key}"
            assert rec.payload == payload(rec.key, generation), f"{context}: {key!r} is torn"
        assert generation >= reported, f"{context}: lost commit {reported} (store has {generation})"
        assert generation <= reported + 1, f"{context}: store has {generation}, > {reported} + 1"
        audit = [entry for _, entry in store.items("audit", expect=AuditEntry)]
        assert len(audit) == generation, f"{context}: {len(audit)} audit entries"
        assert audit[-1].detail == {"gen": str(generation)}, f"{context}: audit out of step"
    return generation


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_sigkill_never_tears_or_loses_a_commit(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    generation = 0
    outcomes: list[int] = []  # 1 where the kill fell between a commit and its report
    for round_no in range(ROUNDS):
        context = f"seed {seed}, round {round_no}"
        commits_before_kill = rng.randint(3, 80)
        proc, lines = start_child(tmp_path)
        try:
            start = next_line(lines, proc).split()
            assert start == ["start", str(generation)], f"{context}: child found {start}"
            reported = generation
            for _ in range(commits_before_kill):
                reported = int(next_line(lines, proc))
            # jitter, so the kill lands anywhere in the writer's cycle (building the
            # transaction, committing, printing); it waits for nothing
            time.sleep(rng.uniform(0, 0.004))
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=WAIT) == -signal.SIGKILL
            while (line := lines.get(timeout=WAIT)) is not None:  # reported before it died
                if line.endswith("\n"):
                    reported = int(line)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=WAIT)
        assert reported >= generation + commits_before_kill
        generation = verify(tmp_path, reported, context)
        outcomes.append(generation - reported)
    assert generation >= ROUNDS * 3
    assert len(record_keys()) == RECORDS
    print(f"seed {seed}: {ROUNDS} kills, {sum(outcomes)} between a commit and its report")
