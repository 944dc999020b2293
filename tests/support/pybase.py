"""A small Python base image made from the host's own interpreter, offline.

The Dockerfile builds ``FROM`` any image that has CPython as ``python3`` in
``/usr/local/bin`` (the official slim image, normally). No registry is
reachable here, so the tests make such an image themselves: the running
interpreter, its standard library, and the shared libraries that ``ldd``
says they need, laid out like the official image and fed to
``docker import``. It takes seconds and some 60 MB.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

# Parts of the standard library that berth never imports and that would
# only add size (or, for tkinter, drag in X11).
SKIPPED_STDLIB = {
    "__pycache__",
    "site-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "config-3.11-x86_64-linux-gnu",
}

# Extension modules left out for the same reasons: GUI, terminals, tests.
SKIPPED_MODULES = re.compile(r"^(_tkinter|_curses|readline|nis|_test|xx|_ctypes_test)")

# What manylinux wheels may assume of the system (PEP 600's policy), less
# the graphical libraries.
WHEEL_LIBRARIES = (
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libresolv.so.2",
    "libnsl.so.1",
    "libcrypt.so.1",
    "libz.so.1",
    "libexpat.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
)

_LDD_PATH = re.compile(r"(/\S+)\s+\(0x")

PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _needed_libraries(binary: Path) -> set[Path]:
    """Absolute paths of the shared libraries ``binary`` loads."""
    done = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=False
    )
    return {Path(m.group(1)) for m in _LDD_PATH.finditer(done.stdout)}


def _copy_with_links(source: Path, root: Path) -> None:
    """Copy ``source`` under ``root`` at the same path, recreating symlinks.

    ``/lib`` is a link to ``usr/lib`` on a merged-/usr system and the ELF
    interpreter is reached through ``/lib64``; the image needs both links,
    not only the files they lead to.
    """
    current = Path("/")
    for part in source.parts[1:]:
        current = current / part
        target = root / current.relative_to("/")
        if current.is_symlink():
            if not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(current))
            current = Path(os.path.realpath(current))
    target = root / current.relative_to("/")
    if current.is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(current, target)
    elif current.is_dir():
        target.mkdir(parents=True, exist_ok=True)


def _ignore_stdlib(directory: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if n in SKIPPED_STDLIB}
    if Path(directory).name == "lib-dynload":
        skipped |= {n for n in names if SKIPPED_MODULES.match(n)}
    return skipped


def _stage(root: Path) -> None:
    """Lay the host's interpreter out under ``root`` like the official image."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = Path(sys.base_prefix)
    interpreter = prefix / "bin" / f"python{version}"
    stdlib = Path(sysconfig.get_paths()["stdlib"])

    bin_dir = root / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(interpreter, bin_dir / f"python{version}")
    for alias in ("python3", "python"):
        (bin_dir / alias).symlink_to(f"python{version}")
    lib = root / "usr/local/lib" / f"python{version}"
    shutil.copytree(stdlib, lib, ignore=_ignore_stdlib, symlinks=True)
    (lib / "site-packages").mkdir()

    binaries = [interpreter, *sorted((lib / "lib-dynload").glob("*.so"))]
    libraries: set[Path] = set()
    for binary in binaries:
        libraries |= _needed_libraries(binary)
    system_dir = next(p.parent for p in libraries if p.name.startswith("libc.so"))
    for name in WHEEL_LIBRARIES:
        if (system_dir / name).exists():
            libraries |= {system_dir / name} | _needed_libraries(system_dir / name)

    for library in sorted(libraries):
        if library.is_relative_to(prefix):
            # libpython: where the loader looks by default, since the
            # interpreter's RUNPATH names the host's prefix.
            destination = root / system_dir.relative_to("/") / library.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library, destination)
        else:
            _copy_with_links(library, root)

    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)


def build_base_image(tag: str, workdir: Path) -> str:
    """Make the base image ``tag`` from the running interpreter; its ID."""
    root = workdir / "rootfs"
    _stage(root)
    archive = workdir / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(root.iterdir()):
            tar.add(entry, arcname=entry.name)
    shutil.rmtree(root)

    done = subprocess.run(
        [
            "docker",
            "import",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            'CMD ["python3"]',
            str(archive),
            tag,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    archive.unlink()
    return done.stdout.strip()
