#!/usr/bin/env python3
"""idgate next to the bare reference server of ../shared/bench-baseline, as ratios from one run.

Prints, per round and as medians (idgate / reference):
  - `{ me { id email } }` with a bearer token, req/s (wrk, 64 connections);
  - `{ __typename }` without a token, req/s (wrk, 64 connections);
  - `me` p50 and p99 at a steady 200 req/s (one keep-alive connection, requests sent on a fixed
    schedule, so a slow answer does not thin out the load behind it).
Both servers run pinned to CPU 1 with one tokio worker on SQLite; the load runs on CPU 0; rounds
interleave so machine drift hits both alike. Absolute figures drift 20-30 % on shared machines;
the ratios from one run are what to report.

Usage, from the project root:
  cargo build --release && python3 benches/compare_reference.py [ROUNDS]
Needs wrk and taskset. Builds the reference into $BASELINE_TARGET (default
/tmp/idgate-bench-baseline) on first use.
"""
import json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

from reference import (IDGATE, ME, REF, TYPENAME, build_reference, environments, idgate_token, post, raw_post,
                       read_response, ref_token)

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
WORK = tempfile.mkdtemp(prefix="compare-reference-")
PROCS = []
IDGATE_PORT, REF_PORT = 18180, 18182


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def start(cmd, env, ready):
    log = open(os.path.join(WORK, os.path.basename(cmd[0]) + ".log"), "a")
    p = subprocess.Popen(["taskset", "-c", "1"] + cmd, env=env, cwd=WORK, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    for _ in range(600):
        if http_ok(ready):
            return p
        if p.poll() is not None:
            sys.exit(f"{cmd[0]} exited; see {WORK}")
        time.sleep(0.05)
    sys.exit(f"{cmd[0]} did not become ready")


def wrk(port, token, query):
    lua = os.path.join(WORK, f"req_{port}.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        if token:
            f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
        f.write(f'wrk.body = {json.dumps(json.dumps({"query": query}))}\n')
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c64", "-d5s", "-s", lua,
                          f"http://127.0.0.1:{port}/graphql"], capture_output=True, text=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        sys.exit(f"non-2xx answers on port {port}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def steady_latency(port, token, rate=200, seconds=10):
    """p50 and p99 in ms of `me` sent at a fixed rate over one keep-alive connection."""
    request = raw_post(port, ME, token)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    interval = 1.0 / rate
    latencies = []
    next_send = time.perf_counter()
    end = next_send + seconds
    while next_send < end:
        now = time.perf_counter()
        if now < next_send:
            time.sleep(next_send - now)
        sent = time.perf_counter()
        sock.sendall(request)
        read_response(sock)
        latencies.append((time.perf_counter() - sent) * 1000)
        next_send += interval
    sock.close()
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    build_reference()
    idg_env, ref_env = environments(IDGATE_PORT, REF_PORT, WORK)
    start([REF], ref_env, f"http://127.0.0.1:{REF_PORT}/")
    ref = ref_token(REF_PORT)
    start([IDGATE], idg_env, f"http://127.0.0.1:{IDGATE_PORT}/healthz")
    idg = idgate_token(IDGATE_PORT)
    for port, token in ((IDGATE_PORT, idg), (REF_PORT, ref)):
        if not post(port, ME, token)["data"]["me"]:
            sys.exit(f"me failed on port {port}")
    ratios = {"me": [], "__typename": [], "me p50 at 200/s": [], "me p99 at 200/s": []}
    for i in range(ROUNDS):
        a, b = wrk(IDGATE_PORT, idg, ME), wrk(REF_PORT, ref, ME)
        ratios["me"].append(a / b)
        print(f"round {i + 1}: me          idgate {a:8,.0f} req/s  reference {b:8,.0f} req/s  ratio {a / b:.3f}")
        a, b = wrk(IDGATE_PORT, None, TYPENAME), wrk(REF_PORT, None, TYPENAME)
        ratios["__typename"].append(a / b)
        print(f"round {i + 1}: __typename  idgate {a:8,.0f} req/s  reference {b:8,.0f} req/s  ratio {a / b:.3f}")
        (a50, a99), (b50, b99) = steady_latency(IDGATE_PORT, idg), steady_latency(REF_PORT, ref)
        ratios["me p50 at 200/s"].append(a50 / b50)
        ratios["me p99 at 200/s"].append(a99 / b99)
        print(f"round {i + 1}: me at 200/s idgate p50 {a50:.3f} ms p99 {a99:.3f} ms  "
              f"reference p50 {b50:.3f} ms p99 {b99:.3f} ms  ratios {a50 / b50:.2f} / {a99 / b99:.2f}", flush=True)
    print("medians, idgate / reference (throughput: higher is better; latency: lower is better):")
    for name, values in ratios.items():
        print(f"  {name:18} {statistics.median(values):.3f}")


try:
    main()
finally:
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    shutil.rmtree(WORK, ignore_errors=True)
