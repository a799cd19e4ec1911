"""dcnn_helpers.distributed and the trainer under torchrun: two gloo processes on CPU match one process, resume
exactly after a killed job, write files from rank 0 only; launcher variables, sharding and bad configurations."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from dcnn_helpers import bench, checkpoint, config, data, distributed, train

HERE = Path(__file__).resolve().parent
# 64 images: 4 steps per epoch; no augmentation
CFG = train.TrainConfig(model="bn-free", epochs=2, batch_size=16, lr=0.05, translate=0, flip="none")
CLI = ["train", "--model", "resnet-8", "--epochs", "4", "--batch-size", "16", "--lr", "0.05", "--device", "cpu", "--quiet"]

# Run by torchrun in every rank. "equal": train bn_free_net with FIT (rank 0 saves its weights), then the CLI run.
# "kill": the CLI run, whose rank 0 kills itself (SIGKILL) at its 10th step, inside epoch 3. Both log which rank
# writes a checkpoint.
JOB = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from dcnn_helpers import bench, checkpoint, data, distributed, train
    sys.path.insert(0, sys.argv[1])
    from test_distributed import CFG, bn_free_net

    mode, cache, out, *argv = sys.argv[2:]
    real_save, real_step_batch, calls = checkpoint.save, train.step_batch, []

    def logged_save(path, state):
        with open(out + ".writers", "a") as log:
            log.write(f"{distributed.world()[0]}\\n")
        real_save(path, state)

    def killed_at_step_10(*args):
        calls.append(1)
        if len(calls) == 10 and distributed.is_main():
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step_batch(*args)

    checkpoint.save = logged_save
    with distributed.process_group("cpu") as device:
        if mode == "equal":
            net = bn_free_net()
            train.fit(net, data.load_cifar(cache), CFG, device=device, progress=False)
            if distributed.is_main():
                torch.save(net.state_dict(), out)
        else:
            train.step_batch = killed_at_step_10
        sys.exit(bench.main(argv))
    """
)


@pytest.fixture(scope="module")
def cache(make_fake_cache):
    return make_fake_cache(64, 25)


def bn_free_net():
    config.seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )


def torchrun(*target, timeout=120):
    """Two gloo processes on this machine, started by PyTorch's own launcher."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *target]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(config.REPO_ROOT)}
    return subprocess.run(command, capture_output=True, text=True, cwd=config.REPO_ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def jobs(cache, tmp_path_factory):
    """The torchrun jobs of this file (3 launches in all): equal + clean, killed, resumed."""
    tmp = tmp_path_factory.mktemp("jobs")
    (tmp / "job.py").write_text(JOB)
    clean = [*CLI, "--data", str(cache), "--checkpoint", str(tmp / "clean.pt"), "--json", str(tmp / "clean.json")]
    equal = torchrun(str(tmp / "job.py"), str(HERE), "equal", str(cache), str(tmp / "ddp.pt"), *clean)
    killed_argv = [*CLI, "--data", str(cache), "--checkpoint", str(tmp / "run.pt")]
    killed = torchrun(str(tmp / "job.py"), str(HERE), "kill", str(cache), str(tmp / "killed"), *killed_argv)
    killed_checkpoint = checkpoint.load(tmp / "run.pt") if (tmp / "run.pt").exists() else None
    resumed = torchrun("-m", "dcnn_helpers.bench", *killed_argv, "--resume", "--json", str(tmp / "resumed.json"))
    return dict(tmp=tmp, equal=equal, killed=killed, killed_checkpoint=killed_checkpoint, resumed=resumed)


def test_two_gloo_processes_match_one_process(jobs, cache):
    assert jobs["equal"].returncode == 0, jobs["equal"].stderr[-3000:]
    single = bn_free_net()
    train.fit(single, data.load_cifar(cache), CFG, device="cpu", progress=False)
    ddp = torch.load(jobs["tmp"] / "ddp.pt")
    assert not torch.equal(ddp["7.weight"], bn_free_net()[7].weight), "training changed the weights"
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp[name], value, rtol=0, atol=1e-6, msg=name)


def test_only_rank_0_prints_and_writes(jobs):
    tmp, run = jobs["tmp"], jobs["equal"]
    assert run.stdout.count("resnet-8: test accuracy") == 1
    assert (tmp / "ddp.pt.writers").read_text().split() == ["0"] * 4  # one checkpoint per epoch, all by rank 0
    assert (tmp / "killed.writers").read_text().split() == ["0"] * 2
    assert sorted(p.name for p in tmp.iterdir() if p.suffix in (".pt", ".json", ".part")) == [
        "clean.json", "clean.pt", "ddp.pt", "resumed.json", "run.pt"]
    result = json.loads((tmp / "clean.json").read_text())
    assert result["world_size"] == 2 and result["config"]["batch_size"] == 16
    assert result["images_per_second"] == pytest.approx(4 * 64 / result["seconds"])  # both ranks' images


def test_killed_job_resumes_exactly(jobs):
    assert jobs["killed"].returncode != 0, "the job was killed"
    assert jobs["killed_checkpoint"]["epoch"] == 2 and jobs["killed_checkpoint"]["world_size"] == 2
    assert jobs["resumed"].returncode == 0, jobs["resumed"].stderr[-3000:]
    clean = json.loads((jobs["tmp"] / "clean.json").read_text())
    resumed = json.loads((jobs["tmp"] / "resumed.json").read_text())
    for key in ("train_loss", "train_acc", "test_acc"):
        assert [h[key] for h in resumed["history"]] == [h[key] for h in clean["history"]], key
    a, b = checkpoint.load(jobs["tmp"] / "clean.pt"), checkpoint.load(jobs["tmp"] / "run.pt")
    assert b["epoch"] == 4
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_resume_with_another_number_of_processes_is_refused(jobs, cache, capsys):
    with pytest.raises(SystemExit):
        bench.main([*CLI, "--data", str(cache), "--checkpoint", str(jobs["tmp"] / "clean.pt"), "--resume"])
    assert "written by a job of 2 process(es), this job has 1" in capsys.readouterr().err


def test_launch_from_env():
    assert distributed.launch_from_env({}) is None
    assert distributed.launch_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == distributed.Launch(
        3, 4, 1)
    with pytest.raises(ValueError, match="WORLD_SIZE, LOCAL_RANK not"):
        distributed.launch_from_env({"RANK": "0"})
    with pytest.raises(ValueError, match="RANK < WORLD_SIZE"):
        distributed.launch_from_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})


@pytest.mark.parametrize("world_size", [2, 4])
def test_shards_use_every_image_once_and_rebuild_each_global_step(world_size):
    n, steps, batch = 70, 4, 16  # 6 images beyond the last full batch are dropped, as in one process
    plan = train.epoch_plan(n, torch.Generator().manual_seed(0))
    shards = [distributed.shard_epoch(plan, steps, batch, rank, world_size) for rank in range(world_size)]
    share = batch // world_size
    for step in range(steps):
        together = [torch.cat(parts) for parts in zip(*(train.step_batch(s, step, share) for s in shards))]
        for mine, single in zip(together, train.step_batch(plan, step, batch)):  # indices, crops, flips
            assert torch.equal(mine, single)
    used = torch.cat([s.order for s in shards])
    assert len(used) == steps * batch and len(set(used.tolist())) == len(used)
    assert distributed.shard_epoch(plan, steps, batch) is plan  # one process: unchanged


def test_test_set_shards_cover_each_image_once():
    for n, size in ((25, 2), (10, 4), (3, 4)):
        parts = [distributed.shard_range(n, rank, size) for rank in range(size)]
        assert sum((list(range(n))[p] for p in parts), []) == list(range(n))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_indivisible_batch_names_both_numbers(cache, monkeypatch):
    with pytest.raises(ValueError, match="batch size 30 is not divisible by the 4 processes"):
        distributed.local_batch(30, 4)
    monkeypatch.setattr(distributed, "world", lambda: (0, 4))  # as if rank 0 of 4: fit refuses before any exchange
    with pytest.raises(ValueError, match="batch size 30 is not divisible by the 4 processes"):
        train.fit(bn_free_net(), data.load_cifar(cache), train.TrainConfig(epochs=1, batch_size=30), device="cpu",
                  progress=False)


def test_nccl_without_gpus_and_cpu_sync_bn_are_refused(cache, monkeypatch, capsys):
    cpu = torch.device("cpu")
    assert distributed.backend_for(cpu) == "gloo"
    with pytest.raises(ValueError, match="'nccl' needs one CUDA GPU per process"):
        distributed.backend_for(cpu, "nccl")
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        bench.main(["train", "--data", str(cache), "--model", "fast", "--epochs", "1", "--device", "cpu",
                    "--dist-backend", "nccl"])
    assert "'nccl' needs one CUDA GPU per process" in capsys.readouterr().err
    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    with pytest.raises(ValueError, match="SyncBatchNorm synchronises GPU tensors only"):
        distributed.convert_sync_bn(bn_free_net(), cpu)


def test_single_process_is_unchanged():
    model = bn_free_net()
    assert distributed.world() == (0, 1) and distributed.is_main()
    assert distributed.wrap(model, torch.device("cpu")) is model
    with distributed.process_group("cpu") as device:
        assert device == torch.device("cpu") and not torch.distributed.is_initialized()
