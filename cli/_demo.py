"""``adapters demo``: the main job end to end on a tiny model, printing the commands it runs.

Everything happens in a temporary directory with the embedded defaults (an SQLite
file and a local blob store), so it touches nothing of the user's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = ["build_demo_models", "run_demo"]


def build_demo_models(root: Path) -> tuple[Path, Path, Path]:
    """A tiny random Llama base, a LoRA adapter trained on it (random, non-zero) and a small dataset."""
    from registry import quiet_libraries

    with quiet_libraries(transformers=True):  # progress bars and notices of peft and transformers
        return _build_demo_models(root)


def _build_demo_models(root: Path) -> tuple[Path, Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        max_position_embeddings=128,
    )
    base_dir = root / "tiny-llama"
    model = LlamaForCausalLM(config)
    model.save_pretrained(base_dir)
    adapter_dir = root / "support-summarizer-out"
    peft_model = get_peft_model(
        model,
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"),
    )
    peft_model.save_pretrained(str(adapter_dir))
    data = root / "data" / "train.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(
        "".join(json.dumps({"ticket": f"ticket {i}", "summary": f"summary {i}"}) + "\n" for i in range(120))
    )
    return base_dir, adapter_dir, data


def _compare_outputs(base_dir: Path, original: Path, pulled: Path) -> float:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from registry import quiet_libraries

    ids = torch.arange(1, 17).unsqueeze(0)
    outputs = []
    with quiet_libraries(transformers=True), torch.no_grad():
        for adapter in (original, pulled):
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter)
            outputs.append(model(ids).logits)
    return float((outputs[0] - outputs[1]).abs().max())


def _compare_merged(base_dir: Path, adapter_dir: Path, merged: Path) -> float:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from registry import quiet_libraries

    ids = torch.arange(1, 17).unsqueeze(0)
    with quiet_libraries(transformers=True), torch.no_grad():
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
        merged_model = AutoModelForCausalLM.from_pretrained(merged)
        return float((peft_model(ids).logits - merged_model(ids).logits).abs().max())


@contextmanager
def _embedded_registry(home: Path) -> Iterator[None]:
    saved = {
        k: os.environ.get(k)
        for k in ("ADAPTERS_HOME", "ADAPTERS_DB", "ADAPTERS_STORE", "ADAPTERS_STATE_DIR", "ADAPTERS_CONFIG_DIR")
    }
    os.environ["ADAPTERS_HOME"] = str(home)
    os.environ["ADAPTERS_STATE_DIR"] = str(home / "state")  # the demo's registry key and checkpoints
    os.environ["ADAPTERS_CONFIG_DIR"] = str(home / "config")
    os.environ.pop("ADAPTERS_DB", None)
    os.environ.pop("ADAPTERS_STORE", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _step(title: str) -> None:
    click.echo()
    click.secho(f"# {title}", fg="cyan", bold=True)


def run_demo(group: click.Group, home: str | None, keep: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="adapters-demo-"))
    registry_home = Path(home).expanduser().resolve() if home else workdir / "registry"

    def run(*args: str) -> Any:
        click.secho("$ adapters " + " ".join(shlex.quote(a) for a in args), bold=True)
        return group.main(args=list(args), prog_name="adapters", standalone_mode=False)

    try:
        _step("Building a tiny random Llama base and a LoRA adapter with peft")
        base_dir, adapter_dir, data = build_demo_models(workdir)
        click.echo(f"base model: {base_dir}\nadapter:    {adapter_dir}\ndataset:    {data}")
        _step("The registry lives in one directory here (SQLite + a local blob store)")
        click.secho(f"$ export ADAPTERS_HOME={shlex.quote(str(registry_home))}", bold=True)
        with _embedded_registry(registry_home):
            _catalog(run, base_dir, adapter_dir, data)
            _governance(run, workdir, base_dir, adapter_dir)
            _serving_and_audit(run, workdir, base_dir, adapter_dir)
        _step("Done")
        click.echo("Every command above works as shown with ADAPTERS_HOME set as printed.")
    finally:
        if keep or home:
            click.echo(f"kept: {workdir}" + (f" (registry: {registry_home})" if home else ""))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            click.echo(
                f"{workdir} (models, registry, merged checkpoint, audit report) was removed; "
                "`adapters demo --keep` keeps it to look at"
            )


def _catalog(run: Any, base_dir: Path, adapter_dir: Path, data: Path) -> None:
    _step("Push the adapter with its facts: base (fingerprinted by content), lineage, evals")
    run(
        "push", str(adapter_dir), "--name", "support-summarizer", "--base", str(base_dir), "--quantization", "nf4",
        "--dataset", f"name=support-tickets,license=cc-by-4.0,split=train,path={data}",
        "--eval", "accuracy=0.91", "--eval", "rougeL=0.47", "--description", "summarises support tickets",
    )  # fmt: skip
    _step("Push it again: a new version; identical files are stored once")
    run("push", str(adapter_dir), "--name", "support-summarizer", "--base", str(base_dir), "--eval", "accuracy=0.93")
    _step("List and inspect")
    run("ls")
    run("show", "support-summarizer:1")
    _step("Verify it fits the base: tensor shapes from headers, then a real load on a 4-bit NF4 base")
    run("verify", "support-summarizer:1", "--base", str(base_dir))


def _governance(run: Any, workdir: Path, base_dir: Path, adapter_dir: Path) -> None:
    _step("Govern it (default policy: one approval, the author may approve), release, roll back")
    run("review", "support-summarizer:1")
    run("approve", "support-summarizer:1", "--comment", "eval report reviewed")
    run("release", "support-summarizer:1", "--channel", "production")
    run("review", "support-summarizer:2")
    run("approve", "support-summarizer:2")
    merged = workdir / "support-summarizer-2-merged"
    run("release", "support-summarizer:2", "--channel", "production", "--merge", "--out", str(merged))
    diff = _compare_merged(base_dir, adapter_dir, merged)
    click.echo(f"merged checkpoint vs PeftModel on the base: max |logits difference| = {diff:.2g}")
    run("rollback", "support-summarizer", "--channel", "production", "--reason", "latency regression")
    run("channels", "support-summarizer")


def _serving_and_audit(run: Any, workdir: Path, base_dir: Path, adapter_dir: Path) -> None:
    _step("A serving host pulls what production points to: every byte re-hashed, all or nothing")
    out = workdir / "pulled"
    run("pull", "support-summarizer@production", "-o", str(out))
    diff = _compare_outputs(base_dir, adapter_dir, out)
    click.echo(f"PeftModel.from_pretrained on the pulled directory: max |logits difference| = {diff:g}")
    if diff != 0.0:
        raise click.ClickException("the pulled adapter does not reproduce the original's outputs")
    _step("Prove the history: a signed checkpoint kept outside the database, and the chain verified")
    checkpoint = workdir / "checkpoint.json"
    run("audit", "checkpoint", "--out", str(checkpoint))
    run("audit", "verify", "--checkpoint", str(checkpoint))
    _step("The auditor's report: every fact, approval, release and rollback, problems first")
    report = workdir / "audit-report.html"
    run("audit", "report", "support-summarizer", "--out", str(report))
