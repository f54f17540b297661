"""Python's side of hookline's interop tests (issue 30), with Debian's python3-torch (1.13).

  interop.py make DIR    writes what the C++ side reads:
      DIR/lightning.ckpt          a checkpoint in Lightning 2.2's layout, built by hand (Lightning
                                  is not a Debian package): torch.save of the dict Lightning's
                                  _CheckpointConnector.dump_checkpoint makes
      DIR/lightning.expect.bin    its weights, then Adam's exp_avg and exp_avg_sq, float32, raw
      DIR/lightning.expect.txt    "epoch global_step scheduler_last_epoch"
      DIR/model.pt                a model scripted with torch.jit.script, with training_step,
                                  validation_step and configure_optimizers
  interop.py check DIR   checks what the C++ side wrote:
      DIR/hookline.ckpt           torch.load opens it; Lightning's keys and layouts; its tensors
                                  equal DIR/hookline.reference.pt's bit for bit
      DIR/trained.pt              torch.jit.load opens it and gives DIR/cpp_out.pt's outputs, bit
                                  for bit; the checkpoint of that training loads into the Python
                                  (unscripted) model, which gives them too

The C++ side is test/core/interop_tests.cpp (suite `interop`); test/interop/run.cmake runs both.
"""
import os
import sys
import types
from typing import Dict, Tuple

import torch
from torch import Tensor

EARLY_STOPPING = "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
MODEL_CHECKPOINT = ("ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0,"
                    " 'every_n_epochs': 1, 'train_time_interval': None}")


class Net(torch.nn.Module):
    """The C++ tests' InteropNet: the same parameter names and shapes."""

    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(4, 8)
        self.l2 = torch.nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(torch.tanh(self.l1(x)))

    @torch.jit.export
    def training_step(self, batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]:
        loss = torch.nn.functional.mse_loss(self.forward(batch["x"]), batch["y"])
        return {"loss": loss}

    @torch.jit.export
    def validation_step(self, batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]:
        return {"val_loss": torch.nn.functional.mse_loss(self.forward(batch["x"]), batch["y"])}

    @torch.jit.export
    def configure_optimizers(self) -> Tuple[str, Dict[str, float]]:
        return ("Adam", {"lr": 0.01, "weight_decay": 0.0})


def probe_input() -> Tensor:
    """The input both sides evaluate the trained script on (exact values)."""
    return (torch.arange(40, dtype=torch.float32) / 8 - 2.5).reshape(10, 4)


def attribute_dict_class():
    """A stand-in for Lightning's AttributeDict, pickled under its module's name."""
    name = "lightning.fabric.utilities.data"
    for i in range(1, 5):
        sys.modules.setdefault(".".join(name.split(".")[:i]), types.ModuleType(name))
    module = sys.modules[name]

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = name
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict
    return AttributeDict


def progress(**counts):
    return {"total": dict(counts), "current": dict(counts)}


def lightning_checkpoint(model, optimizer, scheduler, epoch, step, batches):
    """The dict Lightning 2.2 saves at on_train_epoch_end of `epoch` (loops/progress.py counters,
    loops/loop.py key names, checkpoint_connector.py's top-level keys)."""
    fit_loop = {
        "state_dict": {},
        "epoch_loop.state_dict": {"_batches_that_stepped": step},
        "epoch_loop.batch_progress": dict(
            progress(ready=batches, started=batches, processed=batches, completed=batches),
            is_last_batch=True),
        "epoch_loop.scheduler_progress": progress(ready=epoch, completed=epoch),
        "epoch_loop.automatic_optimization.state_dict": {},
        "epoch_loop.automatic_optimization.optim_progress": {
            "optimizer": {"step": progress(ready=step, completed=step),
                          "zero_grad": progress(ready=step, started=step, completed=step)}},
        "epoch_loop.manual_optimization.state_dict": {},
        "epoch_loop.manual_optimization.optim_step_progress": progress(ready=0, completed=0),
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.batch_progress": dict(
            progress(ready=2, started=2, processed=2, completed=2), is_last_batch=True),
        "epoch_progress": progress(ready=epoch + 1, started=epoch + 1, processed=epoch + 1,
                                   completed=epoch),
    }
    evaluation = {"state_dict": {},
                  "batch_progress": dict(progress(ready=0, started=0, processed=0, completed=0),
                                         is_last_batch=False)}
    loops = {"fit_loop": fit_loop, "validate_loop": evaluation, "test_loop": evaluation,
             "predict_loop": {"state_dict": {},
                              "batch_progress": progress(ready=0, started=0, processed=0,
                                                         completed=0)}}
    callbacks = {
        EARLY_STOPPING: {"wait_count": 1, "stopped_epoch": 0, "best_score": torch.tensor(0.25),
                         "patience": 3},
        MODEL_CHECKPOINT: {"monitor": "val_loss", "best_model_score": torch.tensor(0.25),
                           "best_model_path": "/elsewhere/epoch=0-step=4.ckpt",
                           "current_score": torch.tensor(0.5), "dirpath": "/elsewhere",
                           "best_k_models": {"/elsewhere/epoch=0-step=4.ckpt": torch.tensor(0.25)},
                           "kth_best_model_path": "/elsewhere/epoch=0-step=4.ckpt",
                           "kth_value": torch.tensor(0.25), "last_model_path": ""},
        "PythonOnlyCallback": {"seen": 3},
    }
    AttributeDict = attribute_dict_class()
    return {
        "epoch": epoch,
        "global_step": step,
        "pytorch-lightning_version": "2.2.5",
        "state_dict": model.state_dict(),
        "loops": loops,
        "callbacks": callbacks,
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 8, "lr": 0.01, "loss_fn": torch.nn.MSELoss(),
                             "data": AttributeDict(batch_size=4)},
    }


def make(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x = torch.randn(16, 4)
    y = torch.randn(16, 2)
    step = 0
    for epoch in range(2):  # 2 epochs of 4 batches; saved at the end of the second
        for b in range(4):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[4 * b:4 * b + 4]), y[4 * b:4 * b + 4])
            loss.backward()
            optimizer.step()
            step += 1
        if epoch == 0:
            scheduler.step()
    ckpt = lightning_checkpoint(model, optimizer, scheduler, epoch=1, step=step, batches=4)
    torch.save(ckpt, os.path.join(out, "lightning.ckpt"))
    params = list(model.parameters())
    blobs = [p.detach() for p in model.state_dict().values()]
    blobs += [optimizer.state[p]["exp_avg"] for p in params]
    blobs += [optimizer.state[p]["exp_avg_sq"] for p in params]
    with open(os.path.join(out, "lightning.expect.bin"), "wb") as f:
        for t in blobs:
            f.write(t.contiguous().numpy().tobytes())
    with open(os.path.join(out, "lightning.expect.txt"), "w") as f:
        f.write(f"1 {step} {scheduler.last_epoch}\n")
    torch.manual_seed(1)
    torch.jit.save(torch.jit.script(Net()), os.path.join(out, "model.pt"))


def same_bits(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape
            and a.contiguous().numpy().tobytes() == b.contiguous().numpy().tobytes())


def check(out):
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    ckpt = torch.load(os.path.join(out, "hookline.ckpt"))
    for key in ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops",
                "callbacks", "optimizer_states", "lr_schedulers", "hyper_parameters"):
        expect(key in ckpt, f"hookline.ckpt has no '{key}'")
    reference = torch.load(os.path.join(out, "hookline.reference.pt"))
    for name, tensor in reference["state_dict"].items():
        expect(same_bits(ckpt["state_dict"][name], tensor), f"state_dict['{name}'] differs")
    expect(ckpt["epoch"] == reference["epoch"] and ckpt["global_step"] == reference["global_step"],
           "epoch / global_step differ")
    # Lightning's loops: what _FitLoop.load_state_dict reads (progress records with total and
    # current), and its trainer.current_epoch / global_step from them.
    fit = ckpt["loops"]["fit_loop"]
    for key in ("epoch_progress", "epoch_loop.batch_progress",
                "epoch_loop.automatic_optimization.optim_progress",
                "epoch_loop.manual_optimization.optim_step_progress"):
        expect(key in fit, f"loops.fit_loop has no '{key}'")
    expect(fit["epoch_progress"]["current"]["completed"] == ckpt["epoch"],
           "epoch_progress.current.completed is not 'epoch'")
    steps = fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
    expect(steps["total"]["completed"] == ckpt["global_step"], "optimizer steps are not 'global_step'")
    expect("is_last_batch" in fit["epoch_loop.batch_progress"], "batch_progress has no is_last_batch")
    # Lightning's trackers take what they are given (__dict__.update): a missing counter would
    # silently stay 0, so every one of its dataclass fields must be there.
    trackers = {"epoch_progress": ("ready", "started", "processed", "completed"),
                "epoch_loop.batch_progress": ("ready", "started", "processed", "completed"),
                "epoch_loop.manual_optimization.optim_step_progress": ("ready", "completed")}
    for key, fields in trackers.items():
        for part in ("total", "current"):
            expect(key in fit and set(fit[key][part]) == set(fields),
                   f"loops.fit_loop['{key}']['{part}'] has not the fields {fields}")
    optim = fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]
    expect(set(optim["zero_grad"]["total"]) == {"ready", "started", "completed"},
           "optim_progress.optimizer.zero_grad has not its fields")
    for loop in ("validate_loop", "test_loop", "predict_loop"):
        expect(loop in ckpt["loops"], f"loops has no '{loop}'")
    # Callbacks under Lightning's state keys, with tensors where Lightning keeps tensors.
    es = ckpt["callbacks"].get(EARLY_STOPPING)
    expect(es is not None and torch.is_tensor(es["best_score"]) and
           set(es) == {"wait_count", "stopped_epoch", "best_score", "patience"},
           f"callbacks has no EarlyStopping state in Lightning's form: {sorted(ckpt['callbacks'])}")
    mc = ckpt["callbacks"].get(MODEL_CHECKPOINT)
    expect(mc is not None and torch.is_tensor(mc["kth_value"]) and "best_model_path" in mc,
           f"callbacks has no ModelCheckpoint state in Lightning's form: {sorted(ckpt['callbacks'])}")
    # PyTorch's Optimizer.state_dict() and LRScheduler.state_dict() layouts: they load.
    model = Net()
    model.load_state_dict(ckpt["state_dict"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    optimizer.load_state_dict(ckpt["optimizer_states"][0])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scheduler.load_state_dict(ckpt["lr_schedulers"][0])
    expect(scheduler.last_epoch == reference["scheduler_last_epoch"],
           "the scheduler's last_epoch differs")
    exp_avg = reference["exp_avg"]
    state = optimizer.state[model.l1.weight]
    expect(same_bits(state["exp_avg"], exp_avg), "Adam's exp_avg differs")
    expect(ckpt["hyper_parameters"].get("hidden") == 8, "hyper_parameters differ")

    # The script trained in C++ comes back with the outputs C++ computed.
    trained = torch.jit.load(os.path.join(out, "trained.pt"))
    trained.eval()
    cpp = torch.load(os.path.join(out, "cpp_out.pt"))
    with torch.no_grad():
        expect(same_bits(trained(probe_input()), cpp["out"]), "trained.pt gives other outputs")
        script_ckpt = torch.load(os.path.join(out, "script.ckpt"))
        plain = Net()
        plain.load_state_dict(script_ckpt["state_dict"])
        expect(same_bits(plain(probe_input()), cpp["out"]),
               "the script's checkpoint in the Python model gives other outputs")
        initial = torch.jit.load(os.path.join(out, "model.pt"))
        expect(not same_bits(initial(probe_input()), cpp["out"]), "training changed nothing")
    if failures:
        print("interop check FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("interop check: hookline.ckpt, trained.pt and script.ckpt as expected")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit("usage: interop.py make|check DIR")
    (make if sys.argv[1] == "make" else check)(sys.argv[2])
