import hashlib
import subprocess
from pathlib import Path

from registry.domain.canonical import canonical_json, listing_digest


def test_canonical_json_is_key_order_independent_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_listing_digest_equals_sha256sum_of_the_sorted_listing(tmp_path: Path) -> None:
    files = {"model-00002.safetensors": b"two", "model-00001.safetensors": b"one", "sub/x.safetensors": b"x"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    entries = [(n, hashlib.sha256(d).hexdigest()) for n, d in files.items()]
    listing = subprocess.run(
        "sha256sum $(find . -type f | sed 's|^./||' | LC_ALL=C sort) | sha256sum",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert listing_digest(entries) == "sha256:" + listing
