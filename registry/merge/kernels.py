"""The merge's arithmetic: each planned operation on one base tensor, in peft's order of operations.

For each targeted base weight ``W``, computed in float32 (so the result equals ``merge_and_unload``
where peft also works in float32):

* LoRA:   ``delta = T(B @ A) * s``, ``W' = W + delta``; DoRA: ``W' = m / ||T(W) + T(delta)||_row * (W + delta)``;
* a bias: ``b' = b + B.bias * s``;
* IA3:    ``W' = W * T(l)`` (and ``b' = b * l`` for non feed-forward modules);
* ``modules_to_save``: the adapter's tensor replaces the base's.

A float32 (or float64) output is bit-identical to peft's. A 16-bit output is a float32 fused
sum rounded once; it is within ``2**-7 * (|W| + |delta|)`` of peft's for bfloat16 (``2**-10``
for float16), and usually identical (see :func:`lora_fused`). torch is imported inside functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.domain.compat import EMBEDDING_KEYS
from registry.domain.methods.base import BiasAdd, ColumnScale, LoraUpdate, MergePlan, PeftModule, Replace
from registry.domain.versions import Manifest
from registry.errors import InvalidInput
from registry.merge.results import MergeOptions
from registry.merge.shards import ShardTensor, numel, read_tensor, torch_dtype

if TYPE_CHECKING:
    import torch

__all__ = ["Transform", "lora_blocked", "lora_fused", "lora_weight", "nf4_roundtrip", "single_threaded_torch"]

_BLOCK_ELEMENTS = 1 << 20  # a float32 block of ~4 MB stays in cache: measured fastest here


def _t(x: torch.Tensor, flag: bool) -> torch.Tensor:
    return x.T if flag else x


class _Workspace:
    """Buffers reused from tensor to tensor. Allocating fresh multi-megabyte tensors for every weight
    costs more in page faults than the arithmetic (measured: 74 ms against 13 ms for a 5632x2048
    weight). Two output buffers alternate, so one can be written while the next tensor is computed."""

    def __init__(self, max_bytes: int, max_elements: int, max_cols: int) -> None:
        import torch

        self.read = bytearray(max_bytes)
        self.outs = [bytearray(max_elements * 4), bytearray(max_elements * 4)]  # room for float32 outputs
        self.turn = 0
        self.delta = torch.empty(max(max_elements, 1), dtype=torch.float32)
        self.weight = torch.empty(max(_BLOCK_ELEMENTS, max_cols), dtype=torch.float32)  # a block is >= one row

    def output(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        import torch

        self.turn ^= 1
        return torch.frombuffer(self.outs[self.turn], dtype=dtype, count=numel(shape)).reshape(shape)


def lora_fused(
    w: torch.Tensor, b: torch.Tensor, a: torch.Tensor, scale: float, out: torch.Tensor, space: _Workspace
) -> torch.Tensor:
    """``W + (B @ A) * scale`` for a 16-bit output: one fused ``addmm`` per cache-sized block of rows.

    Every element is computed in float32 (a fused multiply-add) and rounded once to the output
    dtype. peft rounds once too when it upcasts the adapter to float32 (its default), twice when
    the adapter's weights stay 16-bit (the delta is rounded before the add). Either way the two
    results differ by at most ``2**-7 * (|W| + |delta|)`` for bfloat16 (``2**-10`` for float16);
    in the default case they are nearly always identical. About 3x faster than the exact path.
    """
    rows, cols = w.shape
    step = max(1, min(rows, _BLOCK_ELEMENTS // cols))
    for start in range(0, rows, step):
        end = min(start + step, rows)
        block = space.weight[: (end - start) * cols].view(end - start, cols)
        block.copy_(w[start:end])
        block.addmm_(b[start:end], a, alpha=scale)
        out[start:end].copy_(block)
    return out


def lora_blocked(
    w: torch.Tensor, b: torch.Tensor, a: torch.Tensor, scale: float, out: torch.Tensor, space: _Workspace
) -> torch.Tensor:
    """``W + (B @ A) * scale`` in float32 into ``out``, with peft's operations in peft's order.

    ``B @ A`` is one matmul, exactly the call peft makes (a matmul split into row blocks is not
    bit-identical for wide matrices); the element-wise steps, exact at any blocking, then run
    in cache-sized blocks of rows.
    """
    import torch

    rows, cols = w.shape
    delta = space.delta[: rows * cols].view(rows, cols)
    torch.matmul(b, a, out=delta)
    step = max(1, min(rows, _BLOCK_ELEMENTS // cols))
    for start in range(0, rows, step):
        end = min(start + step, rows)
        block = delta[start:end]
        base = space.weight[: (end - start) * cols].view(end - start, cols)
        block.mul_(scale)
        base.copy_(w[start:end])  # to float32 first: a float32 + float32 add is the fast kernel
        block.add_(base)
        out[start:end].copy_(block)
    return out


def lora_weight(
    w: torch.Tensor, op: LoraUpdate, adapter: Mapping[str, torch.Tensor], fan_in_fan_out: bool
) -> torch.Tensor:
    """W' for one LoRA/DoRA module, in float32, in peft's order of operations."""
    import torch

    if op.a is None or op.b is None:  # _plan keeps only modules with both factors
        raise InvalidInput(f"a LoRA module lacks its A or B matrix ({op.a or op.b}); the adapter is incomplete")
    base = w.float()
    transpose = op.embedding or fan_in_fan_out
    delta = _t(adapter[op.b].float() @ adapter[op.a].float(), transpose) * op.scale
    if op.magnitude is None:
        return base + delta
    # DoRA: the row norm of the adapted weight, as peft's get_weight_norm computes it
    norm = torch.linalg.norm(_t(base, transpose) + 1 * _t(delta, transpose), dim=1)
    factor = adapter[op.magnitude].float() / norm
    factor = factor.view(1, -1) if op.embedding else _t(factor.view(-1, 1), fan_in_fan_out)
    return factor * (base + delta)


def nf4_roundtrip(w: torch.Tensor, quant_type: str, double_quant: bool) -> torch.Tensor:
    """dequantize(quantize(W)) with bitsandbytes, as a 4-bit base held W during training.

    Called inside the merge's :func:`registry._quiet.quiet_libraries` block, which keeps the
    warning bitsandbytes' CPU backend logs at import (an optional kernel not on the Hub) quiet.
    """
    import bitsandbytes.functional as bnbf

    packed, state = bnbf.quantize_4bit(
        w.contiguous(), blocksize=64, compress_statistics=double_quant, quant_type=quant_type
    )
    result: torch.Tensor = bnbf.dequantize_4bit(packed, state)
    return result.reshape(w.shape)


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Compute on one core while the writer thread hashes and writes on the other.

    torch's OpenMP workers busy-wait between parallel regions and would take the writer's core;
    measured on 2 cores, one compute thread plus the writer is faster than two plus the writer.
    """
    import torch

    global _OUTER_THREADS
    threads = torch.get_num_threads()
    _OUTER_THREADS = threads
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


#: torch's thread count outside :func:`single_threaded_torch`: peft's layers merge with it, since some
#: (C3A's FFT) give results that depend on the thread count, and peft's own merge runs with it.
_OUTER_THREADS: int | None = None


@contextmanager
def outer_threads() -> Iterator[None]:
    import torch

    inner = torch.get_num_threads()
    torch.set_num_threads(_OUTER_THREADS or inner)
    try:
        yield
    finally:
        torch.set_num_threads(inner)


class Transform:
    """For each base tensor: its merged value, or None to copy it as it is (see the module doc)."""

    def __init__(
        self,
        plan: MergePlan,
        weights: Path,
        config: Mapping[str, Any],
        manifest: Manifest,
        options: MergeOptions,
        targets: list[ShardTensor],
        read_base: Callable[[str], torch.Tensor] | None = None,
    ) -> None:
        from safetensors.torch import load_file

        self.plan = plan
        self.config = config
        self.read_base = read_base
        self.pending: dict[str, Any] = {}  # a module's merged tensor waiting for its turn (peft layers)
        self.adapter = load_file(str(weights))
        self.fan = bool(config.get("fan_in_fan_out", False))
        self.roundtrip = options.base_precision == "nf4-dequantized"
        self.quant = manifest.quantization
        self.space = _Workspace(
            max((t.nbytes for t in targets), default=0),
            max((numel(t.shape) for t in targets), default=0),
            max((t.shape[-1] for t in targets if t.shape), default=0),
        )
        self.factors = {
            w: (self.adapter[op.b].float(), self.adapter[op.a].float())
            for w, op in plan.ops.items()
            if isinstance(op, LoraUpdate) and op.a and op.b
        }
        self.merged = 0
        self.copied = 0

    def __call__(self, entry: ShardTensor, fd: int, code: str) -> Any:
        op = self.plan.ops.get(entry.name)
        if op is None:
            self.copied += 1
            return None
        self.merged += 1
        adapter = self.adapter
        if isinstance(op, Replace):
            return adapter[op.key]
        if isinstance(op, LoraUpdate):
            return self._lora(entry, fd, code, op)
        if isinstance(op, PeftModule):
            return self._peft(entry, fd, op)
        base = read_tensor(fd, entry).float()
        if isinstance(op, BiasAdd):
            trained = adapter[op.base_key].float() if op.base_key is not None else base
            return trained + adapter[op.key].float() * op.scale
        if isinstance(op, ColumnScale) and not op.bias:
            return base * _t(adapter[op.key].float(), self.fan)
        if isinstance(op, ColumnScale):
            return base * adapter[op.key].float().reshape(base.shape)
        raise InvalidInput(f"{entry.name}: the merge has no kernel for {type(op).__name__}")

    def _peft(self, entry: ShardTensor, fd: int, op: PeftModule) -> Any:
        """The module's weight or bias as peft's own layer merges it; both are computed together, and the
        one whose turn has not come waits in ``pending`` (one module's tensor at most)."""
        from registry.merge.peftlayer import merge_module

        if entry.name in self.pending:
            return self.pending.pop(entry.name)
        other = f"{op.module}.{'bias' if op.part == 'weight' else 'weight'}"
        mine = read_tensor(fd, entry).float()
        theirs = self._base_tensor(other)
        weight, bias = (mine, theirs) if op.part == "weight" else (theirs, mine)
        if weight is None:
            raise InvalidInput(f"the base has no weight {other} for {entry.name}; nothing was written")
        if self.roundtrip and weight.dim() == 2:
            weight = nf4_roundtrip(weight, self.quant.method, self.quant.double_quant is True)
        tensors = {k: self.adapter[k] for k in (*op.keys, *self.plan.shared)}
        embedding = (op.module + ".weight").endswith(EMBEDDING_KEYS)
        with outer_threads():
            new_weight, new_bias = merge_module(self.config, op.path, weight, bias, tensors, self.fan, embedding)
        mine_out, theirs_out = (new_weight, new_bias) if op.part == "weight" else (new_bias, new_weight)
        if other in self.plan.ops and theirs_out is not None:
            self.pending[other] = theirs_out
        return mine_out

    def _base_tensor(self, name: str) -> torch.Tensor | None:
        if self.read_base is None:
            raise InvalidInput(f"{name}: this merge cannot read a second base tensor; nothing was written")
        return self.read_base(name)

    def _lora(self, entry: ShardTensor, fd: int, code: str, op: LoraUpdate) -> Any:
        w = self.adapter[op.base_layer] if op.base_layer else read_tensor(fd, entry, self.space.read)
        if self.roundtrip and not op.embedding:
            w = nf4_roundtrip(w, self.quant.method, self.quant.double_quant is True)
        if op.magnitude is None and not op.embedding and not self.fan and w.dim() == 2:
            b, a = self.factors[entry.name]
            kernel = lora_blocked if code in ("F32", "F64") else lora_fused
            return kernel(w, b, a, op.scale, self.space.output(entry.shape, torch_dtype(code)), self.space)
        return lora_weight(w, op, self.adapter, self.fan)
