"""influxd (InfluxDB OSS 2.x) built from the Go module proxy, libflux built by cargo, no UI assets.

The registries are the only sources this lab can rely on (no release downloads), so influxd is built:
both Go modules come from the module proxy, libflux (Rust) is built with the local toolchain.
Each step leaves a marker, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

from labkit.console import say
from labkit.errors import LabkitError
from labkit.paths import cache_dir
from labkit.stack.provision._run import run_logged
from labkit.stack.provision.tools import require
from labkit.versions import FLUX, INFLUXDB


def influxd_path(version: str = INFLUXDB) -> Path:
    return cache_dir() / "influxdb" / version / "influxd"


def is_provisioned(version: str = INFLUXDB) -> bool:
    return influxd_path(version).is_file()


def _module_dir(module: str, version: str, log: Path) -> Path:
    run_logged(["go", "mod", "download", module + "@v" + version], what=f"download {module}@v{version}", log=log)
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@v{version}"], capture_output=True, text=True, check=True
    ).stdout
    return Path(json.loads(out)["Dir"])


def _writable_copy(src: Path, dst: Path) -> None:
    if (dst / ".labkit-copied").exists():
        return
    if dst.exists():
        shutil.rmtree(dst, onerror=lambda f, p, e: (os.chmod(p, stat.S_IWRITE | stat.S_IREAD), f(p)))
    shutil.copytree(src, dst, copy_function=shutil.copy)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            p = Path(root) / name
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    (dst / ".labkit-copied").touch()


def _patch_flux(flux: Path) -> None:
    # The pinned toolchain (Rust 1.72) is not downloadable here, and `strict` turns new-compiler
    # warnings into errors; the code itself builds fine with current Rust.
    (flux / "rust-toolchain.toml").unlink(missing_ok=True)
    for cargo_toml in (flux / "libflux/flux/Cargo.toml", flux / "libflux/flux-core/Cargo.toml"):
        text = cargo_toml.read_text()
        text = re.sub(
            r"^default = \[(.*)\]$",
            lambda m: (
                "default = ["
                + ", ".join(f for f in (x.strip() for x in m.group(1).split(",")) if f and f != '"strict"')
                + "]"
            ),
            text,
            count=1,
            flags=re.M,
        )
        cargo_toml.write_text(text)


def provision(version: str = INFLUXDB, flux_version: str = FLUX) -> Path:
    """Build influxd `version` into the cache (idempotent, resumable) and return its path."""
    target = influxd_path(version)
    if target.is_file():
        return target
    for tool in ("go", "cargo", "pkg-config", "cc"):
        require(tool)
    build = cache_dir() / "build" / f"influxdb-{version}"
    log = build / "build.log"
    build.mkdir(parents=True, exist_ok=True)
    say(f"building influxd {version} from the Go module proxy (first time only; ~20-35 min on 2 cores)")

    flux = build / f"flux-{flux_version}"
    influx = build / f"influxdb-{version}"
    _writable_copy(_module_dir("github.com/influxdata/flux", flux_version, log), flux)
    _writable_copy(_module_dir("github.com/influxdata/influxdb/v2", version, log), influx)
    _patch_flux(flux)

    libdir = build / "lib"
    if not (libdir / "libflux.a").exists():
        run_logged(
            ["cargo", "build", "--release", "--locked"],
            what="cargo build libflux (Rust)",
            log=log,
            cwd=flux / "libflux",
            env={"RUSTFLAGS": "--cap-lints=warn", "CARGO_TARGET_DIR": str(build / "cargo-target")},
        )
        libdir.mkdir(exist_ok=True)
        # Only the static archive goes in: linking it keeps influxd free of a runtime .so dependency.
        shutil.copy(build / "cargo-target/release/libflux.a", libdir / "libflux.a")
    pc = build / "pkgconfig"
    pc.mkdir(exist_ok=True)
    (pc / "flux.pc").write_text(
        f"Name: flux\nDescription: libflux\nVersion: {flux_version}\n"
        f"Cflags: -I{flux / 'libflux/include'}\n"
        f"Libs: -L{libdir} -lflux -lpthread -ldl -lm\n"
    )
    out = build / "influxd"
    if not out.exists():
        run_logged(
            [
                "go",
                "build",
                "-tags",
                "sqlite_foreign_keys,sqlite_json",
                "-ldflags",
                f"-X main.version={version} -X main.commit=labkit -X main.date=unknown",
                "-o",
                str(out),
                "./cmd/influxd",
            ],
            what="go build influxd",
            log=log,
            cwd=influx,
            env={"PKG_CONFIG_PATH": str(pc), "CGO_ENABLED": "1", "GOFLAGS": "-mod=mod"},
        )
    got = subprocess.run([str(out), "version"], capture_output=True, text=True, check=False)
    if got.returncode != 0 or version not in got.stdout:
        raise LabkitError(
            f"the built influxd does not report version {version}: {got.stdout or got.stderr}",
            f"delete {build} and run `labkit provision` again",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(out, target)
    say(f"influxd ready: {got.stdout.strip()}")
    return target
