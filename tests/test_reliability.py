"""Crash safety through the real command line: SIGTERM, a second SIGTERM, two runs in one
workdir, a storage failure during a checkpoint write, damaged built datasets, and
untrusted pictures or links in a manual download."""

import glob
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config", "experiments/bot.py:synthetic_tiny", "--config.eval.before_training=False",
        "--config.num_devices=1"]


def _env(tfds_dir):
    return dict(os.environ, TFDS_DATA_DIR=tfds_dir, XLA_FLAGS="", JAX_PLATFORMS="cpu",
                PYTHONPATH=ROOT, JAX_COMPILATION_CACHE_DIR=os.path.join(
                    tempfile.gettempdir(), "reid_jax_xla_cache"))


def _main(args, tfds_dir, **kw):
    return subprocess.run([sys.executable, "-m", "reid_jax.main", *args], cwd=ROOT,
                          env=_env(tfds_dir), capture_output=True, text=True, timeout=300, **kw)


def _start(args, tfds_dir):
    return subprocess.Popen([sys.executable, "-m", "reid_jax.main", *args], cwd=ROOT,
                            env=_env(tfds_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_event(workdir, event, proc, timeout=240):
    """Waits until events.log holds a line of ``proc`` starting with ``event``."""
    path = os.path.join(workdir, "events.log")
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(path):
            with open(path) as f:
                lines = [ln.split(" ", 2) for ln in f.read().splitlines()]
            if any(pid == str(proc.pid) and ev.startswith(event) for _, pid, ev in lines):
                return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} in {path}")


def _one_error(res, *expected):
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def _steps(workdir):
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


def test_sigterm_saves_mid_epoch_and_the_same_command_resumes(tmp_path, tfds_dir):
    workdir = str(tmp_path / "w")
    args = [*TINY, "--config.train.num_epochs=30", "--workdir", workdir]
    proc = _start(args, tfds_dir)
    _wait_for_event(workdir, "train epoch 2", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("preempted:")]
    assert len(lines) == 1 and "run the same command to resume" in lines[0], out
    assert _steps(workdir), "a checkpoint was written on SIGTERM"
    res = _main([*args[:-2], "--config.train.num_epochs=3", "--workdir", workdir], tfds_dir)
    # A different num_epochs is a different config: refused, the checkpoint kept.
    _one_error(res, "different config")
    res = _main(args[:-2] + ["--config.train.stop_after_epochs=3", "--workdir", workdir],
                tfds_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stdout


def test_second_sigterm_exits_at_once_and_keeps_the_last_checkpoint(tmp_path, tfds_dir):
    workdir = str(tmp_path / "w")
    args = [*TINY, "--config.train.num_epochs=3", "--workdir", workdir]
    res = _main([*args, "--config.train.stop_after_epochs=1"], tfds_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    kept = _steps(workdir)
    proc = _start(args, tfds_dir)
    _wait_for_event(workdir, "start at step", proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode in (143, 0), proc.returncode  # 0: it had already saved and stopped
    assert set(kept) <= set(_steps(workdir))
    res = _main(args, tfds_dir)
    assert res.returncode == 0 and "resumed from" in res.stdout, res.stderr[-3000:]


def test_a_second_run_in_the_same_workdir_is_refused(tmp_path, tfds_dir):
    workdir = str(tmp_path / "w")
    args = [*TINY, "--config.train.num_epochs=30", "--workdir", workdir]
    first = _start(args, tfds_dir)
    try:
        _wait_for_event(workdir, "start at step", first)
        _one_error(_main(args, tfds_dir), f"pid {first.pid}", "is training in --workdir")
    finally:
        first.kill()
        first.communicate()
    # The lock dies with its process: a killed run never blocks the workdir.
    res = _main([*args, "--config.train.stop_after_epochs=1"], tfds_dir)
    assert res.returncode == 0, res.stderr[-3000:]


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, tfds_dir):
    """A storage failure while writing (a file-size limit: the write fails with EFBIG as
    it would with ENOSPC on a full disk) ends in one line; the previous checkpoint stays
    and the next run resumes from it."""
    workdir = str(tmp_path / "w")
    args = [*TINY, "--config.train.num_epochs=2", "--workdir", workdir]
    res = _main([*args, "--config.train.stop_after_epochs=1"], tfds_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    kept = _steps(workdir)
    sizes = [os.path.getsize(p) for p in glob.glob(f"{workdir}/checkpoints/**/*", recursive=True)
             if os.path.isfile(p)]
    limit = max(sizes) // 2

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    env = _env(tfds_dir)
    del env["JAX_COMPILATION_CACHE_DIR"]  # only the checkpoint writes big files
    res = subprocess.run([sys.executable, "-m", "reid_jax.main", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    _one_error(res, "cannot write checkpoint", f"the previous checkpoint (step {kept[-1]}) is "
               "intact", "run the same command to resume")
    assert _steps(workdir) == kept
    res = _main(args, tfds_dir)
    assert res.returncode == 0 and "resumed from" in res.stdout, res.stderr[-3000:]


def _tiny_copy(tfds_dir, tmp_path):
    """A copy of the built tiny dataset, and its train split's ArrayRecord file."""
    out = str(tmp_path / "tfds")
    shutil.copytree(os.path.join(tfds_dir, "synthetic_persons"),
                    os.path.join(out, "synthetic_persons"))
    (train,) = glob.glob(f"{out}/synthetic_persons/tiny/*/*-train.array_record*")
    return out, train


def test_a_truncated_array_record_file_is_one_line(tmp_path, tfds_dir):
    data_dir, train = _tiny_copy(tfds_dir, tmp_path)
    with open(train, "r+b") as f:
        f.truncate(os.path.getsize(train) // 3)
    res = _main([*TINY, "--workdir", str(tmp_path / "w")], data_dir)
    _one_error(res, "split 'train' of the built dataset synthetic_persons/tiny",
               "python -m reid_jax.data.build synthetic_persons/tiny")


def test_a_picture_that_no_longer_decodes_is_one_line(tmp_path, tfds_dir):
    from array_record.python import array_record_module

    data_dir, train = _tiny_copy(tfds_dir, tmp_path)
    reader = array_record_module.ArrayRecordReader(train)
    records = reader.read_all()
    reader.close()
    at = records[3].find(b"\x89PNG")
    records[3] = records[3][:at] + b"NOTAPNG!" + records[3][at + 8:]  # same length
    writer = array_record_module.ArrayRecordWriter(train, "group_size:1")
    for r in records:
        writer.write(r)
    writer.close()
    res = _main([*TINY, "--workdir", str(tmp_path / "w")], data_dir)
    _one_error(res, "record 3 of split 'train'", "python -m reid_jax.data.build")


def _png_header(width, height):
    """A PNG whose header announces width x height (its pixel data is one empty row)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def _build(manual, out):
    from tests.data.test_build_cli import run

    return run(["cuhk01", "--manual_dir", manual, "--data_dir", out], shrink=True)


@pytest.mark.parametrize("kind", ["decompression_bomb", "not_a_picture", "link_outside"])
def test_untrusted_pictures_are_refused_by_the_builder(tmp_path, kind):
    from data_builders.cuhk01 import fixture
    from tests.data.test_build_cli import NUM_IDS

    manual = fixture.make_campus(str(tmp_path / "manual"), NUM_IDS)
    victim = sorted(glob.glob(f"{manual}/campus/*.png"))[5]
    if kind == "decompression_bomb":
        with open(victim, "wb") as f:
            f.write(_png_header(30000, 30000))
        expected = "decompression bomb"
    elif kind == "not_a_picture":
        with open(victim, "wb") as f:
            f.write(b"#!/bin/sh\necho this is not a picture\n")
        expected = "cannot identify image file"
    else:
        outside = str(tmp_path / "elsewhere.png")
        shutil.copy(victim, outside)
        os.remove(victim)
        os.symlink(outside, victim)
        expected = "links leading out of the manual_dir are not followed"
    res = _build(manual, str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.startswith("error:") and res.stderr.count("\n") == 1, res.stderr[-3000:]
    assert expected in res.stderr and os.path.basename(victim) in res.stderr, res.stderr
