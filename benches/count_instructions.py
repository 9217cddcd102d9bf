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
import json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "..", "shared", "bench-baseline")
REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
TARGET = os.environ.get("BASELINE_TARGET", "/tmp/idgate-bench-baseline")
REF = os.path.join(TARGET, "release", "idsrv")
IDGATE = os.path.join(ROOT, "target", "release", "idgate")
PASSWORD = "correct horse battery staple 93"


def post(port, query, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def send(port, query, token, n):
    """n requests, one at a time over one keep-alive connection; each must answer 200."""
    body = json.dumps({"query": query}).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(n):
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, rest = data.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit(f"unexpected answer: {head[:200]!r}")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            while len(rest) < length:
                rest += sock.recv(65536)


def count(name, cmd, env, port, ready, token_of, query):
    """Instructions per request of `query`, sent with a token from `token_of` unless it is None."""
    work = tempfile.mkdtemp(prefix="count-instructions-")
    out = os.path.join(work, "callgrind.out")
    log = open(os.path.join(work, "server.log"), "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"] + cmd,
                         env=dict(env, SQLITE=os.path.join(work, "ref.db"), TOKFILE=os.path.join(work, "ref.token")),
                         cwd=work, stdout=log, stderr=subprocess.STDOUT)
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


def idgate_token(port):
    post(port, 'mutation { register(input: {email: "bench@example.com", password: "%s"}) { user { id } } }' % PASSWORD)
    answer = post(port, 'mutation { login(input: {email: "bench@example.com", password: "%s"}) '
                        '{ ... on AuthPayload { accessToken } } }' % PASSWORD)
    return answer["data"]["login"]["accessToken"]


def ref_token(port):
    answer = post(port, 'mutation { login(email:"user5@example.com", password:"password123") { token } }')
    return answer["data"]["login"]["token"]


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing")
    if not os.path.exists(REF):
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=BASELINE, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=TARGET))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
    idgate_env = dict(env, TOKIO_WORKER_THREADS="1", IDGATE_LISTEN="127.0.0.1:18190", IDGATE_LOGIN_OTP="off",
                      IDGATE_REQUIRE_EMAIL_VERIFICATION="false", IDGATE_ACCESS_TOKEN_TTL_SECS="86400", RUST_LOG="warn")
    ref_env = dict(env, BIND="127.0.0.1:18192", WORKERS="1", STORE="sqlite", HASH="sem:1")
    for query, signed_in in (("{ __typename }", False), ("{ me { id email } }", True)):
        a = count("idgate", [IDGATE], idgate_env, 18190, "http://127.0.0.1:18190/healthz",
                  idgate_token if signed_in else None, query)
        b = count("reference", [REF], ref_env, 18192, "http://127.0.0.1:18192/", ref_token if signed_in else None, query)
        print(f"{query:20} idgate {a:9,.0f}  reference {b:9,.0f} instructions/request  ratio {a / b:.3f}", flush=True)


main()
