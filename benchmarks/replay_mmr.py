"""Issue 12 replay: maximal marginal relevance over the default ranking, judged held-out.

Records each LoCoMo question's ranking inputs as ``bench_locomo_cv`` does, then re-orders
the top 40 by MMR (lambda chosen per rotation with the base grid, on the other two
conversations) and prints held-out R@10 per category beside the plain default. Result
(2026-12-06): no gain; see docs/benchmarks.md after the context-vector section.
Run: ``.venv/bin/python benchmarks/replay_mmr.py`` (about 5 min on a quiet 2-core machine).
"""

import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import bench_locomo_cv as B  # noqa: E402

from memvault import Memory  # noqa: E402
from memvault.retrieval import RetrievalConfig, rank  # noqa: E402

convs, emb = B.dev_conversations()
names = [c[0] for c in convs]
with tempfile.TemporaryDirectory() as tmp:
    memory = Memory(path=os.path.join(tmp, "cv.db"), embedder=emb)
    maps = B.ingest(memory, convs, timestamps=True)
    cases = []
    with B.Recorder() as rec:
        for scope, _i, qs, _f in convs:
            for q in qs:
                memory.search(
                    q.question, user_id=scope, top_k=20, retrieval=RetrievalConfig(**B.CAPTURE)
                )
                cases.append(B.Case(scope, q.category, q.question, q.evidence, rec.last))
    memory.close()
vecs: dict[str, np.ndarray] = {}
for cv in maps:
    v = emb.embed(maps[cv].texts)
    vecs[cv] = v / np.linalg.norm(v, axis=1, keepdims=True)


def mmr_order(order, final, V, lam, pool=40):
    top = order[:pool]
    s = final[top]
    s = (s - s.min()) / max(s.max() - s.min(), 1e-9)
    S = V[top] @ V[top].T
    chosen = []
    maxsim = np.full(len(top), -1.0)
    left = np.ones(len(top), bool)
    for _ in range(min(20, len(top))):
        score = lam * s - (1 - lam) * np.maximum(maxsim, 0)
        score[~left] = -np.inf
        i = int(np.argmax(score))
        chosen.append(i)
        left[i] = False
        maxsim = np.maximum(maxsim, S[i])
    return np.concatenate([top[chosen], order[pool:]])


def replay(cfg, lam):
    res = np.zeros((len(cases), len(B.KS)))
    for j, c in enumerate(cases):
        r = rank(**c.inputs, cfg=cfg)
        order = r.order if lam >= 1 else mmr_order(r.order, r.final, vecs[c.conv], lam)
        res[j] = B.recalls(B.top_items(order, maps[c.conv]), c, maps[c.conv])
    return res


cfgs = B.grid(B.BASE | {"entity_weight": [0.02, 0.05]}, {})
out = {}
for lams in ([1.0], [0.5, 0.7, 0.8, 0.9, 1.0]):
    t = time.time()
    table, params = [], []
    for lam in lams:
        for cfg in cfgs:
            table.append(replay(cfg, lam))
            params.append(B._diff(cfg) | {"mmr": lam})
    r = B.cv_table(table, params, cases, names)
    h = r["held_out"]
    print(
        lams,
        {k: round(v["R@10"], 3) for k, v in h.items()},
        "R@5",
        round(h["overall"]["R@5"], 3),
        "R@20",
        round(h["overall"]["R@20"], 3),
        {k: v["params"].get("mmr") for k, v in r["chosen"].items()},
        f"{time.time() - t:.0f}s",
        flush=True,
    )
    out[str(lams)] = r
with open(os.path.join(B.RESULTS, "replay_mmr.json"), "w") as f:
    json.dump(out, f, indent=1, default=str)
