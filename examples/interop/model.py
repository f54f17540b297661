"""The Python half of examples/interop: a model written in Python, trained by hookline in C++.

  /usr/bin/python3 examples/interop/model.py export model.pt   # torch.jit.script + save
  build/release/examples/interop_train model.pt out             # hookline trains it
  /usr/bin/python3 examples/interop/model.py evaluate out       # back in Python

`evaluate` loads what C++ wrote both ways: the trained TorchScript file (torch.jit.load) and the
checkpoint (torch.load: its "state_dict" loads into this unscripted class, as
LightningModule.load_from_checkpoint would), and prints their test accuracy on Fashion-MNIST.
Needs Debian's python3-torch and dataset-fashion-mnist. docs/porting-from-lightning.md says what
crosses between Python and hookline and what does not.
"""
import gzip
import os
import struct
import sys
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

DATA = "/usr/share/datasets/fashion-mnist"


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(784, 128)
        self.l2 = torch.nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(torch.relu(self.l1(x)))

    # What hookline's ScriptModule takes from the script (exported: torch.jit.script compiles
    # only forward and what it calls otherwise).
    @torch.jit.export
    def training_step(self, batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]:
        return {"loss": F.cross_entropy(self.forward(batch["x"]), batch["y"])}

    @torch.jit.export
    def validation_step(self, batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]:
        logits = self.forward(batch["x"])
        accuracy = (logits.argmax(1) == batch["y"]).float().mean()
        return {"val_loss": F.cross_entropy(logits, batch["y"]), "val_acc": accuracy}

    @torch.jit.export
    def configure_optimizers(self) -> Tuple[str, Dict[str, float]]:
        return ("Adam", {"lr": 1e-3})


def test_set():
    """Fashion-MNIST's test split as hookline loads it: pixels / 255, flattened."""
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(n, rows * cols)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    return x.float() / 255, y


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "evaluate"):
        sys.exit(__doc__)
    if sys.argv[1] == "export":
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Classifier()), sys.argv[2])
        print(f"wrote {sys.argv[2]}; train it with interop_train {sys.argv[2]} OUT_DIR")
        return
    out = sys.argv[2]
    x, y = test_set()
    trained = torch.jit.load(os.path.join(out, "trained.pt")).eval()
    checkpoint = torch.load(os.path.join(out, "last.ckpt"))
    model = Classifier()
    model.load_state_dict(checkpoint["state_dict"])
    print(f"checkpoint: epoch {checkpoint['epoch']}, global step {checkpoint['global_step']}, "
          f"keys {sorted(checkpoint)}")
    print(f"trained.pt test accuracy:            {accuracy(trained, x, y):.4f}")
    print(f"last.ckpt in the Python class:       {accuracy(model.eval(), x, y):.4f}")


if __name__ == "__main__":
    main()
