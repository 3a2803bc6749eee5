"""Build and load ``native_int8.c`` with the machine's C compiler, cached per source and compiler."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BackendUnavailable

SOURCE = Path(__file__).resolve().parent / "native_int8.c"

# Tuned for the CPU it is built on: the library is built where it runs and never shipped.
_ARCH_FLAGS = (("-march=native",), ("-mcpu=native",), ())


def _arch_flags() -> tuple[tuple[str, ...], ...]:
    # EDGEFER_NATIVE_PORTABLE=1 builds for the baseline architecture: the plain C loops
    # (tests use it to check them against the vector code).
    return ((),) if os.environ.get("EDGEFER_NATIVE_PORTABLE") == "1" else _ARCH_FLAGS


def find_compiler() -> str | None:
    """``$CC``, else cc, gcc or clang on the PATH, else None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def has_compiler() -> bool:
    """Whether a C compiler is on the PATH (or named by ``$CC``)."""
    return find_compiler() is not None


def compiler() -> str:
    """``find_compiler()``, or an error naming what to install."""
    found = find_compiler()
    if found:
        return found
    raise BackendUnavailable("the native backend compiles runtime/backends/native_int8.c on first use and "
                             "needs a C compiler: install gcc (apt install gcc) or set CC")


def cache_dir() -> Path:
    """``$EDGEFER_CACHE``, else ``$XDG_CACHE_HOME/edgefer``, else ``~/.cache/edgefer``."""
    if os.environ.get("EDGEFER_CACHE"):
        return Path(os.environ["EDGEFER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgefer"


def _compiler_identity(cc: str) -> str:
    try:
        done = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return done.stdout.splitlines()[0] if done.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


def _cpu_identity() -> str:
    # -march=native code is only good on this CPU model: a cache shared across machines
    # (a home on NFS, a copied image) must not hand one CPU's build to another.
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part", "CPU implementer")
    return "|".join(sorted({line.strip() for line in text.splitlines() if line.split(":")[0].strip() in wanted}))


def _compile(cc: str, out: Path) -> str:
    """Compile to ``out``; the first architecture flag the compiler accepts wins. Returns the command."""
    errors = []
    for arch in _arch_flags():
        cmd = [cc, "-O3", *arch, "-shared", "-fPIC", "-std=c11", str(SOURCE), "-o", str(out), "-lm"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{' '.join(cmd)}: {exc}")
            continue
        if done.returncode == 0:
            return " ".join(cmd)
        errors.append(f"{' '.join(cmd)}:\n{done.stderr.strip()[-2000:]}")
    raise BackendUnavailable("could not compile the native backend's engine:\n" + "\n".join(errors))


def library_path() -> Path:
    """The built library, compiling it first if this source and compiler have not been built here."""
    cc = compiler()
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(f"{_compiler_identity(cc)}|{platform.machine()}|{_arch_flags()}|{_cpu_identity()}".encode())
    name = f"edgefer_native_int8-{key.hexdigest()[:16]}.so"
    for directory in (cache_dir(), Path(tempfile.gettempdir()) / f"edgefer-{os.getuid()}"):
        target = directory / name
        if target.exists():
            return target
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Build beside the target and rename: a second process never loads half a file.
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
            os.close(fd)
        except OSError:
            continue  # a read-only home (a hardened service): try the temporary directory
        try:
            _compile(cc, Path(tmp))
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target
    raise BackendUnavailable(f"no writable directory to build the native backend in: set EDGEFER_CACHE "
                             f"(tried {cache_dir()} and the temporary directory)")


def load_library() -> ctypes.CDLL:
    """The engine, built on first use; its entry points typed."""
    lib = ctypes.CDLL(str(library_path()))
    lib.edgefer_native_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_long]
    lib.edgefer_native_run.restype = None
    lib.edgefer_native_infer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.edgefer_native_infer.restype = None
    lib.edgefer_native_batch_size.restype = ctypes.c_int
    lib.edgefer_native_op_size.restype = ctypes.c_int
    lib.edgefer_native_vnni.restype = ctypes.c_int
    return lib
