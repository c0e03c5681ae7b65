# Probe: spindle-kv CPU per request with spin_us = 50 vs 0, next to redis-server (GET/SET -c 50 -P 1, median of 3).
# Needs /tmp/kv-spin{0,50}.spindle: `spindle profile compile` of a TOML with engine.cpus = [1], spin_us = 0|50, the default four lanes.
import subprocess, time, os, re, statistics, sys
KV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.build/release/spindle-kv")
TICK = 1e6 / os.sysconf("SC_CLK_TCK")
def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split(); return int(f[11]) + int(f[12])
def start(argv, ready):
    p = subprocess.Popen(["taskset","-c","1"] + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t = time.time()
    while True:
        l = p.stdout.readline().decode()
        if re.search(ready, l): break
        if time.time() - t > 20: p.kill(); sys.exit("no ready line")
    time.sleep(0.3); return p
servers = {
 "kv spin_us=50 (default)": ([KV,"--port","7580","--control-port","7581","--profile","/tmp/kv-spin50.spindle"], "listening", 7580),
 "kv spin_us=0": ([KV,"--port","7582","--control-port","7583","--profile","/tmp/kv-spin0.spindle"], "listening", 7582),
 "redis-server": (["redis-server","--save","","--appendonly","no","--port","7584"], "Ready to accept", 7584),
}
res = {k: [] for k in servers}
for rep in range(3):
    for name, (argv, ready, port) in servers.items():
        p = start(argv, ready)
        for test in ["get", "set"]:
            b = ticks(p.pid)
            out = subprocess.run(["taskset","-c","0","redis-benchmark","-p",str(port),"-t",test,"-c","50","-P","1","-n","200000"], capture_output=True, timeout=120).stdout.decode()
            a = ticks(p.pid)
            rps = float(re.search(r"throughput summary: ([\d.]+)", out).group(1))
            res[name].append((test, rps, (a-b)*TICK/200000))
        p.terminate(); p.wait(timeout=10)
for name, rows in res.items():
    for test in ["get","set"]:
        r = [x for x in rows if x[0]==test]
        print(f"{name:26s} {test.upper()} -c 50 -P 1: {statistics.median(x[1] for x in r)/1e3:.1f} k req/s, CPU {statistics.median(x[2] for x in r):.2f} µs/req  (runs: {[round(x[2],2) for x in r]})")
print("load", open("/proc/loadavg").read().split()[:3])
