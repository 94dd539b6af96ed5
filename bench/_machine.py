"""Machine description stored inside every benchmark's JSON."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict:
    cpu = platform.processor() or ""
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as fh:
            lines = fh.read().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
        every = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
        # The flags that change which kernels run (and so the speeds measured): SIMD width, bf16, AMX, VNNI.
        flags = sorted(f for f in every if f.startswith(("avx", "amx", "fma", "f16c", "sse4")))
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": None,
        "python": platform.python_version(),
    }
    # Kernel ISA caps (e.g. emulating an AVX2-only CPU on an AVX-512 one): the flags above are then not what ran.
    limits = {
        k: os.environ[k]
        for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
        if k in os.environ
    }
    if limits:
        info["isa_limits"] = limits
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info
