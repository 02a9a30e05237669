"""One writer per run folder (issue 14 item 5): ``run.lock`` held by a live process refuses a
second run, a lock left by a dead one is replaced, and the lock goes away however the run ends.

The other process is a real one: a child Python that takes the lock and sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn.train import RunLock, RunLockedError, TrainConfig, Trainer, Classification
from minicnn.train import lock as lock_module
from minicnn import data

ROOT = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import sys, time
    from minicnn.train import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder():
    """``start(folder)``: a child process that holds ``folder``'s lock until the test ends (then killed)."""
    procs = []

    def start(folder):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_process_is_refused_until_the_first_ends(tmp_path, holder):
    child = holder(tmp_path)
    with pytest.raises(RunLockedError) as ei:
        RunLock(tmp_path).acquire()
    msg = str(ei.value)
    assert f"pid {child.pid}" in msg and "in use by another run" in msg and "another --out" in msg
    child.kill()
    child.wait()
    notes = []
    with RunLock(tmp_path, log=notes.append):  # the kernel dropped the dead child's lock: stale, replaced
        info = json.loads((tmp_path / "run.lock").read_text())
        assert info["pid"] == os.getpid()
    assert len(notes) == 1 and f"stale lock in {tmp_path} left by pid {child.pid}" in notes[0]
    assert not (tmp_path / "run.lock").exists()


def test_a_lock_file_of_a_dead_process_is_replaced(tmp_path):
    pid = dead_pid()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": pid, "host": "h", "started": "s", "command": "c"}))
    notes = []
    with RunLock(tmp_path, log=notes.append):
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    assert f"pid {pid}" in notes[0]


def test_without_flock_the_pid_decides(tmp_path, holder, monkeypatch):
    """Where fcntl is missing (or the file system cannot flock) the pid in the file decides."""
    monkeypatch.setattr(lock_module, "fcntl", None)
    live = holder(tmp_path / "other")  # any live process of this host
    (tmp_path / "run.lock").write_text(json.dumps({"pid": live.pid, "host": lock_module.socket.gethostname()}))
    with pytest.raises(RunLockedError, match=f"pid {live.pid}"):
        RunLock(tmp_path).acquire()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": dead_pid(), "host": lock_module.socket.gethostname()}))
    with RunLock(tmp_path, log=lambda s: None):
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
        # another process, without flock too, sees this live pid and is refused
        code = "import sys; from minicnn.train import lock; lock.fcntl = None; lock.RunLock(sys.argv[1]).acquire()"
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "RunLockedError" in r.stderr and f"pid {os.getpid()}" in r.stderr
    assert not (tmp_path / "run.lock").exists()


def test_reentrant_in_one_process_and_released_on_errors(tmp_path):
    with RunLock(tmp_path):
        with RunLock(tmp_path):  # the experiments hold the folder, the Trainer takes it again
            pass
        assert (tmp_path / "run.lock").exists()
    assert not (tmp_path / "run.lock").exists()
    with pytest.raises(KeyboardInterrupt):
        with RunLock(tmp_path):
            raise KeyboardInterrupt
    assert not (tmp_path / "run.lock").exists()
    RunLock(tmp_path).acquire().release()  # and it can be taken again


def tiny_trainer(out):
    mc.set_backend("numpy")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8), np.arange(16) % 10
    tf = data.Compose([data.ToFloat(), data.Normalize((0.5,) * 3, (0.5,) * 3)])
    model = mc.models.TutorialNet()
    return Trainer(model, mc.optim.SGD(model.parameters(), lr=0.01), Classification(),
                   data.DataLoader((x, y), 8, shuffle=True, transform=tf), data.DataLoader((x, y), 8, transform=tf),
                   num_classes=10, out_dir=out, config=TrainConfig(epochs=1, progress=False), log=lambda s: None)


def test_trainer_refuses_a_locked_folder_and_deletes_nothing(tmp_path, holder):
    tiny_trainer(tmp_path).fit()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "best.npz" in before and "run.lock" not in before  # released at the end of fit
    holder(tmp_path)
    with pytest.raises(RunLockedError):
        tiny_trainer(tmp_path).fit()  # a fresh run would delete best.npz first
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "run.lock"}
    assert after == before


def test_a_task_into_a_folder_in_use_stops_with_one_clear_line(tmp_path, holder):
    child = holder(tmp_path / "task1")
    r = subprocess.run([sys.executable, "-m", "experiments.task1", "--out", str(tmp_path), "--data-dir",
                        str(tmp_path / "no-data")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert f"is in use by another run (pid {child.pid}" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "task1").iterdir()) == ["run.lock"]
