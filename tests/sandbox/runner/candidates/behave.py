"""Adversarial candidate: params["mode"] selects the attack, run in fit().

Every attack records what it observed as an ``OBSERVED {json}`` line on stdout (the
output folder is no channel: the runner copies only recommendations.npy out of it) and
then behaves like the popularity agent, unless the attack ends the process.
"""
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time

import numpy as np

import agent_sdk

MB = 1 << 20


def record(params, **data):
    print("OBSERVED " + json.dumps(data), flush=True)


def attempt(fn):
    try:
        return "ok:" + str(fn())[:200]
    except BaseException as exc:  # noqa: BLE001
        return "err:" + type(exc).__name__


def m_tcp(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    record(p, tcp=attempt(lambda: (s.connect(("127.0.0.1", p["port"])), s.sendall(b"LEAK"))))


def m_udp(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    record(p, udp=attempt(lambda: s.sendto(b"LEAK", ("127.0.0.1", p["port"]))))


def _read(path):
    with open(path, "rb") as f:
        return f.read(100)


def m_read_files(p):
    record(p, **{path: attempt(lambda path=path: _read(path)) for path in p["paths"]})


def m_env(p):
    found = [k for k in os.environ if k == "OPENAI_API_KEY"]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"OPENAI_API_KEY" in _read_all(f"/proc/{pid}/environ"):
                    found.append(pid)
            except OSError:
                pass
    print("FOUND", found, os.environ.get("OPENAI_API_KEY"))
    record(p, found=found, env=dict(os.environ))


def _read_all(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path):
    with open(path, "ab") as f:
        f.write(b"# pwned\n")


def m_write_dirs(p):
    record(p, **{path: attempt(lambda path=path: _write(path)) for path in p["paths"]})


def m_alloc(p):
    a = np.ones(30 * 1024 * MB // 8)
    print(a.sum())


def m_memerror(p):
    raise MemoryError("simulated")


def m_busy(p):
    while True:
        pass


def m_sleep(p):
    time.sleep(3600)


def m_sigterm(p):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(3600)


def m_forkbomb(p):
    while True:
        os.fork()


def m_threads(p):
    threads = [threading.Thread(target=time.sleep, args=(30,), daemon=True) for _ in range(1000)]
    for t in threads:
        t.start()


def _fill(path, size_mb):
    chunk = b"x" * MB
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(chunk)


def m_bigfile(p):
    _fill(os.path.join(p["out"], "big.bin"), 10 * 1024)


def m_manyfiles(p):
    for i in range(1000):
        _fill(os.path.join(p["out"], f"f{i}.bin"), 256)


def m_filltmp(p):
    _fill("/tmp/fill.bin" if p["out"] == "/output" else os.path.join(p["out"], "tmpfill"), 10 * 1024)


def _daemon(p):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(p.get("delay", 1.5))
            with open(os.path.join(p["out"], "marker"), "w") as f:
                f.write("survived")
            os._exit(0)
        os._exit(0)
    os.wait()


def m_daemon_exit(p):
    _daemon(p)


def m_daemon_timeout(p):
    _daemon(p)
    time.sleep(3600)


def m_spew(p):
    line = b"y" * 1023 + b"\n"

    def spew(fd):
        for _ in range(100 * 1024):
            os.write(fd, line)
    t = threading.Thread(target=spew, args=(2,))
    t.start()
    spew(1)
    t.join()


def m_killall(p):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError as exc:
        print("kill(-1) failed:", exc)
    time.sleep(0.2)


def m_openfiles(p):
    return [open("/dev/null") for _ in range(10_000)]


def m_syscalls(p):
    libc = ctypes.CDLL(None, use_errno=True)
    res = {}
    res["unshare_user"] = libc.unshare(0x10000000)
    res["unshare_net"] = libc.unshare(0x40000000)
    res["mount"] = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
    res["ptrace"] = libc.ptrace(16, p["target_pid"], None, None)  # PTRACE_ATTACH
    res["kill_parent"] = attempt(lambda: os.kill(p["target_pid"], 0))
    record(p, **res)


# Arguments chosen so that without a filter the natural answer is mostly not EPERM
# (ESRCH, EBADF, ENOENT, EFAULT, success), so the filter's answer shows; other calls get
# zeros (harmless without capabilities). Numbers come from the test (libseccomp, native).
_NULL = None
_ARGS = {
    "io_uring_setup": (1, ctypes.create_string_buffer(120)),
    "io_uring_enter": (-1, 0, 0, 0, _NULL, 0),
    "io_uring_register": (-1, 0, _NULL, 0),
    "keyctl": (0, -3, 0),                           # KEYCTL_GET_KEYRING_ID(session)
    "add_key": (b"user", b"agenticrs", b"x", 1, -2),
    "request_key": (b"user", b"agenticrs-none", _NULL, 0),
    "personality": (0xFFFFFFFF,),                   # query only
    "ptrace": (2, 999999, 0, 0),                    # PEEKDATA of no process
    "process_vm_readv": (999999, _NULL, 0, _NULL, 0, 0),
    "perf_event_open": (_NULL, 0, -1, -1, 0),
    "unshare": (0x40000000,),                       # CLONE_NEWNET
    "setns": (-1, 0),
    "mount": (b"none", b"/no-such-dir", b"tmpfs", 0, _NULL),
    "umount2": (b"/no-such-dir", 0),
    "open_tree": (-100, b"/no-such-dir", 0),
    "chroot": (b"/no-such-dir",),
    "clone": (0x00020000 | 17, 0, _NULL, _NULL, 0),  # CLONE_NEWNS | SIGCHLD
    "clone3": (_NULL, 0),
}


def m_denied_syscalls(p):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    res = {}
    for name, nr in p["numbers"].items():
        args = _ARGS.get(name, (0, 0, 0, 0, 0, 0))
        ctypes.set_errno(0)
        ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
        if ret == 0 and name.startswith("clone"):
            os._exit(0)  # an unfiltered clone: the copy leaves at once
        res[name] = [ret, ctypes.get_errno()]
    with open("/proc/self/status") as f:
        res["seccomp"] = [line.split()[1] for line in f if line.startswith("Seccomp:")][0]
    record(p, **res)


def m_compute(p):
    """What a recommender does need: numpy BLAS threads, scipy sparse, torch threads, fork."""
    import scipy.sparse
    import torch

    torch.set_num_threads(2)
    x = torch.randn(256, 256)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    a = np.random.default_rng(0).random((300, 300))
    m = scipy.sparse.random(200, 200, density=0.05, format="csr", random_state=0)
    record(p, torch=float((x @ x).sum()), threads=torch.get_num_threads(),
           numpy=float(np.linalg.svd(a, compute_uv=False)[0]), scipy=float((m @ m.T).sum()),
           thread_ok=_thread_ok())


def _thread_ok():
    out = []
    t = threading.Thread(target=lambda: out.append(1))
    t.start()
    t.join()
    return out == [1]


def m_list_dirs(p):
    record(p, **{path: attempt(lambda path=path: sorted(os.listdir(path))[:5]) for path in p["paths"]})


def m_symlink_out(p):
    os.symlink(p["labels"], os.path.join(p["out"], "recommendations.npy"))
    os._exit(0)


def m_pickle_out(p):
    arr = np.empty((p["n_rows"], p["k"]), dtype=object)
    np.save(os.path.join(p["out"], "recommendations.npy"), arr, allow_pickle=True)
    os._exit(0)


def m_huge_shape(p):
    header = {"descr": "<i8", "fortran_order": False, "shape": (10**9, p["k"])}
    with open(os.path.join(p["out"], "recommendations.npy"), "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 800)
    os._exit(0)


def m_forged_metrics(p):
    with open(os.path.join(p["out"], "metrics.json"), "w") as f:
        json.dump({"ndcg@10": 1.0, "recall@10": 1.0, "outcome": "COMPLETED"}, f)


def m_sparse(p):
    """Files of ``size_mb`` apparent size each that occupy (almost) no block."""
    for name in p["names"]:
        with open(os.path.join(p["out"], name), "wb") as f:
            if name.endswith(".npy"):
                np.lib.format.write_array_header_1_0(
                    f, {"descr": "<i8", "fortran_order": False, "shape": (p["n_rows"], p["k"])})
            f.truncate(p["size_mb"] * MB)
    if "recommendations.npy" in p["names"]:
        os._exit(0)


def m_deeptree(p):
    """A tree deeper than PATH_MAX (4096) under the output folder, built with dir fds."""
    fd = os.open(p["out"], os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(p["depth"]):
        os.mkdir("d" * 200, dir_fd=fd)
        deeper = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("leaf.npy", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)


def m_forge_time(p):
    """Forge the timings: patch the clock, then (in recommend) report fit_seconds -3223 and a
    0 s recommend() that really sleeps 0.3 s, and silence the entry's own report."""
    real = time.perf_counter
    time.perf_counter = lambda: real() - 3223.0
    p["slow_recommend"], p["forge"] = 0.3, True


def _forge_report():
    fd = json.loads(sys.argv[1])["report_fd"]
    os.write(fd, (json.dumps({"event": "ok", "pid": os.getpid(), "fit_seconds": -3223.0,
                              "recommend_seconds": 0.0}) + "\n").encode())
    os.dup2(os.open("/dev/null", os.O_WRONLY), fd)  # the entry's true line goes nowhere


def m_observe_threads(p):
    record(p, env={k: v for k, v in os.environ.items() if "THREADS" in k or k.startswith("AGENTICRS")},
           torch_threads=_torch_threads())


def _torch_threads():
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"].get_num_threads()


def m_none(p):
    pass


class Agent:
    def __init__(self, **params):
        self.params = params

    def fit(self, train):
        if self.params.get("torch"):
            import torch  # noqa: F401
        globals()["m_" + self.params.get("mode", "none")](self.params)
        self.seen = train.matrix()
        self.pop = np.bincount(train.item, minlength=train.n_items).astype(float)

    def recommend(self, users, k):
        if self.params.get("forge"):
            frozen = time.perf_counter()
            time.perf_counter = lambda: frozen
            _forge_report()
        time.sleep(self.params.get("slow_recommend", 0))
        if self.params.get("mode") == "observe_threads":
            record(self.params, torch_threads=_torch_threads(),
                   env={k: v for k, v in os.environ.items() if "THREADS" in k or k.startswith("AGENTICRS")})
        if self.params.get("nan"):
            return np.full((len(users), k), np.nan)
        scores = np.tile(self.pop, (len(users), 1))
        return agent_sdk.topk_unseen(scores, self.seen, users, k)
