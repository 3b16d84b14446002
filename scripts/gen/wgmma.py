"""Generates kernels/common/ptx/wgmma_ops.cuh: one inline-asm wrapper per wgmma shape we use.

wgmma takes every accumulator register as its own operand (N/2 of them for m64nN), which is
unreadable to write by hand; this script writes them. Run: python3 scripts/gen/wgmma.py
"""

import pathlib

OUT = pathlib.Path(__file__).resolve().parents[2] / "kernels/common/ptx/wgmma_ops.cuh"
NS = [64, 80, 96, 128, 160, 176, 192, 256]
TYPES = {"bf16": "Bf16", "f16": "F16"}
# e4m3 (FP8 forward): Q·Kᵀ at N = block_n and P·V at N = head dim. FP8 wgmma has K = 32 and no
# transpose: both operands K-major.
NS_E4M3 = [64, 128, 256]
# P·V with the row sums of P: N = head dim + 8, the extra 8 columns of B all ones (sm90 config.cuh
# kSumMma), accumulating into a second array. 16-bit d64 and e4m3 d64 / d128.
NS_SUM = [64]
NS_SUM_E4M3 = [64, 128]


def regs(lo, hi):
    return ", ".join(f"%{i}" for i in range(lo, hi))


def acc_operands(n):
    return ", ".join(f'"+f"(d[{i // 4}][{i % 4}])' for i in range(n // 2))


def ss(n, t):
    r = n // 2
    return f"""
// D (64 x {n}, f32) {{=, +=}} A (64 x 16, smem) * B (16 x {n}, smem), {t} inputs. Both operands
// K-major by default; TransA / TransB = 1 reads that operand MN-major (its M or N index contiguous).
template <int TransA = 0, int TransB = 0>
FC_DEVICE void wgmma_ss_m64n{n}k16_{t}(float (&d)[{n // 8}][4], u64 desc_a, u64 desc_b, int accumulate) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{r + 2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{t}.{t} "
      "{{{regs(0, r)}}}, %{r}, %{r + 1}, p, 1, 1, %{r + 3}, %{r + 4};\\n}}\\n"
      : {acc_operands(n)}
      : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(TransA), "n"(TransB));
}}
"""


def rs(n, t):
    r = n // 2
    return f"""
// D (64 x {n}, f32) += A (64 x 16, registers) * B (16 x {n}, smem, K-major or, with TransB, MN-major), {t}.
template <int TransB>
FC_DEVICE void wgmma_rs_m64n{n}k16_{t}(float (&d)[{n // 8}][4], const u32 (&a)[4], u64 desc_b) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, 1, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{t}.{t} "
      "{{{regs(0, r)}}}, {{%{r}, %{r + 1}, %{r + 2}, %{r + 3}}}, %{r + 4}, p, 1, 1, %{r + 5};\\n}}\\n"
      : {acc_operands(n)}
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(TransB));
}}
"""


def sum_operands(n):
    return acc_operands(n) + ", " + ", ".join(f'"+f"(e[{i}])' for i in range(4))


def rs_sum(n, t):
    r = n // 2 + 4
    return f"""
// [D | E] (64 x ({n} + 8), f32) += A (64 x 16, registers) * B (16 x ({n} + 8), smem, K-major or, with
// TransB, MN-major), {t}: E takes the last 8 columns of B (all ones: the row sums of A).
template <int TransB>
FC_DEVICE void wgmma_rs_m64n{n + 8}k16_{t}(float (&d)[{n // 8}][4], float (&e)[4], const u32 (&a)[4], u64 desc_b) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, 1, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n + 8}k16.f32.{t}.{t} "
      "{{{regs(0, r)}}}, {{%{r}, %{r + 1}, %{r + 2}, %{r + 3}}}, %{r + 4}, p, 1, 1, %{r + 5};\\n}}\\n"
      : {sum_operands(n)}
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(TransB));
}}
"""


def rs_sum_e4m3(n):
    r = n // 2 + 4
    return f"""
// [D | E] (64 x ({n} + 8), f32) += A (64 x 32, registers: 4 e4m3 per u32) * B (32 x ({n} + 8), smem,
// K-major), e4m3: E takes the last 8 columns of B (all ones: the row sums of A).
FC_DEVICE void wgmma_rs_m64n{n + 8}k32_e4m3(float (&d)[{n // 8}][4], float (&e)[4], const u32 (&a)[4], u64 desc_b) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, 1, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n + 8}k32.f32.e4m3.e4m3 "
      "{{{regs(0, r)}}}, {{%{r}, %{r + 1}, %{r + 2}, %{r + 3}}}, %{r + 4}, p, 1, 1;\\n}}\\n"
      : {sum_operands(n)}
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
}}
"""


def dispatch_sum():
    out = ["\n// P·V with row sums: N is the head dim (the B operand is N + 8 wide)."]
    out += dispatch_fn(
        "template <int N, bool Bf16, int TransB>\n"
        "FC_DEVICE void wgmma_rs_sum(float (&d)[N / 8][4], float (&e)[4], const u32 (&a)[4], u64 b)",
        NS_SUM,
        lambda n: f"{{ if constexpr (Bf16) wgmma_rs_m64n{n + 8}k16_bf16<TransB>(d, e, a, b); "
        f"else wgmma_rs_m64n{n + 8}k16_f16<TransB>(d, e, a, b); }}",
        "wgmma N + 8",
    )
    out += dispatch_fn(
        "template <int N>\nFC_DEVICE void wgmma_rs_sum_e4m3(float (&d)[N / 8][4], float (&e)[4], const u32 (&a)[4], u64 b)",
        NS_SUM_E4M3,
        lambda n: f"wgmma_rs_m64n{n + 8}k32_e4m3(d, e, a, b);",
        "e4m3 wgmma N + 8",
    )
    return "\n".join(out)


def dispatch_fn(head, ns, call, what):
    """One compile-time dispatcher over N: head is its signature, call(n) the statement for n."""
    out = [head + " {"]
    for n in ns:
        out.append(f"  if constexpr (N == {n}) {call(n)}")
    cond = " || ".join(f"N == {n}" for n in ns)
    out.append(f'  static_assert({cond}, "{what} not generated");\n}}')
    return out


def ss_e4m3(n):
    r = n // 2
    return f"""
// D (64 x {n}, f32) {{=, +=}} A (64 x 32, smem) * B (32 x {n}, smem), e4m3 inputs, both K-major.
FC_DEVICE void wgmma_ss_m64n{n}k32_e4m3(float (&d)[{n // 8}][4], u64 desc_a, u64 desc_b, int accumulate) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{r + 2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k32.f32.e4m3.e4m3 "
      "{{{regs(0, r)}}}, %{r}, %{r + 1}, p, 1, 1;\\n}}\\n"
      : {acc_operands(n)}
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}}
"""


def rs_e4m3(n):
    r = n // 2
    return f"""
// D (64 x {n}, f32) += A (64 x 32, registers: 4 e4m3 per u32) * B (32 x {n}, smem, K-major), e4m3.
FC_DEVICE void wgmma_rs_m64n{n}k32_e4m3(float (&d)[{n // 8}][4], const u32 (&a)[4], u64 desc_b) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, 1, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k32.f32.e4m3.e4m3 "
      "{{{regs(0, r)}}}, {{%{r}, %{r + 1}, %{r + 2}, %{r + 3}}}, %{r + 4}, p, 1, 1;\\n}}\\n"
      : {acc_operands(n)}
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
}}
"""


def dispatch_e4m3():
    out = ["\n// e4m3 shape dispatch."]
    out += dispatch_fn(
        "template <int N>\nFC_DEVICE void wgmma_ss_e4m3(float (&d)[N / 8][4], u64 a, u64 b, int accumulate)",
        NS_E4M3,
        lambda n: f"wgmma_ss_m64n{n}k32_e4m3(d, a, b, accumulate);",
        "e4m3 wgmma N",
    )
    out += dispatch_fn(
        "template <int N>\nFC_DEVICE void wgmma_rs_e4m3(float (&d)[N / 8][4], const u32 (&a)[4], u64 b)",
        NS_E4M3,
        lambda n: f"wgmma_rs_m64n{n}k32_e4m3(d, a, b);",
        "e4m3 wgmma N",
    )
    return "\n".join(out)


def dispatch():
    out = ["\n// Shape/type dispatch: N and the dtype are compile-time."]
    out.append(
        "template <int N, bool Bf16, int TransA = 0, int TransB = 0>\n"
        "FC_DEVICE void wgmma_ss(float (&d)[N / 8][4], u64 a, u64 b, int accumulate) {"
    )
    for n in NS:
        out.append(
            f"  if constexpr (N == {n}) {{ if constexpr (Bf16) wgmma_ss_m64n{n}k16_bf16<TransA, TransB>(d, a, b, accumulate); "
            f"else wgmma_ss_m64n{n}k16_f16<TransA, TransB>(d, a, b, accumulate); }}"
        )
    cond = " || ".join(f"N == {n}" for n in NS)
    out.append(f'  static_assert({cond}, "wgmma N not generated");\n}}')
    out.append("template <int N, bool Bf16, int TransB>\nFC_DEVICE void wgmma_rs(float (&d)[N / 8][4], const u32 (&a)[4], u64 b) {")
    for n in NS:
        out.append(f"  if constexpr (N == {n}) {{ if constexpr (Bf16) wgmma_rs_m64n{n}k16_bf16<TransB>(d, a, b); else wgmma_rs_m64n{n}k16_f16<TransB>(d, a, b); }}")
    out.append("}")
    return "\n".join(out)


def main():
    body = [
        "// GENERATED by scripts/gen/wgmma.py: do not edit by hand.",
        "// wgmma.mma_async (PTX ISA 9.7.15, sm_90a). Accumulators in the m64nNk16 D layout: warp w of the",
        "// warpgroup owns rows 16w..16w+15 and d[i][0..3] holds (g, 8i+2t..+1), (g+8, 8i+2t..+1).",
        "#pragma once",
        '#include "../types.cuh"',
        "",
        "namespace ptx::warpgroup {",
    ]
    for n in NS:
        for t in TYPES:
            body.append(ss(n, t))
            body.append(rs(n, t))
    body.append(dispatch())
    for n in NS_E4M3:
        body.append(ss_e4m3(n))
        body.append(rs_e4m3(n))
    body.append(dispatch_e4m3())
    for n in NS_SUM:
        for t in TYPES:
            body.append(rs_sum(n, t))
    for n in NS_SUM_E4M3:
        body.append(rs_sum_e4m3(n))
    body.append(dispatch_sum())
    body.append("\n}  // namespace ptx::warpgroup")
    OUT.write_text("\n".join(body) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
