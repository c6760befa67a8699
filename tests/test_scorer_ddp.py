"""``pointsman train`` under torchrun: two CPU processes, gloo, DistributedDataParallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _scorer_tiny import synthetic_records, tiny_encoder_dir


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r.__dict__) for r in synthetic_records(80)))
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            dict(
                encoder=tiny_encoder_dir(),
                max_tokens=32,
                d_model=32,
                n_layer=1,
                n_head=2,
                default_source="synthetic",
                max_per_task={},
                batch_size=8,
                max_steps=20,
                eval_interval=10,
                threads=1,
            )
        )
    )
    script = tmp_path / "cli.py"
    script.write_text("from pointsman.cli import main\nmain()\n")
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
        "train", "--data", str(data), "--config", str(config), "--out", str(out), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads((out / "last" / "config.json").read_text())
    assert state["meta"]["step"] == 20
    assert (out / "best" / "model.safetensors").exists()
