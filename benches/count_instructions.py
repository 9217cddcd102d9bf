#!/usr/bin/env python3
"""Instructions per request, idgate next to the bare reference server of ../shared/bench-baseline.

Counts with `valgrind --tool=callgrind`, which counts instructions rather than time: the same
binary and requests give the same count whatever else the machine is doing, so a change's
effect shows even where req/s figures drift by a fifth between runs. Time is not only
instructions (system calls, thread wake-ups, caches); `compare_reference.py` measures that.

For `{ __typename }` without a token and `{ me { id email } }` with one: both servers on SQLite
with one tokio worker, 200 requests to warm up, then REQUESTS (default 2,000) counted, one at a
time over one keep-alive connection. Prints instructions per request and the ratio idgate /
reference (lower is better).

Usage, from the project root:
  cargo build --release && python3 benches/count_instructions.py [REQUESTS]
Needs valgrind. Builds the reference into $BASELINE_TARGET (default /tmp/idgate-bench-baseline)
on first use. Under valgrind SHA-256 runs without the CPU's SHA extensions, so the token checks'
hashing counts more than it costs on most machines (both servers hash).
"""
import os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request

from reference import (IDGATE, ME, REF, TYPENAME, build_reference, environments, idgate_token, raw_post,
                       read_response, ref_token)

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000


def send(port, query, token, n):
    """n requests, one at a time over one keep-alive connection; each must answer 200."""
    request = raw_post(port, query, token)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(n):
            sock.sendall(request)
            read_response(sock)


def count(name, cmd, env, port, ready, token_of, query):
    """Instructions per request of `query`, sent with a token from `token_of` unless it is None."""
    work = tempfile.mkdtemp(prefix="count-instructions-")
    out = os.path.join(work, "callgrind.out")
    log = open(os.path.join(work, "server.log"), "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"] + cmd,
                         env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            try:
                with urllib.request.urlopen(ready, timeout=1):
                    break
            except Exception:
                if p.poll() is not None:
                    sys.exit(f"{name} exited; see {work}")
                time.sleep(0.1)
        token = token_of(port) if token_of else None
        send(port, query, token, 200)
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True, capture_output=True)
        send(port, query, token, REQUESTS)
        subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], check=True, capture_output=True)
    finally:
        p.terminate()
        p.wait(60)
    totals = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    shutil.rmtree(work, ignore_errors=True)
    return int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", totals).group(1).replace(",", "")) / REQUESTS


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing")
    build_reference()
    idgate_env, ref_env = environments(18190, 18192, ".")
    for query, signed_in in ((TYPENAME, False), (ME, True)):
        a = count("idgate", [IDGATE], idgate_env, 18190, "http://127.0.0.1:18190/healthz",
                  idgate_token if signed_in else None, query)
        b = count("reference", [REF], ref_env, 18192, "http://127.0.0.1:18192/", ref_token if signed_in else None, query)
        print(f"{query:20} idgate {a:9,.0f}  reference {b:9,.0f} instructions/request  ratio {a / b:.3f}", flush=True)


main()
