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

Then idgate's login (the password step, its code mailed to the outbox), which the reference has
no counterpart of: 5 to warm up, LOGINS counted, and the instructions besides the password hash
printed (argon2id's own are left out: they are the hash's cost, set by its parameters, and run
here at 8 MiB rather than 19 to keep valgrind quick).

Usage, from the project root:
  cargo build --release && python3 benches/count_instructions.py [REQUESTS]
Needs valgrind. Builds the reference into $BASELINE_TARGET (default /tmp/idgate-bench-baseline)
on first use. Under valgrind SHA-256 runs without the CPU's SHA extensions, so the token checks'
hashing counts more than it costs on most machines (both servers hash).
"""
import os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request

from reference import (IDGATE, ME, PASSWORD, REF, TYPENAME, build_reference, environments, idgate_token, post,
                       raw_post, read_response, ref_token)

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
LOGINS = 50
# With its input in variables, as the throughput bench and generated clients send it: a document
# that writes the password out is parsed for every request (`http::documents` keeps no document
# with string literals), and that parse would count as a tenth of the login.
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { ... on OtpChallenge { challengeId } } }"
LOGIN_VARIABLES = {"i": {"email": "bench@example.com", "password": PASSWORD}}
# The function whose instructions are a password hash's own, left out of a login's count.
HASH_FUNCTION = "idgate::security::passwords::argon2id_into"


def send(request, port, n):
    """n requests, one at a time over one keep-alive connection; each must answer 200 without a
    GraphQL error (a refused login, say, would count another path)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(n):
            sock.sendall(request)
            body = read_response(sock)
            if b'"errors"' in body:
                sys.exit(f"unexpected answer: {body[:300]!r}")


def count(name, cmd, env, port, ready, request_of, warm, n, besides=None):
    """Instructions per request of the bytes `request_of(port)` returns (once the server is up),
    less those under the function `besides`, if given."""
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
        request = request_of(port)
        send(request, port, warm)
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True, capture_output=True)
        send(request, port, n)
        subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], check=True, capture_output=True)
    finally:
        p.terminate()
        p.wait(60)
    totals = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, text=True).stdout
    shutil.rmtree(work, ignore_errors=True)
    instructions = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", totals).group(1).replace(",", ""))
    if besides:
        # Inlined code shows the function on several lines; its own line holds the whole.
        under = re.findall(r"^\s*([\d,]+) .*:" + re.escape(besides) + r" \[", totals, re.MULTILINE)
        if not under:
            sys.exit(f"{besides} is not in the profile: renamed or inlined?")
        instructions -= max(int(i.replace(",", "")) for i in under)
    return instructions / n


def query_of(query, token_of):
    """`request_of` for `count`: `query`, with a token from `token_of` unless it is None."""
    return lambda port: raw_post(port, query, token_of(port) if token_of else None)


def login_request(port):
    """Registers the benchmark's account; the login request's bytes."""
    post(port, 'mutation { register(input: {email: "bench@example.com", password: "%s"}) { user { id } } }' % PASSWORD)
    return raw_post(port, LOGIN, None, LOGIN_VARIABLES)


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing")
    build_reference()
    idgate_env, ref_env = environments(18190, 18192, ".")
    for query, signed_in in ((TYPENAME, False), (ME, True)):
        a = count("idgate", [IDGATE], idgate_env, 18190, "http://127.0.0.1:18190/healthz",
                  query_of(query, idgate_token if signed_in else None), 200, REQUESTS)
        b = count("reference", [REF], ref_env, 18192, "http://127.0.0.1:18192/",
                  query_of(query, ref_token if signed_in else None), 200, REQUESTS)
        print(f"{query:20} idgate {a:9,.0f}  reference {b:9,.0f} instructions/request  ratio {a / b:.3f}", flush=True)
    # The login as the throughput bench floods it: its code mailed, no limit reached.
    login_env = dict(idgate_env, IDGATE_LOGIN_OTP="email", IDGATE_ARGON2_MEMORY_KIB="8192",
                     IDGATE_LOGIN_RATE_PER_IP="1000000", IDGATE_LOGIN_RATE_PER_EMAIL="1000000")
    a = count("idgate", [IDGATE], login_env, 18190, "http://127.0.0.1:18190/healthz", login_request, 5, LOGINS,
              besides=HASH_FUNCTION)
    print(f"{'login, password step':20} idgate {a:9,.0f}  instructions/login besides the password hash", flush=True)


main()
