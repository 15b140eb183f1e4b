"""Checks every LightningModule of the lessons must pass (issue: "every LightningModule is complete").

Each ``tests/test_<topic>.py`` calls these with a factory that builds a *fresh* system (seeded
inside the factory) and small data. They use only public Lightning API:

- `check_predict`: ``trainer.predict`` returns what the system computes in eval mode;
- `check_checkpoint`: ``load_from_checkpoint`` gives the same predictions;
- `check_resume`: a run stopped after one epoch and resumed from its checkpoint ends with the same
  weights as an uninterrupted run;
- `check_ddp`: DDP with 2 CPU processes gives the validation loss of one process with the same
  global batch. The processes are forked (``ddp_fork``: the same DDP, gradient all-reduce and
  ``sync_dist`` logging, without each worker importing torch again, about 1 s instead of 15–45 s),
  and the system must survive the pickling ``ddp_spawn`` does; tests/test_rnn.py runs one check
  with real ``ddp_spawn`` end to end;
- `check_bf16`: ``precision="bf16-mixed"`` on CPU trains to a finite loss;
- `check_gpu`: the same on ``accelerator="gpu"`` (skipped without CUDA);
- `check_swap`: replacing torch.nn layers inside a system by the lessons' drop-ins (``from_torch``)
  gives equal outputs and gradients.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import os
import pickle
import runpy
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning_fabric").setLevel(logging.WARNING)

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, deterministic=True)


def trainer(**kwargs) -> pl.Trainer:
    """A quiet CPU trainer; ``kwargs`` override or add Trainer arguments."""
    options = dict(QUIET, accelerator="cpu", devices=1, enable_checkpointing=False, max_epochs=1)
    options.update(kwargs)
    return pl.Trainer(**options)


def _fit(t: pl.Trainer, system, train, val=None, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*val_dataloader.*")
        t.fit(system, train, val, **kwargs)
    return t


def _outputs(batches) -> list[torch.Tensor]:
    return [b if isinstance(b, torch.Tensor) else b[0] for b in batches]


def _cat(outputs) -> torch.Tensor:
    return torch.cat([o.float().flatten() for o in _outputs(outputs)])


def check_predict(make_system: Callable[[], pl.LightningModule], loader: DataLoader) -> None:
    system = make_system()
    predictions = trainer().predict(system, loader)
    assert predictions, "trainer.predict returned nothing"
    system.eval()
    with torch.no_grad():
        expected = [system.predict_step(batch, i) for i, batch in enumerate(loader)]
    torch.testing.assert_close(_cat(predictions), _cat(expected))


def check_checkpoint(make_system, train: DataLoader, predict: DataLoader, tmp_path: Path, **load_kwargs) -> None:
    """Train one epoch, save, load with ``load_kwargs`` (e.g. ``model=Model(...)``): same predictions."""
    system = make_system()
    t = _fit(trainer(default_root_dir=tmp_path), system, train)
    path = tmp_path / "system.ckpt"
    t.save_checkpoint(path)
    loaded = type(system).load_from_checkpoint(path, **load_kwargs)
    before = trainer().predict(system, predict)
    after = trainer().predict(loaded, predict)
    torch.testing.assert_close(_cat(after), _cat(before))
    assert dict(loaded.hparams) == {k: v for k, v in system.hparams.items()}, (loaded.hparams, system.hparams)


def check_resume(make_system, train: DataLoader, val: DataLoader, tmp_path: Path, epochs: int = 2) -> None:
    """Stopped after one epoch and resumed == uninterrupted (weights, to float tolerance)."""
    pl.seed_everything(0, verbose=False)
    straight = _fit(trainer(max_epochs=epochs), make_system(), train, val).lightning_module
    pl.seed_everything(0, verbose=False)
    first = _fit(trainer(max_epochs=1, default_root_dir=tmp_path), make_system(), train, val)
    path = tmp_path / "epoch1.ckpt"
    first.save_checkpoint(path)
    pl.seed_everything(1, verbose=False)  # the resumed run must not depend on the seed left behind
    resumed = _fit(trainer(max_epochs=epochs), make_system(), train, val, ckpt_path=path).lightning_module
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(b, a, msg=lambda m: f"{name}: {m}")


class _RankSlice(torch.utils.data.Sampler):
    """Rank r of w reads items r, r + w, r + 2w … in order: w ranks × batch b/w cover the same items
    as one process × batch b (Lightning's own DistributedSampler would shuffle the training set)."""

    def __init__(self, dataset) -> None:
        self.size = len(dataset)

    def _slice(self):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return range(dist.get_rank(), self.size, dist.get_world_size())
        return range(self.size)

    def __iter__(self):
        return iter(self._slice())

    def __len__(self) -> int:
        return len(self._slice())


def spawned(run: Callable[[], object], attempts: int = 3):
    """``run()`` (a ``ddp_fork``/``ddp_spawn`` fit), started again if a worker process crashes.

    A worker that dies at exit ("terminate called without an active exception", SIGABRT; about one
    spawn in fifty on a busy 2-core machine) says nothing about the system under test. A wrong value is
    an ``AssertionError`` raised by the caller afterwards and is never retried.
    """
    for attempt in range(attempts):
        try:
            return run()
        except torch.multiprocessing.ProcessExitedException:
            if attempt == attempts - 1:
                raise


def check_ddp(make_system, dataset, batch_size: int, tmp_path: Path, monitor: str = "val_loss",
              strategy: str = "ddp_fork") -> None:
    """2 processes × batch_size/2 == 1 process × batch_size: same validation loss after one epoch."""
    def loader(b):
        return DataLoader(dataset, batch_size=b, sampler=_RankSlice(dataset))

    system = make_system()
    twin = pickle.loads(pickle.dumps(system))  # what ddp_spawn sends to each worker
    for (name, a), b in zip(system.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(b, a, msg=lambda m: f"{name} after pickling: {m}")
    one = _fit(trainer(max_epochs=1, use_distributed_sampler=False), system, loader(batch_size), loader(batch_size))
    two = spawned(lambda: _fit(trainer(max_epochs=1, strategy=strategy, devices=2, default_root_dir=tmp_path,
                                       use_distributed_sampler=False),
                               make_system(), loader(batch_size // 2), loader(batch_size // 2)))
    a, b = float(one.callback_metrics[monitor]), float(two.callback_metrics[monitor])
    assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), f"{monitor}: 1 process {a}, 2 processes {b}"


def check_bf16(make_system, train: DataLoader, monitor: str = "train_loss") -> None:
    t = _fit(trainer(max_epochs=1, precision="bf16-mixed"), make_system(), train)
    value = float(t.callback_metrics[monitor])
    assert torch.isfinite(torch.tensor(value)), f"{monitor} = {value} under bf16-mixed"


def check_gpu(make_system, train: DataLoader, monitor: str = "train_loss") -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    t = _fit(trainer(max_epochs=1, accelerator="gpu"), make_system(), train)
    assert torch.isfinite(torch.tensor(float(t.callback_metrics[monitor])))


def swap(module: nn.Module, replacements: dict[type, Callable[[nn.Module], nn.Module]]) -> nn.Module:
    """A deep copy of ``module`` whose submodules of the given types are replaced (e.g. by ``from_torch``)."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_modules()):
        for kind, make in replacements.items():
            if type(child) is kind and name:
                parent = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
                setattr(parent, name.rpartition(".")[2], make(child))
    return module


def check_swap(system: nn.Module, replacements: dict, inputs: tuple, atol: float = 1e-10) -> None:
    """Same outputs and gradients (float64) after swapping torch.nn layers for the lessons' drop-ins.

    Gradients are compared for the float inputs and for every parameter the two systems share by
    name (heads, embeddings …): whatever flows back through the swapped layer must be the same.
    """
    system = system.double().eval()
    swapped = swap(system, replacements)
    assert [type(m) for m in system.modules()] != [type(m) for m in swapped.modules()], "nothing was swapped"
    grads = []
    for model in (system, swapped):
        xs = tuple(x.detach().double().requires_grad_() if x.is_floating_point() else x for x in inputs)
        out = model(*xs)
        out.square().sum().backward()
        named = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        grads.append((out.detach(), [x.grad for x in xs if x.is_floating_point()], named))
    (a, ga, na), (b, gb, nb) = grads
    torch.testing.assert_close(b, a, atol=atol, rtol=0)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(y, x, atol=atol, rtol=0)
    shared = sorted(set(na) & set(nb))
    assert shared or ga, "no gradient to compare"
    for name in shared:
        torch.testing.assert_close(nb[name], na[name], atol=atol, rtol=0, msg=lambda m: f"{name}: {m}")


def load_script(path: Path, name: str, register: bool = False):
    """The module the file at ``path`` defines (a benchmark script, a hook), imported in this process
    under ``name``, so a test calls its functions without starting Python and torch again.
    ``register=True`` also puts it in ``sys.modules``: worker processes (``--jobs``) find its
    functions by name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_script(script, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python <script> <args>``, run in this process: the file executes as ``__main__`` with its
    folder first on ``sys.path``, as the interpreter would run it, without starting a new interpreter
    and importing torch and Lightning again (several seconds per call). Returns what
    ``subprocess.run(..., capture_output=True, text=True)`` would."""
    script = Path(script)
    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_argv, saved_path, saved_modules, saved_cwd = sys.argv[:], sys.path[:], set(sys.modules), os.getcwd()
    sys.argv, sys.path[:0] = [str(script), *args], [str(script.parent)]
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, int) and exit_.code is not None:
            err.write(str(exit_.code))
    except Exception:  # what the interpreter does with an uncaught error: traceback on stderr, status 1
        code = 1
        err.write(traceback.format_exc())
    finally:
        os.chdir(saved_cwd)
        sys.argv, sys.path[:] = saved_argv, saved_path
        if script.stem not in saved_modules:  # the module the __main__ block imported by its file name
            sys.modules.pop(script.stem, None)
    return subprocess.CompletedProcess([sys.executable, str(script), *args], code, out.getvalue(), err.getvalue())
