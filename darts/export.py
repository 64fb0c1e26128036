"""Export the trained network of a ``darts train`` run: TorchScript, ONNX or a ``torch.export`` program.

The network is exported in eval mode (BatchNorm's running statistics, no dropout) from the run's
``model.pt``, traced on a batch made of the first training example, then loaded back from the written file
and checked against eager mode on test examples. Under tracing and export darts' CPU machinery stands aside
(:mod:`darts.kernels`), so the files hold torch's operations only, at any thread count.

Multi-task networks return one output per task: a dict in TorchScript and exported programs, outputs named
after the tasks in ONNX. Language models are not exported (their forward pass carries a hidden state from
window to window; export their cell's genotype instead).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from darts.io import atomic_write_bytes

#: format -> file suffix
FORMATS = {"torchscript": ".torchscript.pt", "onnx": ".onnx", "exported-program": ".pt2"}
ONNX_INSTALL = "pip install 'darts-nas[onnx]' (onnx, onnxscript and onnxruntime)"


@dataclass
class Exported:
    """A written export: the file, its format and the largest difference from eager mode on the check batch."""

    path: Path
    format: str
    max_difference: float
    examples: int


def _flat(output: Any) -> list[torch.Tensor]:
    if isinstance(output, dict):  # in insertion order, as torch.export flattens a dict (the targets' order)
        return list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _flat(item)]
    return [output]


def _difference(ours: Any, eager: Any) -> float:
    pairs = list(zip(_flat(ours), _flat(eager)))
    return max(float((torch.as_tensor(a, dtype=torch.float32) - b.float()).abs().max()) for a, b in pairs)


def _torchscript(model: nn.Module, example: torch.Tensor) -> tuple[bytes, Callable]:
    traced = torch.jit.trace(model, example, strict=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    data = buffer.getvalue()
    return data, torch.jit.load(io.BytesIO(data))


def _exported_program(model: nn.Module, example: torch.Tensor) -> tuple[bytes, Callable]:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    data = buffer.getvalue()
    return data, torch.export.load(io.BytesIO(data)).module()


def _onnx(model: nn.Module, example: torch.Tensor, names: list[str]) -> tuple[bytes, Callable]:
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:  # checked before the long export; torch's exporter needs onnxscript, the check onnxruntime
        raise ValueError(f"--format onnx needs {', '.join(missing)}, not installed: {ONNX_INSTALL}")
    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        quiet = logging.getLogger("torch.onnx")  # notes on optional packages (torchvision's operators)
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            torch.onnx.export(model, (example,), path, dynamo=True, input_names=["input"], output_names=names,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), external_data=False,
                              verbose=False)
        finally:
            quiet.setLevel(level)
        data = path.read_bytes()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> list:
        outputs = session.run(None, {"input": x.numpy()})
        return [torch.from_numpy(o) for o in outputs]

    return data, run


def export_network(model: nn.Module, example: torch.Tensor, check: torch.Tensor, format: str, path: Path,
                   output_names: list[str] | None = None) -> Exported:
    """Write ``model`` (eval mode) in ``format`` to ``path``, traced on ``example``; load the file back and
    compare it with eager mode on ``check``. Never overwrites a file."""
    if format not in FORMATS:
        raise ValueError(f"export format {format!r} is not one of {', '.join(FORMATS)}")
    path = Path(path)
    if path.exists():
        raise ValueError(f"{path} exists already; choose another --out (nothing is overwritten)")
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's exporters' notes to their own developers
        warnings.simplefilter("ignore", DeprecationWarning)
        eager = model(check)
        names = output_names or [f"output_{i}" for i in range(len(_flat(eager)))]
        if format == "torchscript":
            data, loaded = _torchscript(model, example)
        elif format == "exported-program":
            data, loaded = _exported_program(model, example)
        else:
            data, loaded = _onnx(model, example, names)
        difference = _difference(loaded(check), eager)
    atomic_write_bytes(path, data)
    return Exported(path, format, difference, len(check))
