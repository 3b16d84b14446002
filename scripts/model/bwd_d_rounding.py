"""Why the backward's Sq = 1 dK case fails the 2x-naive bar now and then (bench/NOTES.md session 13
item 7): a host model of one query row against 200 keys (d64, uniform(-3, 3) inputs as the GPU test
draws them), three ways: the f64 reference, the naive same-dtype backward of reference.rs
(Precision::Naive: D = rowsum(dP * P) from rounded P and dP), and the kernels' arithmetic (P from fp32
scores and the LSE, dP in fp32, dS rounded to 16 bits for the dK GEMM, and D = rowsum(dO * O) from the
forward's 16-bit O), once more with D taken from P and dP instead. Prints how often each exceeds 2x the
naive max error. Needs numpy and ml_dtypes; `python scripts/model/bwd_d_rounding.py bf16|fp16`.
"""
import numpy as np, ml_dtypes, sys
dtn = sys.argv[1] if len(sys.argv) > 1 else 'bf16'
DT = ml_dtypes.bfloat16 if dtn == 'bf16' else np.float16
def r(x): return np.asarray(x, np.float32).astype(DT).astype(np.float32)
def trial(seed, d=64, sk=200):
    g = np.random.default_rng(seed)
    q = r(g.uniform(-3, 3, d)); k = r(g.uniform(-3, 3, (sk, d))); v = r(g.uniform(-3, 3, (sk, d))); do = r(g.uniform(-3, 3, d))
    sc = 1 / np.sqrt(d)
    # f64 reference
    q64, k64, v64, do64 = (x.astype(np.float64) for x in (q, k, v, do))
    s = k64 @ q64 * sc; p = np.exp(s - s.max()); p /= p.sum()
    dp = v64 @ do64; D = (p * dp).sum(); ds = p * (dp - D)
    dk_ref = np.outer(ds, q64) * sc
    # naive (reference.rs Precision::Naive)
    s32 = r(r(k @ q) * np.float32(sc)); e = np.exp(s32 - s32.max()); l = e.sum(); pn = r(e / l)
    dpn = r(v @ do); Dn = np.float32((pn * dpn).sum())
    dsn = r(r(r(pn * (dpn - Dn)) * 1.0) * np.float32(sc))
    dk_n = r(np.outer(dsn, q).astype(np.float32))
    # kernel-like: forward O rounded, D from dO . O, P from fp32 scores and fp32 LSE, dP fp32,
    # dS fp32 rounded to 16 bits for the dK GEMM (fp32 accumulate), dK scaled then rounded
    s_k = (k @ q).astype(np.float32) * np.float32(sc); m = s_k.max(); lse = m + np.log(np.exp(s_k - m).sum())
    pk = np.exp(s_k - lse).astype(np.float32)
    o = r(pk @ v); Dk = np.float32((do * o).sum())
    dpk = (v @ do).astype(np.float32)
    dsk = r(pk * (dpk - Dk))
    dk_k = r(np.outer(dsk, q) * np.float32(sc))
    # kernel-like with the exact D (what a D not going through the rounded O would give)
    dsx = r(pk * (dpk - np.float32((pk * dpk).sum())))
    dk_x = r(np.outer(dsx, q) * np.float32(sc))
    en = np.abs(dk_n - dk_ref).max(); ek = np.abs(dk_k - dk_ref).max(); ex = np.abs(dk_x - dk_ref).max()
    return ek / en, ex / en
res = np.array([trial(s) for s in range(2000)])
print(dtn, "ratio > 2 (D from rounded O): %.3f, median %.2f" % ((res[:, 0] > 2).mean(), np.median(res[:, 0])),
      "| D from P, dP: %.3f, median %.2f" % ((res[:, 1] > 2).mean(), np.median(res[:, 1])))
