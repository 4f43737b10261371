import json
from pathlib import Path

import pytest

from registry import Dataset, Evaluation, InvalidMetadata, PushMetadata, Quantization


def test_dataset_spec_parses_every_key() -> None:
    d = Dataset.parse(
        "name=tickets,uri=s3://b/t,revision=v3,sha256=SHA256:"
        + "A" * 64
        + ",license=cc-by-4.0,rows=1200,split=train,path=d.jsonl"
    )
    assert d == Dataset(
        name="tickets",
        uri="s3://b/t",
        revision="v3",
        sha256="a" * 64,
        license="cc-by-4.0",
        rows=1200,
        split="train",
        path="d.jsonl",
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("uri=x", "'name' is required"),
        ("name=x,colour=red", "unknown key(s) ['colour']"),
        ("name=x,rows=many", "rows must be an integer"),
        ("name=x,sha256=abc", "64 hex digits"),
        ("name=x,novalue", "not key=value"),
        ("name=x,name=y", "twice"),
    ],
)
def test_bad_dataset_specs_name_the_problem(spec: str, fragment: str) -> None:
    with pytest.raises(InvalidMetadata) as exc:
        Dataset.parse(spec)
    assert fragment in str(exc.value)


def test_eval_spec() -> None:
    assert Evaluation.parse("accuracy=0.91") == Evaluation("accuracy", 0.91)
    for bad, fragment in [("accuracy", "METRIC=VALUE"), ("acc=high", "must be a number"), ("acc=nan", "finite")]:
        with pytest.raises(InvalidMetadata, match=fragment):
            Evaluation.parse(bad)


def test_quantization_forms() -> None:
    assert Quantization.parse("NF4").method == "nf4"
    q = Quantization.parse({"method": "nf4", "double_quant": True, "compute_dtype": "bfloat16"})
    assert (q.method, q.double_quant, q.compute_dtype) == ("nf4", True, "bfloat16")
    with pytest.raises(InvalidMetadata, match="none, nf4, fp4, int8"):
        Quantization.parse("int3")
    with pytest.raises(InvalidMetadata, match="unknown quantization key"):
        Quantization.parse({"method": "nf4", "bits": 4})


def test_meta_file_yaml_and_json_and_flags_override(tmp_path: Path) -> None:
    yaml_file = tmp_path / "meta.yaml"
    yaml_file.write_text(
        """
base: org/base
quantization: {method: nf4, double_quant: true}
datasets:
  - {name: tickets, license: mit}
  - {name: chats, license: apache-2.0}
evals: {accuracy: 0.9, f1: 0.8}
training: {lr: 0.0002, epochs: 3}
description: from file
"""
    )
    from_yaml = PushMetadata.from_file(yaml_file)
    json_file = tmp_path / "meta.json"
    json_file.write_text(
        json.dumps(
            {
                "base": "org/base",
                "quantization": {"method": "nf4", "double_quant": True},
                "datasets": [{"name": "tickets", "license": "mit"}, {"name": "chats", "license": "apache-2.0"}],
                "evals": [{"metric": "accuracy", "value": 0.9}, {"metric": "f1", "value": 0.8}],
                "training": {"lr": 0.0002, "epochs": 3},
                "description": "from file",
            }
        )
    )
    assert PushMetadata.from_file(json_file) == from_yaml

    flags = PushMetadata(
        base="org/other", datasets=(Dataset(name="tickets", license="cc0"),), evals=(Evaluation("accuracy", 0.95),)
    )
    merged = from_yaml.overridden_by(flags)
    assert merged.base == "org/other"
    assert merged.quantization == Quantization("nf4", True, None)  # kept from the file
    assert {d.name: d.license for d in merged.datasets} == {"tickets": "cc0", "chats": "apache-2.0"}
    assert {e.metric: e.value for e in merged.evals} == {"accuracy": 0.95, "f1": 0.8}
    assert merged.description == "from file"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("base: x\ncolour: red\n", "unknown key(s) ['colour']"),
        ("datasets: {name: x}\n", "'datasets' must be a list"),
        ("datasets:\n  - {uri: x}\n", "'name' is required"),
        ("evals: [{metric: a}]\n", "'metric' and 'value'"),
        ("training: [1, 2]\n", "'training' must be a mapping"),
        ("- just a list\n", "must hold a mapping"),
        ("base: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_meta_files_are_refused(tmp_path: Path, content: str, fragment: str) -> None:
    f = tmp_path / "meta.yaml"
    f.write_text(content)
    with pytest.raises(InvalidMetadata) as exc:
        PushMetadata.from_file(f)
    assert fragment in str(exc.value)
    assert str(f) in str(exc.value)


# -- hostile meta files: YAML bombs, huge files, devices and pipes ---------------------------


def _billion_laughs(key: str) -> str:
    """Nine levels of nine aliases under ``key``: 9**9 strings once expanded, from under 1 KiB."""
    levels = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    levels += [f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
    return f"{key}:\n" + "".join(levels)


@pytest.mark.parametrize(
    "content",
    [
        _billion_laughs("training"),
        "description: &d hello\nbase: *d\n",
        "training: &t {lr: 1}\nquantization: {<<: *t}\n",
    ],
    ids=["billion-laughs", "one-alias", "merge-key"],
)
def test_yaml_aliases_in_a_meta_file_are_refused(tmp_path: Path, content: str) -> None:
    f = tmp_path / "meta.yaml"
    f.write_text(content)
    with pytest.raises(InvalidMetadata, match=r"anchors and aliases .* are not accepted.*write the value out") as exc:
        PushMetadata.from_file(f)
    assert str(f) in str(exc.value)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_meta_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"meta{suffix}"
    f.write_text('{"description": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(
        InvalidMetadata, match=r"metadata file .* is larger than 1 MiB \(2,0\d\d,\d\d\d bytes\).*at most 1 MiB"
    ) as exc:
        PushMetadata.from_file(f)
    assert str(f) in str(exc.value)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_deeply_nested_meta_file_is_refused(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"meta{suffix}"
    f.write_text('{"training": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(InvalidMetadata, match=r"nested too deeply") as exc:
        PushMetadata.from_file(f)
    assert str(f) in str(exc.value)


def test_a_device_or_a_pipe_as_meta_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    import os

    with pytest.raises(InvalidMetadata, match=r"/dev/zero is not a regular file"):
        PushMetadata.from_file("/dev/zero")
    fifo = tmp_path / "meta.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    with pytest.raises(InvalidMetadata, match=r"is not a regular file \(a pipe"):
        PushMetadata.from_file(fifo)
