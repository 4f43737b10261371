"""Bad input is refused with a message that names the problem and the fix, and nothing is stored."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from stores import blob_names

from registry import InvalidAdapter, InvalidMetadata, InvalidName, NotFound, Registry


def _assert_nothing_stored(reg: Registry) -> None:
    assert reg.ls() == []
    assert blob_names(reg) == set()
    assert list(reg._blobs.pending_uploads()) == []


class _Payload:
    """Unpickling this writes a marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"])
def test_pickle_files_are_refused_and_never_loaded(reg: Registry, llama, tmp_path: Path, suffix: str) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    marker = tmp_path / "pwned"
    (d / f"adapter_model{suffix}").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InvalidAdapter) as exc:
        reg.push(d, name="a")
    message = str(exc.value)
    assert f"adapter_model{suffix}" in message and "pickle" in message and "safetensors" in message
    assert not marker.exists()
    _assert_nothing_stored(reg)


def test_an_adapterhub_pickle_is_refused_with_advice_that_fits_it(reg: Registry, tmp_path: Path) -> None:
    """AdapterHub's default save (``pytorch_adapter.bin``): the advice is the ``adapters`` library's own."""
    import torch

    d = tmp_path / "hub"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(_ADAPTERHUB_CONFIG))
    torch.save(
        {"bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight": torch.zeros(4, 8)}, d / "pytorch_adapter.bin"
    )
    with pytest.raises(InvalidAdapter, match=r"use_safetensors=True") as exc:
        reg.push(d, name="a")
    assert "peft" not in str(exc.value) and "AdapterHub" in str(exc.value)
    _assert_nothing_stored(reg)


#: adapter_config.json as the `adapters` library writes it beside adapter.safetensors
_ADAPTERHUB_CONFIG = {
    "config": {"architecture": "bottleneck", "reduction_factor": 16, "non_linearity": "relu", "leave_out": []},
    "hidden_size": 64,
    "model_class": "BertModel",
    "model_name": "bert-tiny",
    "model_type": "bert",
    "name": "a",
    "version": "adapters.1.2.0",
}


def test_an_adapterhub_safetensors_save_is_named_for_what_it_is(reg: Registry, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    d = tmp_path / "hub"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(_ADAPTERHUB_CONFIG))
    save_file(
        {"bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight": torch.zeros(4, 64)},
        str(d / "adapter.safetensors"),
    )
    with pytest.raises(InvalidAdapter, match=r"AdapterHub adapter \(bottleneck architecture") as exc:
        reg.push(d, name="a")
    assert "does not store AdapterHub adapters yet" in str(exc.value)
    _assert_nothing_stored(reg)


def test_training_args_bin_in_a_subdirectory_is_refused_too(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "checkpoint-10").mkdir()
    (d / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InvalidAdapter, match=r"checkpoint-10/optimizer\.pt"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_missing_config(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "adapter_config.json").unlink()
    with pytest.raises(InvalidAdapter, match=r"no adapter_config\.json.*save_pretrained"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_missing_weights(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "adapter_model.safetensors").unlink()
    with pytest.raises(InvalidAdapter, match=r"no adapter_model\.safetensors"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"r": 8}', "no 'peft_type'")],
)
def test_bad_config(reg: Registry, llama, tmp_path: Path, content: str, fragment: str) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "adapter_config.json").write_text(content)
    with pytest.raises(InvalidAdapter, match=fragment):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_truncated_safetensors(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    w = d / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:-200])
    with pytest.raises(InvalidAdapter, match=r"not a valid safetensors file.*truncated"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_garbage_safetensors(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(InvalidAdapter, match="not a valid safetensors file"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_targets_matching_no_tensor(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["target_modules"] = ["c_attn", "query"]  # GPT-2 / BERT names on a Llama adapter
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidAdapter, match=r"targets \['c_attn', 'query'\], but none of the 28 tensors"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_symlink_leaving_the_directory(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not store me")
    (d / "notes.txt").symlink_to(secret)
    with pytest.raises(InvalidAdapter, match=r"symlink to .*secret\.txt, outside"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_symlink_inside_the_directory_is_stored_as_its_content(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    (d / "README-link.md").symlink_to(d / "README.md")
    reg.push(d, name="a")
    files = {f.path: f.sha256 for f in reg.show("a").manifest.files}
    assert files["README-link.md"] == files["README.md"]


@pytest.mark.parametrize("name", ["..", "a/../b", "a/b/c", "Upper", "has space", "ns/", ""])
def test_invalid_names(reg: Registry, llama, name: str) -> None:
    with pytest.raises(InvalidName):
        reg.push(llama.adapter, name=name)
    _assert_nothing_stored(reg)


def test_not_a_directory(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(InvalidAdapter, match="does not exist"):
        reg.push(tmp_path / "missing", name="a")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidAdapter, match="not a directory"):
        reg.push(tmp_path / "file", name="a")
    _assert_nothing_stored(reg)


def test_bad_metadata_is_refused_before_anything_is_stored(reg: Registry, llama, tmp_path: Path) -> None:
    with pytest.raises(InvalidMetadata, match="does not exist"):
        reg.push(llama.adapter, name="a", datasets=["name=x,path=/nonexistent/data.jsonl"])
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    with pytest.raises(InvalidMetadata, match="does not match"):
        reg.push(llama.adapter, name="a", datasets=[f"name=x,path={data},sha256={'0' * 64}"])
    with pytest.raises(InvalidMetadata, match=r"rows=5 was given but .* has 1 rows"):
        reg.push(llama.adapter, name="a", datasets=[f"name=x,path={data},rows=5"])
    with pytest.raises(NotFound, match=r"base model directory \./no/such/dir does not exist"):
        reg.push(llama.adapter, name="a", base="./no/such/dir")
    _assert_nothing_stored(reg)


def test_a_push_refused_for_want_of_a_role_writes_no_blob(team, llama, tmp_path: Path) -> None:
    """The actor's permission is checked before a byte is stored: a refused push leaves no orphan blob."""
    from registry import PermissionDenied

    erin = team("erin")  # a reviewer: may not push
    store = Path(erin.settings.store)

    def files() -> set[Path]:
        return {p for p in store.rglob("*") if p.is_file()} if store.exists() else set()

    before = files()
    adapter = llama.copy_adapter(tmp_path / "a")
    (adapter / "notes.txt").write_bytes(os.urandom(1 << 16))  # bytes the store cannot already hold
    with pytest.raises(PermissionDenied, match="erin may not push"):
        erin.push(adapter, name="sneaky", base=str(llama.base))
    assert files() == before
    assert erin.ls() == []


# -- dataset paths that would never finish hashing ------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # reading it waits for a writer that never comes
    return path


@pytest.mark.parametrize("where", ["/dev/zero", "/dev/urandom", "fifo"])
def test_a_dataset_path_that_is_a_device_or_a_pipe_is_refused(reg: Registry, llama, tmp_path: Path, where: str) -> None:
    path = str(_fifo(tmp_path / "train.jsonl")) if where == "fifo" else where
    with pytest.raises(
        InvalidMetadata, match=r"is a (character device|pipe), not a regular file or a directory"
    ) as exc:
        reg.push(llama.adapter, name="a", datasets=[f"name=x,path={path}"])
    assert path in str(exc.value) and "give the training data file or directory" in str(exc.value)
    _assert_nothing_stored(reg)


def _socket(path: Path) -> Path:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the socket file stays
    return path


@pytest.mark.parametrize("bad", ["fifo", "socket", "device-link", "outside-link", "outside-dir-link", "dangling"])
def test_a_dataset_directory_holding_a_special_file_or_a_link_out_is_refused(
    reg: Registry, llama, tmp_path: Path, bad: str
) -> None:
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "part" / "train.jsonl").write_text("{}\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.jsonl").write_text("{}\n")
    entry = data / "part" / "zz"
    make = {
        "fifo": lambda: _fifo(entry),
        "socket": lambda: _socket(entry),
        "device-link": lambda: entry.symlink_to("/dev/zero"),
        "outside-link": lambda: entry.symlink_to(outside / "secret.jsonl"),
        "outside-dir-link": lambda: entry.symlink_to(outside),
        "dangling": lambda: entry.symlink_to(data / "missing.jsonl"),
    }
    make[bad]()
    with pytest.raises(InvalidMetadata, match=r"dataset 'x': .*part/zz") as exc:
        reg.push(llama.adapter, name="a", datasets=[f"name=x,path={data}"])
    assert "regular files" in str(exc.value)
    _assert_nothing_stored(reg)


def test_a_link_inside_a_dataset_directory_is_hashed_as_its_content(reg: Registry, llama, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("{}\n{}\n")
    (data / "again.jsonl").symlink_to(data / "train.jsonl")
    pushed = reg.push(llama.adapter, name="a", datasets=[f"name=x,path={data}"])
    assert reg.show(pushed.ref).manifest.datasets[0].rows == 4


# -- hostile adapter_config.json values -------------------------------------------------------


def _with_config(llama, tmp_path: Path, **changes: object) -> Path:
    d = llama.copy_adapter(tmp_path / "a")
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg.update(changes)
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"r": -5}, r"'r' is -5; .*positive integer"),
        ({"r": 0}, r"'r' is 0; .*positive integer"),
        ({"r": 4.5}, r"'r' is 4\.5; .*positive integer"),
        ({"r": True}, r"'r' is True; .*positive integer"),
        ({"r": "4"}, r"'r' is '4'; .*positive integer"),
        ({"lora_alpha": "eight"}, r"'lora_alpha' is 'eight'; .*number"),
        ({"rank_pattern": ["q_proj", 8]}, r"'rank_pattern' must be a mapping"),
        ({"rank_pattern": "q_proj=8"}, r"'rank_pattern' must be a mapping"),
        ({"rank_pattern": {"q_proj": 8.5}}, r"'rank_pattern'\['q_proj'\] is 8\.5; .*positive integer"),
        ({"rank_pattern": {"q_proj": "8"}}, r"'rank_pattern'\['q_proj'\] is '8'"),
        ({"rank_pattern": {"q_proj(": 8}}, r"'rank_pattern' key 'q_proj\(' is not a valid regular expression"),
        ({"alpha_pattern": ["v_proj"]}, r"'alpha_pattern' must be a mapping"),
        ({"alpha_pattern": {"v_proj": "16"}}, r"'alpha_pattern'\['v_proj'\] is '16'; .*number"),
        ({"alpha_pattern": {"[v_proj": 16}}, r"'alpha_pattern' key '\[v_proj' is not a valid regular expression"),
        (
            {"target_modules": ".*(q_proj"},
            r"'target_modules' is the regular expression '\.\*\(q_proj', which is not valid",
        ),
        ({"target_modules": 42}, r"'target_modules' is 42; .*list of module names or a regular expression"),
        ({"target_modules": ["q_proj", 7]}, r"'target_modules' is \['q_proj', 7\]; .*list of module names"),
        ({"modules_to_save": {"lm_head": 1}}, r"'modules_to_save' is \{'lm_head': 1\}; .*list of module names"),
        ({"use_dora": "false"}, r"'use_dora' is 'false'; .*true or false"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_hostile_config_values_are_refused(reg: Registry, llama, tmp_path: Path, changes: dict, fragment: str) -> None:
    d = _with_config(llama, tmp_path, **changes)
    with pytest.raises(InvalidAdapter, match=fragment) as exc:
        reg.push(d, name="a")
    assert str(d / "adapter_config.json") in str(exc.value) and "save_pretrained" in str(exc.value)
    _assert_nothing_stored(reg)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_in_the_config_is_refused(reg: Registry, llama, tmp_path: Path, constant: str) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    text = (d / "adapter_config.json").read_text()
    (d / "adapter_config.json").write_text(text.replace('"lora_alpha": 8', f'"lora_alpha": {constant}'))
    assert constant in (d / "adapter_config.json").read_text()
    with pytest.raises(InvalidAdapter, match=r"non-finite number .*give a finite number"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_a_deeply_nested_config_is_refused(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    text = (d / "adapter_config.json").read_text()
    deep = "[" * 200_000 + "]" * 200_000
    (d / "adapter_config.json").write_text(text.replace('"lora_alpha": 8', f'"lora_alpha": 8, "x": {deep}'))
    with pytest.raises(InvalidAdapter, match=r"adapter_config\.json is nested too deeply"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


def test_a_config_over_the_size_limit_is_refused_before_it_is_read(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    text = (d / "adapter_config.json").read_text()
    padding = " " * (3 << 20)  # valid JSON, 3 MiB of whitespace
    (d / "adapter_config.json").write_text(text.replace('"lora_alpha": 8', f'"lora_alpha": {padding}8'))
    with pytest.raises(InvalidAdapter, match=r"adapter_config\.json is larger than 1 MiB \(3,1\d\d,\d\d\d bytes\)"):
        reg.push(d, name="a")
    _assert_nothing_stored(reg)


# -- files that pickle under other names ------------------------------------------------------


def _assert_refused_as_pickle(reg: Registry, d: Path, name: str, marker: Path) -> None:
    with pytest.raises(InvalidAdapter) as exc:
        reg.push(d, name="a")
    message = str(exc.value)
    assert name in message and "pickle" in message and "safetensors" in message, message
    assert not marker.exists()
    _assert_nothing_stored(reg)


def _object_array(marker: Path):
    import numpy as np

    array = np.empty(1, dtype=object)
    array[0] = _Payload(marker)
    return array


def test_an_npy_file_of_python_objects_is_refused(reg: Registry, llama, tmp_path: Path) -> None:
    import numpy as np

    d = llama.copy_adapter(tmp_path / "a")
    marker = tmp_path / "pwned"
    np.save(d / "embeddings.npy", _object_array(marker), allow_pickle=True)
    _assert_refused_as_pickle(reg, d, "embeddings.npy", marker)


def test_an_npy_file_with_an_object_field_in_a_structured_dtype_is_refused(
    reg: Registry, llama, tmp_path: Path
) -> None:
    import numpy as np

    d = llama.copy_adapter(tmp_path / "a")
    array = np.zeros(2, dtype=[("score", "<f4"), ("payload", "O")])
    np.save(d / "table.npy", array, allow_pickle=True)
    _assert_refused_as_pickle(reg, d, "table.npy", tmp_path / "pwned")


def test_a_numeric_npy_file_is_stored(reg: Registry, llama, tmp_path: Path) -> None:
    import numpy as np

    d = llama.copy_adapter(tmp_path / "a")
    np.save(d / "mask.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez(d / "stats.npz", mean=np.zeros(3), count=np.array([4], dtype=np.int64))
    assert {"mask.npy", "stats.npz"} <= {f.path for f in reg.show(reg.push(d, name="a").ref).manifest.files}


def test_an_npz_archive_holding_an_object_array_is_refused(reg: Registry, llama, tmp_path: Path) -> None:
    import numpy as np

    d = llama.copy_adapter(tmp_path / "a")
    marker = tmp_path / "pwned"
    np.savez(d / "state.npz", weights=np.zeros(3), extra=_object_array(marker))
    _assert_refused_as_pickle(reg, d, "state.npz", marker)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("filename", "members"),
    [
        ("weights.zip", {"archive/data.pkl": b"(lp0\n."}),  # a protocol-0 pickle, known by its name
        ("extra.dat", {"readme.txt": b"hello", "blob": b"PAYLOAD"}),  # a member starting like a pickle
        ("adapter_model.safetensors.zip", {"nested/state.pickle": b"x"}),
    ],
)
def test_a_zip_archive_holding_a_pickle_is_refused_whatever_its_name(
    reg: Registry, llama, tmp_path: Path, filename: str, members: dict[str, bytes]
) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    marker = tmp_path / "pwned"
    members = {k: pickle.dumps(_Payload(marker)) if v == b"PAYLOAD" else v for k, v in members.items()}
    _zip(d / filename, members)
    _assert_refused_as_pickle(reg, d, filename, marker)


def test_a_torch_checkpoint_under_another_name_is_refused(reg: Registry, llama, tmp_path: Path) -> None:
    import torch

    d = llama.copy_adapter(tmp_path / "a")
    torch.save({"w": torch.zeros(2)}, d / "optimizer.state")  # a zip holding archive/data.pkl
    torch.save({"w": torch.zeros(2)}, d / "legacy.state", _use_new_zipfile_serialization=False)
    with pytest.raises(InvalidAdapter, match=r"(legacy|optimizer)\.state is .*pickle.*safetensors"):
        reg.push(d, name="a")
    (d / "optimizer.state").unlink()
    _assert_refused_as_pickle(reg, d, "legacy.state", tmp_path / "pwned")


def test_a_raw_pickle_under_an_innocent_name_is_refused(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    marker = tmp_path / "pwned"
    (d / "training_state.dat").write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    _assert_refused_as_pickle(reg, d, "training_state.dat", marker)


def test_a_zip_of_plain_files_is_stored(reg: Registry, llama, tmp_path: Path) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    _zip(d / "eval-samples.zip", {"samples/1.txt": b"question", "samples/2.json": b"{}"})
    assert "eval-samples.zip" in {f.path for f in reg.show(reg.push(d, name="a").ref).manifest.files}
