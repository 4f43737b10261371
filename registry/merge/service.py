"""The streaming merge: fold an adapter into its base, shard by shard, tensor by tensor.

For each targeted base weight ``W`` (module ``m``), computed in float32 in the order peft
uses (so the result equals ``merge_and_unload`` where peft also works in float32):

* LoRA:   ``delta = T(B @ A) * s`` with ``s = alpha/r`` (``alpha/sqrt(r)`` with rsLoRA;
  ``r``/``alpha`` from ``rank_pattern``/``alpha_pattern``), ``T`` a transpose for GPT-2's
  ``Conv1D`` (``fan_in_fan_out``) and for embeddings; ``W' = W + delta``;
* DoRA:   ``W' = m / ||T(W) + T(delta)||_row * (W + delta)``;
* ``lora_B.bias``: ``b' = b + B.bias * s``;
* IA3:    ``W' = W * T(l)`` (and ``b' = b * l`` for non feed-forward modules);
* ``modules_to_save``: the adapter's tensor replaces the base's; an adapter that saved an
  adapted embedding (``base_layer.weight``) merges into that copy;
* every other tuner peft can merge (AdaLoRA, LoHa, LoKr, OFT, BOFT, VeRA, FourierFT, HRA, MiSS, C3A,
  RandLoRA, VBLoRA, SHiRA, RoAd, DeLoRA, WaveFT, TrainableTokens, ...): peft's own layer, built around
  the one base module and merged (:mod:`registry.merge.peftlayer`); LN tuning's copies replace the base's.

A float32 (or float64) output is bit-identical to peft's. A 16-bit output is a float32 fused
sum rounded once; it is within ``2**-7 * (|W| + |delta|)`` of peft's for bfloat16 (``2**-10``
for float16), and usually identical (see :func:`lora_fused`).

Untouched tensors are copied byte for byte. The output keeps the base's shard layout and
index and copies the rest of its tree (config, generation config, tokenizer, licence, the module
directories of a sentence-transformers model; see :mod:`registry.merge.tree`), so whatever loaded
the base (``AutoModelForCausalLM.from_pretrained(DIR)``, ``SentenceTransformer(DIR)``) loads it as is. Memory holds about one
tensor at a time plus the adapter; the directory appears complete or not at all.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._io import (
    Progress,
    atomic_write_bytes,
    check_output_dir,
    fsync_dir,
    fsync_file,
    publish_dir,
    scratch_dir,
    temporary_sibling_dir,
    write_failure,
)
from registry._quiet import quiet_libraries
from registry.basemodel import ResolvedBase, recorded_base_spec, resolve_base
from registry.catalog.resolve import check_push_record, resolve, state_of
from registry.catalog.service import Catalog
from registry.domain.actor import Actor
from registry.domain.adapterdir import ADAPTER_WEIGHTS, AdapterSource, TensorInfo, read_adapter_dir
from registry.domain.compat import difference_text, fingerprint_matches, static_checks, weights_difference
from registry.domain.refs import Ref
from registry.domain.versions import Manifest
from registry.errors import InvalidInput, NotFound, PermissionDenied
from registry.filehashes import FileHashCache
from registry.merge.kernels import Transform, single_threaded_torch
from registry.merge.plan import mergeable_method, plan_merge
from registry.merge.results import METHOD, MergedFile, MergeOptions, MergeResult
from registry.merge.shards import ShardTensor, code_of, read_header, read_tensor, write_shard
from registry.merge.tree import copy_tree, plan_tree

if TYPE_CHECKING:
    pass

__all__ = ["Merger"]

MERGE_RECORD = "adapters-merge.json"


# -- the plan: which base tensor gets which operation ----------------------------------------


class Merger:
    """``catalog``: the embedded registry's, for :meth:`merge`; none for a client of the registry server,
    which calls :meth:`merge_version` with the files it downloads."""

    def __init__(self, catalog: Catalog | None, hashes: FileHashCache) -> None:
        self.catalog = catalog
        self.hashes = hashes

    def merge(
        self,
        actor: Actor,
        ref: Ref,
        base: str | None,
        out: Path,
        options: MergeOptions,
        progress: Progress | None = None,
    ) -> MergeResult:
        """Merge version ``ref`` into ``base``, writing ``out`` atomically. A revoked version is refused."""
        started = time.perf_counter()
        catalog = self.catalog
        if catalog is None:
            raise InvalidInput("this merger has no registry to read versions from; call merge_version")
        with catalog.store.read() as records:
            row = resolve(records, ref, catalog.identity.access(records, actor))
            check_push_record(records, row)
            if state_of(records, row) == "revoked":
                raise PermissionDenied(
                    f"{row.ref} ({row.digest[:19]}…) is revoked; a revoked version is not merged", actor.name
                )
        manifest = row.manifest()

        def export(directory: Path) -> None:
            catalog.export_files(manifest, directory)

        return self.merge_version(manifest, row.digest, export, base, out, options, progress, started)

    def merge_version(
        self,
        manifest: Manifest,
        digest: str,
        export: Callable[[Path], None],
        base: str | None,
        out: Path,
        options: MergeOptions,
        progress: Progress | None = None,
        started: float | None = None,
    ) -> MergeResult:
        """Merge the version ``manifest`` describes, its files written by ``export`` (re-hashed: from the
        embedded store, or downloaded from the registry server), into ``base``, writing ``out`` atomically."""
        started = time.perf_counter() if started is None else started
        label = f"{manifest.name}:{manifest.version}"
        resolved = self._base(manifest, label, base, options, progress)
        recorded, actual = manifest.base.fingerprint, resolved.base.fingerprint
        warnings = _precision_warnings(manifest, options)
        target = Path(out).expanduser().absolute()
        check_output_dir(target, options.force)
        with scratch_dir("adapters-merge-") as tmp:
            adapter_dir = Path(tmp)
            with _failures_explained(adapter_dir, f"the temporary directory {adapter_dir}", "set TMPDIR elsewhere"):
                export(adapter_dir)
            with (
                _failures_explained(target.parent, str(target.parent), "choose another output directory", target),
                quiet_libraries(),  # torch's and bitsandbytes' notices (ADAPTERS_DEBUG=1 shows them)
            ):
                files, merged, copied, left_out = self._write(
                    manifest, label, resolved, adapter_dir, target, options, progress
                )
        return MergeResult(
            ref=label,
            digest=digest,
            out=target,
            base_name=resolved.base.name,
            base_fingerprint=actual,
            recorded_base_fingerprint=recorded,
            allow_base_mismatch=options.allow_base_mismatch,
            dtype=options.dtype,
            base_precision=options.base_precision,
            files=files,
            merged_tensors=merged,
            copied_tensors=copied,
            seconds=time.perf_counter() - started,
            warnings=warnings + left_out,
        )

    def _base(
        self, manifest: Manifest, label: str, base: str | None, options: MergeOptions, progress: Progress | None
    ) -> ResolvedBase:
        """The base to merge into, on this machine, and the recorded one unless a mismatch is allowed."""
        spec, name = recorded_base_spec(manifest.base, base, label)
        resolved = resolve_base(spec, None, self.hashes, progress, name=name)
        if resolved.model_dir is None:
            raise NotFound(f"base {spec!r} is not on this machine; pass --base with the base model's directory")
        recorded, actual = manifest.base.fingerprint, resolved.base.fingerprint
        if (
            recorded
            and actual
            and not fingerprint_matches(recorded, actual, resolved.also_known_as)
            and not options.allow_base_mismatch
        ):
            diff = difference_text(weights_difference(manifest.base.weights, resolved.base.weights))
            raise InvalidInput(
                f"the base's weights ({actual[:19]}…) are not the ones {label} was trained on ({recorded[:19]}…)"
                f"{diff}; merge into the recorded base, or pass --allow-base-mismatch (recorded)"
            )
        return resolved

    def _write(
        self,
        manifest: Manifest,
        label: str,
        resolved: ResolvedBase,
        adapter_dir: Path,
        target: Path,
        options: MergeOptions,
        progress: Progress | None,
    ) -> tuple[tuple[MergedFile, ...], int, int, tuple[str, ...]]:
        """Write the merged directory; (its files, tensors merged, tensors copied, warnings about the base's files)."""
        source = read_adapter_dir(adapter_dir)
        method = mergeable_method(source.config, label)
        root, base_dir = resolved.directory, resolved.model_dir
        if root is None or base_dir is None:  # _base() refused that already
            raise NotFound(f"base {resolved.base.name!r} is not on this machine")
        shards = _base_shards(base_dir)
        tree = plan_tree(root, base_dir, {s.name for s in shards})
        at = base_dir.relative_to(root)  # where the shards sit in the base's tree, and so in the output
        headers = {s: read_header(s) for s in shards}
        base_shapes = {t.name: t.shape for entries, _ in headers.values() for t in entries}
        _check_fits(label, source, base_shapes, _json(base_dir / "config.json"))
        plan = plan_merge(method, source.config, {t.name: t.shape for t in source.tensors}, base_shapes)
        missing = plan.targets() - set(base_shapes)
        if missing:
            raise InvalidInput(
                f"the base has no tensor {sorted(missing)[0]} that the adapter changes (lora_B.bias needs a base bias)"
            )
        targets = [t for entries, _ in headers.values() for t in entries if t.name in plan.targets()]
        where = {t.name: (shard, t) for shard, (entries, _) in headers.items() for t in entries}
        transform = Transform(
            plan, adapter_dir / ADAPTER_WEIGHTS, source.config, manifest, options, targets, _reader(where)
        )
        out_code = code_of(options.dtype) if options.dtype else None
        written: list[MergedFile] = []
        with (
            single_threaded_torch(),
            temporary_sibling_dir(target) as tmp,
            ThreadPoolExecutor(max_workers=1) as syncer,
        ):
            pending = []
            (tmp / at).mkdir(parents=True, exist_ok=True)
            for shard in shards:
                dest = tmp / at / shard.name
                digest, size, _ = write_shard(shard, dest, transform, out_code, progress, headers[shard], fsync=False)
                written.append(MergedFile((at / shard.name).as_posix(), digest, size))
                pending.append(syncer.submit(fsync_file, dest))  # overlaps with the next shard
            for future in pending:
                future.result()
            written += copy_tree(tree, adapter_dir, tmp, headers, options.dtype)
            files = tuple(sorted(written, key=lambda f: f.path))
            record = {
                "method": METHOD, "ref": label, "digest": manifest.digest, "base": manifest.base.to_dict(),
                "dtype": options.dtype, "base_precision": options.base_precision, "files": [f.to_dict() for f in files],
            }  # fmt: skip
            atomic_write_bytes(tmp / MERGE_RECORD, json.dumps(record, indent=2).encode("utf-8") + b"\n")
            fsync_dir(tmp)
            publish_dir(tmp, target)
        return files, transform.merged, transform.copied, tree.warnings()


def _check_fits(
    label: str, source: AdapterSource, base_shapes: Mapping[str, tuple[int, ...]], base_config: Mapping[str, Any]
) -> None:
    """Refuse an adapter whose tensors do not fit the base's (by the static checks of shapes and modules)."""
    base_tensors = [TensorInfo(n, "", s) for n, s in base_shapes.items()]
    checks, _ = static_checks(source.facts, source.config, source.tensors, base_tensors, base_config)
    for c in checks:
        if c.name in ("tensor-shapes", "tensor-modules") and c.passed is False:
            raise InvalidInput(f"{label} does not fit this base, nothing was written: {c.message}")


@contextmanager
def _failures_explained(root: Path, place: str, fix: str, target: Path | None = None) -> Iterator[None]:
    """A full disk, a quota, a read-only filesystem or no permission under ``root`` as a StorageError."""
    try:
        yield
    except OSError as exc:
        nothing = f"; nothing was written to {target}" if target is not None else ""
        failure = write_failure(exc, place, root, fix + nothing)
        if failure is None:
            raise
        raise failure from None


def _reader(where: Mapping[str, tuple[Path, ShardTensor]]) -> Callable[[str], Any]:
    """Read one base tensor by name (float32), or None when the base has none of that name."""

    def read(name: str) -> Any:
        found = where.get(name)
        if found is None:
            return None
        fd = os.open(found[0], os.O_RDONLY)
        try:
            return read_tensor(fd, found[1]).float()
        finally:
            os.close(fd)

    return read


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _base_shards(base_dir: Path) -> list[Path]:
    index = base_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(_json(index)["weight_map"].values()))
        return [base_dir / n for n in names]
    shards = sorted(base_dir.glob("*.safetensors"))
    if not shards:
        raise InvalidInput(
            f"the base {base_dir} has no *.safetensors weights; the streaming merge reads safetensors only "
            "(re-save the base with save_pretrained(safe_serialization=True))"
        )
    return shards


def _precision_warnings(manifest: Manifest, options: MergeOptions) -> tuple[str, ...]:
    method = manifest.quantization.method
    four_bit = method in ("nf4", "fp4")
    if options.base_precision == "nf4-dequantized" and not four_bit:
        raise InvalidInput(
            f"{manifest.name}:{manifest.version} was trained with quantization {method!r}; --base-precision "
            "nf4-dequantized is for adapters trained on a 4-bit (nf4/fp4) base"
        )
    if options.base_precision == "nf4-dequantized" and manifest.quantization.double_quant is None:
        return (
            f"{manifest.name}:{manifest.version} does not record whether its 4-bit base was double-quantized (it was "
            "pushed before that was recorded); the merge assumes not, as bitsandbytes defaults",
        )
    if four_bit and options.base_precision == "original":
        return (
            f"{manifest.name}:{manifest.version} was trained on a 4-bit ({method}) base: merging into the original "
            "16-bit weights adds the quantization error the adapter never saw; --base-precision nf4-dequantized "
            "merges into the dequantized 4-bit weights instead",
        )
    return ()
