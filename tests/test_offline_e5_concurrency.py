"""Two processes converting the offline e5 model at once (a fresh machine's first run) both succeed."""

import contextlib
import sys
import threading
import time
import types

import filelock
import numpy as np
import pytest

from scaling.models import offline_e5


class _FakeTokenizer:
    def __init__(self, tokenizer_file, model_max_length):
        self.file = tokenizer_file

    def save_pretrained(self, folder):
        (offline_e5.Path(folder) / "tokenizer.json").write_text("{}")


def _tiny_model(path):
    config = {"num_hidden_layers": 0, "hidden_size": 4}
    tensors = {n: np.zeros((2, 4), np.float32) for n in ("emb.word", "emb.pos", "emb.type")}
    tensors.update({"emb.ln.w": np.ones(4, np.float32), "emb.ln.b": np.zeros(4, np.float32)})
    return config, tensors


@pytest.mark.parametrize("locks", ["working", "none"])  # "none": a file system where locks do nothing
def test_concurrent_conversions_both_succeed(monkeypatch, tmp_path, locks):
    """The heavy parts are faked (seconds otherwise); the slow package lookup makes both
    conversions pass the "already converted?" check before either one renames its folder."""
    if locks == "none":
        monkeypatch.setattr(filelock, "FileLock", lambda path: contextlib.nullcontext())
    monkeypatch.setenv("SCALING_CACHE_DIR", str(tmp_path / "cache"))

    def slow_packaged_files():
        time.sleep(0.5)
        return tmp_path / "e5-small-q4.bin", tmp_path / "tokenizer.json"

    monkeypatch.setattr(offline_e5, "packaged_files", slow_packaged_files)
    monkeypatch.setattr(offline_e5, "read_q4_model", _tiny_model)
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(XLMRobertaTokenizerFast=_FakeTokenizer))

    start, results, errors = threading.Barrier(2), [], []

    def convert():
        start.wait()
        try:
            results.append(offline_e5.ensure_offline_e5())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    target = offline_e5.converted_model_dir()
    assert results == [target, target]
    assert {p.name for p in target.iterdir()} == {"model.safetensors", "config.json", "tokenizer.json", "SOURCE.md"}
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".converting-")]  # no leftovers
