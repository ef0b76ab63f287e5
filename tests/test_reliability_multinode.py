"""`zoo train --nproc N` keeps torchrun's rendezvous on loopback; `--nnodes` / `--rdzv-endpoint` go to torchrun; two
single-process "nodes" on loopback meet through c10d rendezvous and end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from tests.test_train_infra_tiny import tiny_recipe
from zoo.errors import TrainingError
from zoo.train.distributed import MultiNode, torchrun_args

TINY = Path(__file__).resolve().parent / "test_train_infra_tiny.py"


def test_single_machine_rendezvous_is_loopback():
    args, env = torchrun_args(2)
    assert "--rdzv-endpoint=127.0.0.1:0" in args and "--local-addr=127.0.0.1" in args
    assert "--standalone" not in args and env["ZOO_BIND_LOOPBACK"] == "1"


def test_multi_node_options_pass_through():
    nodes = MultiNode(nnodes="2", rdzv_endpoint="10.0.0.5:29500", rdzv_id="job7", node_rank=1)
    args, env = torchrun_args(4, nodes)
    assert args == [
        "--nnodes=2",
        "--nproc-per-node=4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=10.0.0.5:29500",
        "--rdzv-id=job7",
        "--node-rank=1",
    ]
    assert "ZOO_BIND_LOOPBACK" not in env  # the user asked for other machines: torchrun's own binding
    with pytest.raises(TrainingError, match="needs --rdzv-endpoint"):
        torchrun_args(1, MultiNode(nnodes="2"))
    with pytest.raises(TrainingError, match="is not HOST:PORT"):
        torchrun_args(1, MultiNode(nnodes="2", rdzv_endpoint="10.0.0.5"))


def test_the_launchers_stores_listen_on_loopback_only(monkeypatch):
    """torch's TCPStore listens on every interface whatever host it gets; the launcher's patch binds 127.0.0.1."""
    import datetime

    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend, dynamic_rendezvous

    from zoo.train import distributed

    monkeypatch.setattr(c10d_rendezvous_backend, "TCPStore", c10d_rendezvous_backend.TCPStore)
    monkeypatch.setattr(
        dynamic_rendezvous.DynamicRendezvousHandler,
        "_create_tcp_store_server",
        dynamic_rendezvous.DynamicRendezvousHandler._create_tcp_store_server,
    )
    before = {c.laddr for c in psutil.Process().net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    distributed._loopback_stores()
    store = c10d_rendezvous_backend.TCPStore(
        "127.0.0.1", 0, is_master=True, multi_tenant=True, timeout=datetime.timedelta(seconds=10)
    )
    shared = dynamic_rendezvous.DynamicRendezvousHandler._create_tcp_store_server(None, "127.0.0.1", 0)
    store.set("k", "v")
    assert shared.port != store.port
    listening = {c.laddr for c in psutil.Process().net_connections("tcp") if c.status == psutil.CONN_LISTEN} - before
    assert {a.port for a in listening} >= {store.port, shared.port}
    assert {a.ip for a in listening} == {"127.0.0.1"}


@pytest.mark.slow
def test_two_single_process_nodes_on_loopback_end_with_identical_weights(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=3, checkpoint_every=3, dump_dir=str(dump))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args, extra = torchrun_args(1, MultiNode(nnodes="2", rdzv_endpoint=f"127.0.0.1:{port}", rdzv_id="zoo-test"))
    assert extra.get("ZOO_BIND_LOOPBACK") == "1"
    env = {**os.environ, **extra, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "zoo.train.distributed", *args, str(TINY), "train", str(recipe), "--quiet"]
    nodes = [
        subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(TINY.parent.parent)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outs = [n.communicate(timeout=300)[0].decode() for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(outs)
    assert sum(o.count("Trained tiny for 3 steps") for o in outs) == 1  # rank 0 alone reports
    last0 = torch.load(dump / "rank0_step3.pt", weights_only=True)
    last1 = torch.load(dump / "rank1_step3.pt", weights_only=True)
    assert last0["batch_sum"] != last1["batch_sum"]  # each rank trained on its own shard
    for key, value in last0["weights"].items():
        torch.testing.assert_close(value, last1["weights"][key], rtol=0, atol=0, msg=key)
    first = torch.load(dump / "rank0_step1.pt", weights_only=True)["weights"]
    assert any(not torch.equal(first[k], v) for k, v in last0["weights"].items())  # and they did train
