"""Compile-check companion (scripts/check_kernels.sh): for every NAME.cubin that `flashcore warmup
--out-dir` wrote with a NAME.smem beside it (the dynamic shared memory the host launches the
variant with, plan/variant.rs Variant::smem_bytes), reads the kernel's own count, the symbol
fc_smem_bytes (kernels/common/types.cuh FC_EXPORT_SMEM_BYTES), from the CUBIN's ELF and fails
unless the two agree. They are computed separately (kernel config headers and the Rust planner): a
kernel given less than it uses reads and writes past its shared memory (an illegal address at
best), and one given more takes shared memory that a second CTA on the SM could have had.

    python3 scripts/check_smem.py CUBIN_DIR
"""

import pathlib
import struct
import sys


def read_symbol_int(path: pathlib.Path, name: bytes):
    """The 4-byte value of symbol `name` in an ELF64 little-endian file, or None without it."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize
        sections.append(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize))
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sec[6]]
        for off in range(sec[4], sec[4] + sec[5], 24):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from("<IBBHQQ", data, off)
            end = data.index(b"\0", strtab[4] + st_name)
            if data[strtab[4] + st_name : end] != name:
                continue
            if st_size != 4 or st_shndx >= len(sections):
                raise ValueError(f"{path}: {name.decode()} is not a 4-byte object")
            target = sections[st_shndx]
            return struct.unpack_from("<i", data, target[4] + st_value)[0]
    return None


def main() -> int:
    out = pathlib.Path(sys.argv[1])
    checked = bad = missing = 0
    for smem in sorted(out.glob("*.smem")):
        cubin = smem.with_suffix(".cubin")
        host = int(smem.read_text())
        kernel = read_symbol_int(cubin, b"fc_smem_bytes")
        if kernel is None:
            # Kernels without a dynamic shared-memory plan (prep, post, combine, FP8 V transpose).
            if host != 0:
                print(f"{cubin.name}: the host launches with {host} bytes but the kernel exports no fc_smem_bytes")
                bad += 1
            missing += 1
            continue
        checked += 1
        if host != kernel:
            print(f"{cubin.name}: the host launches with {host} bytes of shared memory, the kernel counts {kernel}")
            bad += 1
    print(f"shared memory: {checked} kernels match their launch ({missing} without a plan), {bad} mismatches")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
