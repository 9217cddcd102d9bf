"""What the scripts that set idgate beside the reference server share: where the two binaries
are, the environments both run in (SQLite, one tokio worker), how each hands out a token, and a
GraphQL POST over a raw keep-alive socket (no client library's overhead in the figures)."""
import json, os, re, subprocess, sys, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "..", "shared", "bench-baseline")
TARGET = os.environ.get("BASELINE_TARGET", "/tmp/idgate-bench-baseline")
REF = os.path.join(TARGET, "release", "idsrv")
IDGATE = os.path.join(ROOT, "target", "release", "idgate")
ME = "{ me { id email } }"
TYPENAME = "{ __typename }"
PASSWORD = "correct horse battery staple 93"


def build_reference():
    """Builds the reference server on first use."""
    if not os.path.exists(REF):
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=BASELINE, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=TARGET))


def environments(idgate_port, ref_port, work):
    """The environments of idgate and of the reference: SQLite, one tokio worker each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
    idgate = dict(env, TOKIO_WORKER_THREADS="1", IDGATE_LISTEN=f"127.0.0.1:{idgate_port}", IDGATE_LOGIN_OTP="off",
                  IDGATE_REQUIRE_EMAIL_VERIFICATION="false", IDGATE_ACCESS_TOKEN_TTL_SECS="86400", RUST_LOG="warn")
    ref = dict(env, BIND=f"127.0.0.1:{ref_port}", WORKERS="1", STORE="sqlite", HASH="sem:1",
               SQLITE=os.path.join(work, "ref.db"), TOKFILE=os.path.join(work, "ref.token"))
    return idgate, ref


def post(port, query, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def idgate_token(port):
    """Registers the benchmark's account (once) and signs it in."""
    post(port, 'mutation { register(input: {email: "bench@example.com", password: "%s"}) { user { id } } }' % PASSWORD)
    answer = post(port, 'mutation { login(input: {email: "bench@example.com", password: "%s"}) '
                        '{ ... on AuthPayload { accessToken } } }' % PASSWORD)
    return answer["data"]["login"]["accessToken"]


def ref_token(port):
    answer = post(port, 'mutation { login(email:"user5@example.com", password:"password123") { token } }')
    return answer["data"]["login"]["token"]


def raw_post(port, query, token, variables=None):
    """The bytes of a GraphQL POST, to send again and again on one connection."""
    body = json.dumps({"query": query, "variables": variables} if variables else {"query": query}).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock):
    """Reads one answer off the socket and returns its body; anything but a 200 ends the run."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"unexpected answer: {head[:200]!r}")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest
