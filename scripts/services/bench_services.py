#!/usr/bin/env python3
"""The services benchmark: spindle-kv next to redis-server and a SwiftNIO key-value server, driven
by Debian's redis-benchmark, in one run. Called by scripts/bench-services.sh (which installs the
tools and builds the binaries); see docs/services.md for the method.

Every wait is bounded: a server must print its listening line within --start-timeout seconds, each
client run has a timeout, and every process started here is stopped on exit (SIGTERM, then SIGKILL).
"""
import argparse
import json
import os
import re
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

CLIENT_CPU = "0"
SERVER_CPU = "1"
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

# (label, redis-benchmark -t name, clients, pipeline, requests in a full run, in a --quick run)
# -n is chosen so each run takes ~1.5-3 s on this machine kind when it is quiet.
LOADS = [
    ("PING_INLINE -c 50 -P 1", "ping_inline", 50, 1, 200_000, 40_000),
    ("SET -c 50 -P 1", "set", 50, 1, 200_000, 40_000),
    ("GET -c 50 -P 1", "get", 50, 1, 200_000, 40_000),
    ("PING_INLINE -c 50 -P 16", "ping_inline", 50, 16, 2_500_000, 400_000),
    ("SET -c 50 -P 16", "set", 50, 16, 2_500_000, 400_000),
    ("GET -c 50 -P 16", "get", 50, 16, 2_500_000, 400_000),
    ("PING_INLINE -c 1 -P 1", "ping_inline", 1, 1, 30_000, 6_000),
    ("SET -c 1 -P 1", "set", 1, 1, 30_000, 6_000),
    ("GET -c 1 -P 1", "get", 1, 1, 30_000, 6_000),
]

# ---------------------------------------------------------------------------------------------
# Processes


class Failure(Exception):
    pass


class PingStall(Failure):
    """ctlping got no reply within its timeout (or the connection failed)."""


STARTED = []  # every Popen started here, stopped on exit


def stop_all():
    for proc in list(STARTED):
        stop(proc)
    # Clients run to completion with subprocess.run (redis-benchmark, ctlping) are not in STARTED:
    # end any child of this process still running (an interrupted run).
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid == me:
                os.kill(int(pid), signal.SIGTERM)
        except (OSError, IndexError):
            pass


def stop(proc, grace=5.0):
    """SIGTERM, wait up to `grace` s, then SIGKILL. Returns how it ended ('exit N' or 'killed')."""
    if proc in STARTED:
        STARTED.remove(proc)
    if proc.poll() is not None:
        return f"exit {proc.returncode}"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return f"killed (no exit {grace:.0f} s after SIGTERM)"


def on_signal(signum, _frame):
    stop_all()
    sys.stderr.write(f"bench-services: stopped by signal {signum}; servers stopped\n")
    sys.exit(128 + signum)


class Server:
    """One server under test, started pinned, with its output drained by a thread."""

    def __init__(self, name, argv, cpus, data_port, control_port, ready, note, log_dir):
        self.name, self.argv, self.cpus = name, argv, cpus
        self.data_port, self.control_port = data_port, control_port
        self.ready = re.compile(ready)
        self.note = note
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.proc = None
        self.listening_line = None

    @property
    def ping_port(self):
        return self.control_port or self.data_port

    def start(self, timeout):
        log = open(self.log_path, "a")
        cmd = ["taskset", "-c", self.cpus] + self.argv
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        STARTED.append(self.proc)
        seen = threading.Event()

        def drain():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if not seen.is_set() and self.ready.search(line):
                    self.listening_line = line.strip()
                    seen.set()
            log.close()

        threading.Thread(target=drain, daemon=True).start()
        if not seen.wait(timeout):
            state = "exited with " + str(self.proc.returncode) if self.proc.poll() is not None else "still running"
            stop(self.proc)
            raise Failure(f"{self.name}: no listening line (/{self.ready.pattern}/) within {timeout:.0f} s "
                          f"({state}); its output is in {self.log_path}")
        for port in filter(None, [self.data_port, self.control_port]):
            wait_port(port, timeout, self.name)
        return self

    def stop(self):
        how = stop(self.proc)
        return how

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def affinity(self):
        """Thread name → allowed CPUs, to show where the server's threads may run."""
        out = {}
        task_dir = f"/proc/{self.proc.pid}/task"
        for tid in sorted(os.listdir(task_dir), key=int):
            try:
                with open(f"{task_dir}/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"{task_dir}/{tid}/status") as f:
                    cpus = next(l.split()[1] for l in f if l.startswith("Cpus_allowed_list"))
                out[f"{comm}[{tid}]"] = cpus
            except (OSError, StopIteration):
                pass
        return out


def wait_port(port, timeout, name):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as e:
            if time.monotonic() > deadline:
                raise Failure(f"{name}: port {port} not accepting within {timeout:.0f} s ({e})")
            time.sleep(0.05)


def free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------------------------------------
# Clients

PCT_LINE = re.compile(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds")


def parse_redis_benchmark(text):
    """requests/s, p50/p99 (summary), p99.9 (the first 'latency by percentile distribution' line at
    or above 99.9 %), completed requests. redis-benchmark 7.0 prints p99.9 nowhere else."""
    text = text.replace("\r", "\n")
    out = {}
    m = re.search(r"throughput summary: ([\d.]+) requests per second", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*"
                  r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text)
    if m:
        avg, mn, p50, p95, p99, mx = (float(x) * 1000 for x in m.groups())
        out.update(avg_us=avg, p50_us=p50, p95_us=p95, p99_us=p99, max_us=mx)
    section = text.split("Latency by percentile distribution:", 1)
    if len(section) == 2:
        for line in section[1].split("\n"):
            pm = PCT_LINE.match(line)
            if not pm:
                if line.strip() == "" and "p999_us" in out:
                    break
                continue
            if float(pm.group(1)) >= 99.9 and "p999_us" not in out:
                out["p999_us"] = float(pm.group(2)) * 1000
    m = re.search(r"(\d+) requests completed in ([\d.]+) seconds", text)
    if m:
        out["completed"] = int(m.group(1))
        out["seconds"] = float(m.group(2))
    return out


def redis_benchmark_argv(port, test, clients, pipeline, requests, extra=()):
    return ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
            "-c", str(clients), "-P", str(pipeline), "-n", str(requests), *extra]


def run_load(server, load, quick, timeout):
    label, test, clients, pipeline, n_full, n_quick = load
    n = n_quick if quick else n_full
    argv = redis_benchmark_argv(server.data_port, test, clients, pipeline, n)
    before = server.cpu_ticks()
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"{server.name}: `{shlex.join(argv)}` did not finish within {timeout:.0f} s")
    wall = time.monotonic() - t0
    after = server.cpu_ticks()
    text = res.stdout.decode("utf-8", "replace")
    err = res.stderr.decode("utf-8", "replace")
    parsed = parse_redis_benchmark(text)
    errors = [l.strip() for l in (text + "\n" + err).replace("\r", "\n").split("\n")
              if re.search(r"\berror\b", l, re.I) and "CONFIG" not in l]
    if res.returncode != 0 or "rps" not in parsed or parsed.get("completed") != n or errors:
        raise Failure(f"{server.name}: `{shlex.join(argv)}` failed (exit {res.returncode}, "
                      f"completed {parsed.get('completed')} of {n}): {' | '.join(errors[:3]) or err.strip()[:300]}")
    parsed["requests"] = n
    parsed["wall_s"] = round(wall, 3)
    parsed["server_cpu_us"] = (after - before) * TICK_US
    parsed["cpu_us_per_req"] = (after - before) * TICK_US / n
    return parsed


PING_TIMEOUT_MS = 2000


def run_ctlping(ctlping, port, samples, timeout, raw=None, extra=()):
    argv = ["taskset", "-c", CLIENT_CPU, ctlping, "--port", str(port), "--count", str(samples),
            "--timeout-ms", str(PING_TIMEOUT_MS)] + list(extra)
    if raw:
        argv += ["--raw", raw]
    try:
        res = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"ctlping on port {port} did not finish within {timeout:.0f} s")
    try:
        out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise Failure(f"ctlping on port {port}: no result (exit {res.returncode}): {res.stderr.decode()[:300]}")
    if out.get("error") or res.returncode != 0:
        raise PingStall(f"ctlping on port {port}: {out.get('error') or res.stderr.decode()[:300]} "
                        f"after {out.get('samples')} samples")
    return out


RESIDENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "residence.py")


def with_residence(port, fn):
    """Runs fn(extra ctlping args) while residence.py captures the PING connection's packets (root
    only: CAP_NET_RAW) and adds the server's residence time (request in → reply out, kernel
    timestamps) to fn's result. ctlping binds a chosen local port so the capture sees only it."""
    if os.geteuid() != 0:
        return fn([])
    with socket.socket() as probe:  # a free local port for ctlping's end
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    cap = subprocess.Popen(["taskset", "-c", CLIENT_CPU, sys.executable, RESIDENCE, "--server-port", str(port),
                            "--client-port", str(local), "--seconds", "900"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if not select.select([cap.stderr], [], [], 10)[0]:
            raise Failure(f"residence.py on port {port} did not start within 10 s")
        cap.stderr.readline()
        result = fn(["--local-port", str(local)])
    finally:
        cap.send_signal(signal.SIGTERM)
        try:
            out, err = cap.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
            out, err = cap.communicate()
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
        result["server_p50_us"], result["server_p99_us"] = r.get("p50_us"), r.get("p99_us")
        result["server_samples"] = r.get("samples")
    except (ValueError, IndexError):
        result["server_error"] = (err.decode() or out.decode())[-200:]
    return result


def flood_ping(server, ctlping, samples, ping_port, quick, timeout, extra=()):
    """SET flood (-c 50 -P 16) on the data port; PING every 1 ms on `ping_port` meanwhile."""
    argv = redis_benchmark_argv(server.data_port, "set", 50, 16, 200_000_000)
    flood = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    STARTED.append(flood)
    chunks = []
    threading.Thread(target=lambda: chunks.extend(iter(lambda: flood.stdout.read(4096), b"")), daemon=True).start()
    try:
        # The flood is running once redis-benchmark reports a rate above zero.
        deadline = time.monotonic() + 30
        while not re.search(rb"rps=[1-9]", b"".join(chunks)):
            if flood.poll() is not None or time.monotonic() > deadline:
                # Recorded in the row (like a PING stall); the run goes on.
                raise PingStall(f"{server.name}: the SET flood did not start within 30 s (redis-benchmark printed "
                                f"{b''.join(chunks).decode('utf-8', 'replace')[-200:]!r})")
            time.sleep(0.05)
        t0 = time.monotonic()
        start_cpu = server.cpu_ticks()
        ping = run_ctlping(ctlping, ping_port, samples, timeout, extra=extra)
        elapsed = time.monotonic() - t0
        cpu = server.cpu_ticks() - start_cpu
        if flood.poll() is not None:
            raise Failure(f"{server.name}: the SET flood ended before the PING run did")
    finally:
        stop(flood)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r", "\n")
    rates = re.findall(r"rps=([\d.]+) \(overall: ([\d.]+)\)", text)
    ping["flood_rps"] = float(rates[-1][1]) if rates else None
    ping["flood_server_cpu_share"] = round(cpu * TICK_US / 1e6 / elapsed, 3)
    errors = [l for l in text.split("\n") if re.search(r"\berror\b", l, re.I) and "CONFIG" not in l]
    if errors:
        raise Failure(f"{server.name}: the SET flood reported: {errors[0][:200]}")
    return ping


SYSCALLS = ["read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "epoll_wait",
            "epoll_pwait", "epoll_pwait2", "epoll_ctl", "io_uring_enter", "futex", "sched_yield", "accept4",
            "clock_nanosleep", "timerfd_settime", "setsockopt", "close", "madvise", "mmap", "munmap"]


def count_syscalls(server, quick, timeout):
    """Syscalls per request over one GET -c 50 -P 1 run: `perf stat` on the raw_syscalls:sys_enter
    tracepoint (every syscall) of the server process (all threads), with the common ones by name.
    (Tracepoints, not strace: strace slows the server ~20x and changes the mix; all ~360
    syscalls:sys_enter_* events take perf ~14 s to detach here.)"""
    n = 40_000 if quick else 100_000
    out_path = server.log_path.replace(".log", ".perf.txt")
    events = ",".join(["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{c}" for c in SYSCALLS])
    perf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out_path, "-e", events, "-p", str(server.proc.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(perf)
    try:
        time.sleep(0.5)  # perf attaches in ~0.1 s
        argv = redis_benchmark_argv(server.data_port, "get", 50, 1, n)
        subprocess.run(argv, capture_output=True, timeout=timeout, check=True)
    finally:
        if perf.poll() is None:
            perf.send_signal(signal.SIGINT)
        try:
            perf.wait(timeout=30)
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.wait()
        if perf in STARTED:
            STARTED.remove(perf)
    counts = {}
    try:
        with open(out_path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[0].isdigit():
                    counts[parts[2].split(":")[1].replace("sys_enter_", "")] = int(parts[0])
    except OSError:
        pass
    total = counts.pop("sys_enter", None)
    if not total:
        return None
    named = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1])
    top = {k: round(v / n, 3) for k, v in named[:6]}
    other = total - sum(counts.values())
    if other > 0:
        top["other"] = round(other / n, 3)
    return {"requests": n, "total": total, "per_request": total / n, "top": top,
            "method": "perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<common> -p PID over GET -c 50 -P 1"}


# ---------------------------------------------------------------------------------------------
# The run


def make_servers(args, log_dir):
    servers = []
    want = set(args.servers.split(","))
    kv = args.kv_bin
    if kv and os.access(kv, os.X_OK):
        for workers, cpus, note in [(1, SERVER_CPU, "1 worker on CPU 1"),
                                    (2, "0,1", "2 workers on CPUs 0-1: the client shares CPU 0 with a worker")]:
            name = f"spindle-kv-{workers}w"
            if "spindle-kv" not in want and name not in want:
                continue
            port, control = free_ports(2)
            servers.append(Server(name, [kv, "--port", str(port), "--control-port", str(control),
                                         "--workers", str(workers)], cpus, port, control, r"\S", note, log_dir))
    elif want & {"spindle-kv", "spindle-kv-1w", "spindle-kv-2w"}:
        print(f"SKIPPED spindle-kv rows: no spindle-kv binary ({kv or 'not built'}); build the kv branch "
              f"or set SPINDLE_KV_BIN", flush=True)
    if "redis" in want:
        port = free_ports(1)[0]
        servers.append(Server("redis-server", ["redis-server", "--save", "", "--appendonly", "no", "--port", str(port),
                                               "--bind", "127.0.0.1", "--daemonize", "no", "--logfile", ""],
                              SERVER_CPU, port, None, r"Ready to accept connections", "on CPU 1", log_dir))
    if "nio" in want:
        if args.nio_bin and os.access(args.nio_bin, os.X_OK):
            port = free_ports(1)[0]
            servers.append(Server("nio-kv", [args.nio_bin, "--port", str(port)], SERVER_CPU, port, None,
                                  r"listening", "SwiftNIO, 1 event loop, on CPU 1", log_dir))
        else:
            print(f"SKIPPED nio-kv rows: no binary at {args.nio_bin}", flush=True)
    return servers


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_benchmark(args, log_dir):
    servers = make_servers(args, log_dir)
    if not servers:
        raise Failure("no server to measure")
    names = [s.name for s in servers]
    results = {s.name: {"loads": {}, "ping": {}, "note": s.note, "argv": s.argv, "cpus": s.cpus} for s in servers}
    raw = {s.name: {"loads": {l[0]: [] for l in LOADS}, "ping": {}} for s in servers}
    for rep in range(args.reps):
        order = servers[rep % len(servers):] + servers[:rep % len(servers)]  # rotate: drift hits all
        for server in order:
            progress(f"rep {rep + 1}/{args.reps}: {server.name} starting")
            server.start(args.start_timeout)
            res = results[server.name]
            res["listening_line"] = server.listening_line
            res.setdefault("affinity", server.affinity())
            res.setdefault("rss_kib_start", server.rss_kib())
            try:
                for load in LOADS:
                    progress(f"rep {rep + 1}/{args.reps}: {server.name} {load[0]}")
                    raw[server.name]["loads"][load[0]].append(run_load(server, load, args.quick, args.run_timeout))
                if not args.no_flood:
                    cases = [("unloaded", server.ping_port, False), ("flood", server.ping_port, True)]
                    if server.control_port and server.name.endswith("-1w"):
                        cases.append(("flood, data port", server.data_port, True))
                    for case, port, flooded in cases:
                        progress(f"rep {rep + 1}/{args.reps}: {server.name} PING every 1 ms, {case}")
                        # A PING left unanswered for 2 s is a result (a stall), not a broken run:
                        # recorded in the row, and the run goes on.
                        try:
                            if flooded:
                                r = with_residence(port, lambda x: flood_ping(server, args.ctlping, args.ping_samples, port,
                                                                              args.quick, args.run_timeout, x))
                            else:
                                r = with_residence(port, lambda x: run_ctlping(args.ctlping, port, args.ping_samples,
                                                                               args.run_timeout, extra=x))
                        except PingStall as e:
                            progress(f"{server.name}: {e}")
                            r = {"error": str(e)}
                        r["port"] = "control" if port == server.control_port else "data"
                        raw[server.name]["ping"].setdefault(case, []).append(r)
                if rep == 0 and not args.no_syscalls:
                    progress(f"{server.name}: syscalls per request (perf stat, GET -c 50 -P 1)")
                    res["syscalls"] = count_syscalls(server, args.quick, args.run_timeout)
                res["rss_kib_end"] = server.rss_kib()
            finally:
                how = server.stop()
                if not how.startswith("exit"):
                    res.setdefault("stop_problems", []).append(how)
    for name in names:
        for label, runs in raw[name]["loads"].items():
            results[name]["loads"][label] = {
                k: median([r.get(k) for r in runs])
                for k in ["rps", "p50_us", "p99_us", "p999_us", "cpu_us_per_req", "wall_s"]
            } | {"runs": runs}
        for case, runs in raw[name]["ping"].items():
            good = [r for r in runs if not r.get("error")]
            results[name]["ping"][case] = {
                k: median([r.get(k) for r in good])
                for k in ["p50_us", "p99_us", "p999_us", "max_us", "late_sends", "flood_rps", "flood_server_cpu_share",
                          "server_p50_us", "server_p99_us"]
            } | {"port": runs[0]["port"], "samples_per_run": args.ping_samples, "runs": runs,
                 "stalls": [r["error"] for r in runs if r.get("error")]}
    return servers, results


def progress(msg):
    if sys.stderr.isatty() or os.environ.get("BENCH_PROGRESS"):
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")


# ---------------------------------------------------------------------------------------------
# Reports


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt_rate(x):
    if x is None:
        return "—"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def fmt_us(x):
    if x is None:
        return "—"
    return f"{x / 1000:.2f} ms" if x >= 10_000 else f"{x:.0f} µs"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def tables(results, markdown):
    base = results.get("redis-server")
    lines = []
    head = ["load", "server", "requests/s", "× redis", "p50", "p99", "p99.9", "p99 × redis",
            "CPU µs/req", "× redis"]
    rows = []
    for load in LOADS:
        label = load[0]
        b = base["loads"].get(label) if base else None
        for name, res in results.items():
            r = res["loads"].get(label)
            if not r:
                continue
            rows.append([label, name, fmt_rate(r["rps"]), fmt_ratio(ratio(r["rps"], b and b["rps"])),
                         fmt_us(r["p50_us"]), fmt_us(r["p99_us"]), fmt_us(r["p999_us"]),
                         fmt_ratio(ratio(r["p99_us"], b and b["p99_us"])),
                         "—" if r["cpu_us_per_req"] is None else f"{r['cpu_us_per_req']:.2f}",
                         fmt_ratio(ratio(r["cpu_us_per_req"], b and b["cpu_us_per_req"]))])
    lines += render_table(head, rows, markdown)
    lines.append("")
    head = ["server", "PING on", "unloaded p50", "p99", "under SET flood p50", "p99", "p99.9", "flood p99 × unloaded",
            "flood req/s", "server CPU in flood", "in the server: unloaded p50/p99", "in flood p50/p99"]
    rows = []
    stalls = []

    def inside(r):
        """The server's residence time (residence.py: request in, reply out, kernel timestamps)."""
        if not r or r.get("server_p50_us") is None:
            return "—"
        return f"{fmt_us(r['server_p50_us'])} / {fmt_us(r['server_p99_us'])}"
    for name, res in results.items():
        un, fl = res["ping"].get("unloaded"), res["ping"].get("flood")
        for case, r in res["ping"].items():
            if r.get("stalls"):
                stalls.append(f"{name}, PING {case}: {len(r['stalls'])} of {len(r['runs'])} runs stalled "
                              f"(the medians are over the others): {r['stalls'][0]}")
        if fl:
            rows.append([name, f"{fl['port']} port", fmt_us(un and un["p50_us"]), fmt_us(un and un["p99_us"]),
                         fmt_us(fl["p50_us"]), fmt_us(fl["p99_us"]), fmt_us(fl["p999_us"]),
                         fmt_ratio(ratio(fl["p99_us"], un and un["p99_us"])), fmt_rate(fl["flood_rps"]),
                         f"{fl['flood_server_cpu_share'] * 100:.0f} %" if fl["flood_server_cpu_share"] is not None else "—",
                         inside(un), inside(fl)])
        fd = res["ping"].get("flood, data port")
        if fd:
            rows.append([name, "data port", "—", "—", fmt_us(fd["p50_us"]), fmt_us(fd["p99_us"]),
                         fmt_us(fd["p999_us"]), "—", fmt_rate(fd["flood_rps"]),
                         f"{fd['flood_server_cpu_share'] * 100:.0f} %" if fd["flood_server_cpu_share"] is not None else "—",
                         "—", inside(fd)])
    if rows:
        lines += render_table(head, rows, markdown)
        lines += [("- " if markdown else "  ") + x for x in stalls]
        lines.append("")
    head = ["server", "syscalls/request (GET -c 50 -P 1)", "most frequent (per request)"]
    rows = []
    for name, res in results.items():
        sc = res.get("syscalls")
        if sc:
            rows.append([name, f"{sc['per_request']:.2f}", ", ".join(f"{k} {v}" for k, v in sc["top"].items())])
    if rows:
        lines += render_table(head, rows, markdown)
    return lines


def render_table(head, rows, markdown):
    if markdown:
        out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    return [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def targets(results):
    """The issue's targets as held/missed lines (same-run ratios)."""
    out = []
    kv, redis, nio = results.get("spindle-kv-1w"), results.get("redis-server"), results.get("nio-kv")
    if not kv:
        return ["targets: SKIPPED (no spindle-kv rows in this run)"]
    if not redis:
        return ["targets: SKIPPED (no redis-server rows in this run)"]

    def line(ok, text):
        out.append(("held   " if ok else "MISSED ") + text)

    for test in ["GET", "SET"]:
        for p, need in [("1", 1.0), ("16", 0.8)]:
            label = f"{test} -c 50 -P {p}"
            r = ratio(kv["loads"][label]["rps"], redis["loads"][label]["rps"])
            line(r is not None and r >= need, f"spindle-kv 1 worker {label}: {fmt_ratio(r)} redis-server req/s (target ≥ {need}×)")
    for test in ["GET", "SET"]:
        label = f"{test} -c 50 -P 1"
        r = ratio(kv["loads"][label]["cpu_us_per_req"], redis["loads"][label]["cpu_us_per_req"])
        line(r is not None and r <= 0.8, f"spindle-kv 1 worker {label}: CPU per request {fmt_ratio(r)} redis-server's (target ≤ 0.8×)")
    if nio:
        for test in ["GET", "SET"]:
            for p in ["1", "16"]:
                label = f"{test} -c 50 -P {p}"
                r = ratio(kv["loads"][label]["rps"], nio["loads"][label]["rps"])
                line(r is not None and r >= 1.5, f"spindle-kv 1 worker {label}: {fmt_ratio(r)} nio-kv req/s (target ≥ 1.5×)")
    kf, ku = kv["ping"].get("flood"), kv["ping"].get("unloaded")
    rf = redis["ping"].get("flood")
    if kf and ku:
        r = ratio(kf["p99_us"], ku["p99_us"])
        line(r is not None and r <= 2.0, f"control PING p99 under SET flood {fmt_us(kf['p99_us'])} = {fmt_ratio(r)} its unloaded p99 {fmt_us(ku['p99_us'])} (target ≤ 2×)")
    if kf and rf:
        r = ratio(rf["p99_us"], kf["p99_us"])
        line(r is not None and r >= 10, f"control PING p99 under SET flood: redis-server's flooded PING p99 {fmt_us(rf['p99_us'])} is {fmt_ratio(r)} spindle-kv's (target ≥ 10×)")
    return out


def machine_state():
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    busy = subprocess.run(["ps", "-eo", "comm="], capture_output=True, text=True).stdout.split()
    compilers = sum(1 for c in busy if c in ("swift-frontend", "swift-build", "clang", "cc1", "ld", "ld.lld", "swiftc"))
    return {"loadavg": [float(x) for x in load], "compiler_processes": compilers}


def versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().split("\n")[0]
        except (OSError, subprocess.TimeoutExpired):
            return None
    return {"redis-server": first_line(["redis-server", "--version"]),
            "redis-benchmark": first_line(["redis-benchmark", "--version"]),
            "kernel": os.uname().release, "cpus": os.cpu_count(),
            "git": first_line(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always", "--dirty"])}


# ---------------------------------------------------------------------------------------------
# Soak


def soak(args, log_dir):
    servers = make_servers(args, log_dir)
    if not servers:
        raise Failure("no server for the soak run")
    server = servers[0]
    progress(f"soak: {server.name} for {args.soak:.0f} s")
    server.start(args.start_timeout)
    rss = []
    result = {"server": server.name, "seconds": args.soak, "listening_line": server.listening_line}
    bench_log = os.path.join(log_dir, f"soak-{server.name}-redis-benchmark.txt")
    try:
        rss.append((0.0, server.rss_kib()))
        argv = ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.data_port),
                "-t", "set,get", "-r", "100000", "-c", "50", "-P", "1", "-n", "200000", "-l", "-q"]
        with open(bench_log, "wb") as blog:
            bench = subprocess.Popen(argv, stdout=blog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        STARTED.append(bench)
        ping_argv = ["taskset", "-c", CLIENT_CPU, args.ctlping, "--port", str(server.ping_port),
                     "--duration", str(args.soak)]
        ping = subprocess.Popen(ping_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        STARTED.append(ping)
        t0 = time.monotonic()
        next_sample = 10.0
        bench_died = None
        while time.monotonic() - t0 < args.soak:
            time.sleep(min(0.5, max(0.0, t0 + next_sample - time.monotonic())))
            if bench.poll() is not None and bench_died is None:
                bench_died = f"redis-benchmark exited ({bench.returncode}) after {time.monotonic() - t0:.0f} s"
            if server.proc.poll() is not None:
                raise Failure(f"soak: {server.name} exited ({server.proc.returncode}) after {time.monotonic() - t0:.0f} s")
            if time.monotonic() - t0 >= next_sample:
                rss.append((round(time.monotonic() - t0, 1), server.rss_kib()))
                progress(f"soak: {rss[-1][0]:.0f} s, RSS {rss[-1][1] / 1024:.1f} MiB")
                next_sample += 10.0
        stop(bench)
        try:
            out, err = ping.communicate(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            stop(ping)
            raise Failure("soak: ctlping did not finish")
        if ping in STARTED:
            STARTED.remove(ping)
        rss.append((round(time.monotonic() - t0, 1), server.rss_kib()))
        try:
            result["ping"] = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            result["ping"] = {"error": f"no result: {err.decode()[:200]}"}
        with open(bench_log, "rb") as f:
            text = f.read().decode("utf-8", "replace").replace("\r", "\n")
        rates = [(m.group(1), float(m.group(2))) for m in re.finditer(r"^(SET|GET): ([\d.]+) requests per second", text, re.M)]
        result["benchmark_rounds"] = len(rates)
        result["benchmark_rps_median"] = {t: median([r for n, r in rates if n == t]) for t in ("SET", "GET")}
        errors = sorted({l.strip()[:160] for l in text.split("\n") if re.search(r"\berror\b", l, re.I) and "CONFIG" not in l})
        if bench_died:
            errors.append(bench_died)
        if result["ping"].get("error"):
            errors.append("ctlping: " + result["ping"]["error"])
        result["connection_errors"] = errors
    finally:
        result["stop"] = server.stop()
    values = [v for _, v in rss]
    result["rss_kib_samples"] = rss
    result["rss_kib"] = {"first": values[0], "last": values[-1], "max": max(values)}
    # Flat: once the key space has filled (the first sample at or after a fifth of the run, 10 s at
    # least), the last sample is within 10 % of it.
    settle = max(10.0, args.soak / 5)
    ref_t, ref = next(((t, v) for t, v in rss if t >= settle), rss[-1])
    result["rss_reference"] = {"at_s": ref_t, "kib": ref}
    result["rss_growth"] = (values[-1] - ref) / ref if ref else None
    return result


def soak_report(r):
    p = r.get("ping", {})
    g = r["rss_growth"]
    ref = r["rss_reference"]
    lines = [
        f"soak: {r['server']} for {r['seconds']:.0f} s, redis-benchmark -t set,get -r 100000 -c 50 -P 1 -l (client CPU 0, server CPU 1)",
        f"  requests/s (median of {r['benchmark_rounds']} rounds): SET {fmt_rate(r['benchmark_rps_median']['SET'])}, GET {fmt_rate(r['benchmark_rps_median']['GET'])}",
        f"  RSS: first {r['rss_kib']['first'] / 1024:.1f} MiB, last {r['rss_kib']['last'] / 1024:.1f} MiB, max {r['rss_kib']['max'] / 1024:.1f} MiB "
        f"({len(r['rss_kib_samples'])} samples, every 10 s); growth from the {ref['at_s']:.0f} s sample to the end {g * 100:+.1f} %" if g is not None else "",
        f"  PING every 1 ms beside it: {p.get('samples')} samples, p50 {fmt_us(p.get('p50_us'))}, p99 {fmt_us(p.get('p99_us'))}, max {fmt_us(p.get('max_us'))}",
        f"  connection errors: {'; '.join(r['connection_errors']) if r['connection_errors'] else 'none'}",
        f"  server stop: {r['stop']}",
        ("held   " if g is not None and g <= 0.10 else "MISSED ") + f"RSS flat (≤ +10 % from the {ref['at_s']:.0f} s sample to the end)",
        ("held   " if not r["connection_errors"] else "MISSED ") + "no connection error",
    ]
    return [l for l in lines if l]


# ---------------------------------------------------------------------------------------------


def render(doc, markdown):
    """The report's lines from the JSON document (a fresh run or --from-json)."""
    bullet = "- " if markdown else "  "
    if "soak" in doc:
        lines = soak_report(doc["soak"])
    else:
        results = doc["results"]
        lines = [f"services benchmark: `{doc['command']}`" if markdown else f"services benchmark: {doc['command']}", "",
                 f"redis-benchmark pinned to CPU {CLIENT_CPU}; servers to CPU {SERVER_CPU} except where noted; "
                 f"median of {doc['reps']} runs; servers interleaved per repetition"
                 + (" (--quick: a check, not a figure)" if doc["quick"] else "")]
        if markdown:
            lines.append("")
        for name, res in results.items():
            lines.append(bullet + f"{name}: {res['note']}; `{shlex.join(res['argv'])}`; threads' CPUs: "
                         + ", ".join(f"{k} {v}" for k, v in res.get("affinity", {}).items())
                         + ("; STOP: " + "; ".join(res["stop_problems"]) if res.get("stop_problems") else ""))
        lines.append("")
        lines += tables(results, markdown)
        lines.append("")
        lines += [("- " if markdown else "") + t for t in targets(results)]
    ver, before, after = doc["versions"], doc["machine_before"], doc["machine_after"]
    lines.append("")
    lines.append(f"{ver['redis-benchmark']}; {ver['redis-server']}; kernel {ver['kernel']}; {ver['cpus']} CPUs; "
                 f"git {ver['git']}; wall {doc['wall_s']:.0f} s")
    loaded = max(before["loadavg"][0], after["loadavg"][0]) > 1.5 or before["compiler_processes"] or after["compiler_processes"]
    lines.append(f"machine: load average {before['loadavg'][0]:.2f} before, {after['loadavg'][0]:.2f} after; "
                 f"compiler processes running {before['compiler_processes']} before, {after['compiler_processes']} after"
                 + (" — LOADED by other work: figures are not representative" if loaded else ""))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kv-bin", default=os.environ.get("SPINDLE_KV_BIN"))
    ap.add_argument("--nio-bin")
    ap.add_argument("--ctlping")
    ap.add_argument("--servers", default="spindle-kv,redis,nio",
                    help="comma list of spindle-kv (both), spindle-kv-1w, spindle-kv-2w, redis, nio")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller -n and 2,000 PING samples (a check, not a figure)")
    ap.add_argument("--ping-samples", type=int)
    ap.add_argument("--no-flood", action="store_true")
    ap.add_argument("--no-syscalls", action="store_true")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--markdown", action="store_true", help="print the report as Markdown (for docs/services.md)")
    ap.add_argument("--from-json", help="print the report of an earlier run's JSON instead of running")
    ap.add_argument("--soak", type=float, help="seconds: the long run instead of the benchmark")
    ap.add_argument("--ping-timeout-ms", type=int, default=2000, help="a PING unanswered this long is a stall")
    ap.add_argument("--start-timeout", type=float, default=20.0)
    ap.add_argument("--run-timeout", type=float, default=180.0)
    ap.add_argument("--log-dir", default="/tmp/spindle-bench-services")
    ap.add_argument("--command", help="the command line as typed (for the report)")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            print("\n".join(render(json.load(f), args.markdown)))
        return 0
    if not args.nio_bin or not args.ctlping:
        ap.error("--nio-bin and --ctlping are required (scripts/bench-services.sh passes them)")
    global PING_TIMEOUT_MS
    PING_TIMEOUT_MS = args.ping_timeout_ms
    if args.ping_samples is None:
        args.ping_samples = 2000 if args.quick else 5000
    os.makedirs(args.log_dir, exist_ok=True)
    for old in os.listdir(args.log_dir):  # this run's logs only
        if old.endswith((".log", ".perf.txt", "-redis-benchmark.txt")):
            os.remove(os.path.join(args.log_dir, old))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    command = args.command or shlex.join(sys.argv)
    doc = {"command": command, "versions": versions(), "machine_before": machine_state()}
    t0 = time.monotonic()
    try:
        if args.soak:
            doc["soak"] = soak(args, args.log_dir)
        else:
            _, results = run_benchmark(args, args.log_dir)
            doc |= {"reps": args.reps, "quick": args.quick,
                    "loads": [{"label": l[0], "test": l[1], "clients": l[2], "pipeline": l[3],
                               "requests": l[5] if args.quick else l[4]} for l in LOADS],
                    "results": results, "targets": targets(results)}
        doc["machine_after"] = machine_state()
        doc["wall_s"] = round(time.monotonic() - t0, 1)
        print("\n".join(render(doc, args.markdown)), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)
            print(f"wrote {args.json}")
    except Failure as e:
        sys.stderr.write(f"bench-services: {e}\n")
        return 1
    finally:
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
