#!/usr/bin/env python3
"""Two idgate builds in turns on one machine: what a login costs besides its hash, and `me`.

`cargo bench` compares logins with the hash rate measured in other phases, so the machine's
drift (a tenth or more within minutes) hides a change of a few percent. This runs two binaries
in turns, several rounds, and reports per round and as medians:
  - a login flood (`wrk`, 8 connections, 8 accounts so that no lockout reservation refuses):
    logins/s, CPU per login of the server besides its hashing threads, of Redis and of
    PostgreSQL (from /proc), with Redis commands per login, and the share of all cores the
    server's hashing threads got (what logins/s is made of, and unlike it steady under drift);
  - `{ me { id email } }` with a bearer token, 32 connections flat out: req/s.
A round's two figures are taken minutes apart at most, so compare them pairwise.

Usage, from the project root, with two release binaries (copy the first aside before building
the second):
  python3 benches/compare_builds.py OLD_BINARY NEW_BINARY [ROUNDS]
On PostgreSQL + Redis when IDGATE_BENCH_DATABASE_URL (a server's base URL: a fresh database is
created beside it per server and dropped) and IDGATE_BENCH_REDIS_URL are set, else on SQLite
with its KV table. Needs wrk.
"""
import glob, json, os, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

PASSWORD = "correct horse battery staple 93"
ACCOUNTS = 8
PORTS = {"old": 18610, "new": 18611}
DATABASE = os.environ.get("IDGATE_BENCH_DATABASE_URL")
REDIS = os.environ.get("IDGATE_BENCH_REDIS_URL")
TICKS = os.sysconf("SC_CLK_TCK")
WORK = tempfile.mkdtemp(prefix="compare-builds-")
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { ... on OtpChallenge { challengeId } } }"


def post(port, query, variables, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def cpu_secs(pid):
    """User and system time of a process (its exited threads included)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def hashing_secs(pid):
    total = 0.0
    for task in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            stat = open(task).read()
        except OSError:
            continue
        if stat.split("(", 1)[1].rsplit(")", 1)[0].startswith("idgate-hash"):
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def processes_secs(name):
    total = 0.0
    for pid in subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split():
        try:
            total += cpu_secs(pid)
        except OSError:
            pass
    return total


def redis_commands():
    if not REDIS:
        return 0
    host = urllib.parse.urlparse(REDIS)
    out = subprocess.run(["redis-cli", "-h", host.hostname or "127.0.0.1", "-p", str(host.port or 6379), "info",
                          "commandstats"], capture_output=True, text=True).stdout
    return sum(int(m) for m in re.findall(r"calls=(\d+)", out))


class Server:
    def __init__(self, name, binary):
        self.name, self.port, self.dir = name, PORTS[name], os.path.join(WORK, name)
        os.makedirs(self.dir)
        env = {"PATH": os.environ["PATH"], "RUST_LOG": "warn", "IDGATE_LISTEN": f"127.0.0.1:{self.port}",
               "IDGATE_OUTBOX_DIR": os.path.join(self.dir, "outbox"), "IDGATE_REQUIRE_EMAIL_VERIFICATION": "false",
               "IDGATE_LOGIN_RATE_PER_IP": "1000000", "IDGATE_LOGIN_RATE_PER_EMAIL": "1000000",
               "IDGATE_REGISTER_RATE_PER_IP": "1000000", "IDGATE_OTP_RATE_PER_IP": "1000000",
               "IDGATE_DATABASE_URL": f"sqlite://{self.dir}/idgate.db?mode=rwc"}
        self.database = None
        if DATABASE:
            self.database = f"idgate_compare_builds_{self.name}"
            self.psql(f"DROP DATABASE IF EXISTS {self.database}", f"CREATE DATABASE {self.database}")
            env["IDGATE_DATABASE_URL"] = DATABASE.rsplit("/", 1)[0] + "/" + self.database
        if REDIS:
            env["IDGATE_REDIS_URL"], env["IDGATE_REDIS_PREFIX"] = REDIS, f"compare-builds-{self.name}:"
        log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen([binary], env=env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except OSError:
                if self.process.poll() is not None:
                    sys.exit(f"{binary} exited; see {self.dir}/server.log")
                time.sleep(0.1)
        for i in range(ACCOUNTS):
            post(self.port, "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
                 {"i": {"email": f"compare{i}@example.com", "password": PASSWORD}})
        self.token = self.sign_in()

    def psql(self, *commands):
        args = ["psql", "-q", DATABASE]
        for command in commands:
            args += ["-c", command]
        subprocess.run(args, check=True, capture_output=True)

    def sign_in(self):
        answer = post(self.port, LOGIN, {"i": {"email": "compare0@example.com", "password": PASSWORD}})
        challenge = answer["data"]["login"]["challengeId"]
        mail = open(sorted(glob.glob(os.path.join(self.dir, "outbox", "*.eml")))[-1]).read()
        code = re.search(r"code is (\d{6})", mail).group(1)
        answer = post(self.port, "mutation($i: VerifyOtpInput!) { verifyOtp(input: $i) { accessToken } }",
                      {"i": {"challengeId": challenge, "code": code}})
        return answer["data"]["verifyOtp"]["accessToken"]

    def wrk(self, script, connections, seconds):
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script,
                              f"http://127.0.0.1:{self.port}/graphql"], capture_output=True, text=True).stdout
        if "Non-2xx" in out:
            sys.exit(f"non-2xx answers from {self.name}:\n{out}")
        return out

    def login_round(self, seconds=20):
        script = os.path.join(self.dir, "login.lua")
        bodies = [json.dumps({"query": LOGIN, "variables": {"i": {"email": f"compare{i}@example.com",
                                                                    "password": PASSWORD}}}) for i in range(ACCOUNTS)]
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
            f.write("local bodies = {" + ", ".join(json.dumps(b) for b in bodies) + "}\nlocal n = 0\n")
            f.write(f"request = function()\n  n = n + 1\n  return wrk.format(nil, nil, nil, bodies[(n % {ACCOUNTS}) + 1])\nend\n")
        self.wrk(script, 8, 3)  # warm-up
        mails_before = len(os.listdir(os.path.join(self.dir, "outbox")))
        hashing_before, started = hashing_secs(self.process.pid), time.monotonic()
        before = (cpu_secs(self.process.pid) - hashing_before, processes_secs("redis-server"),
                  processes_secs("postgres"), redis_commands())
        out = self.wrk(script, 8, seconds)
        hashing_after, elapsed = hashing_secs(self.process.pid), time.monotonic() - started
        after = (cpu_secs(self.process.pid) - hashing_after, processes_secs("redis-server"),
                 processes_secs("postgres"), redis_commands())
        hashing_share = (hashing_after - hashing_before) / (elapsed * len(os.sched_getaffinity(0)))
        logins = int(re.search(r"(\d+) requests in", out).group(1))
        mailed = len(os.listdir(os.path.join(self.dir, "outbox"))) - mails_before
        if abs(mailed - logins) > 16:  # a code mailed per login, but for those cut off at the end
            sys.exit(f"{self.name}: {logins} logins but {mailed} codes mailed: some logins failed")
        per_login = [(b - a) / logins for a, b in zip(before, after)]
        return [logins / seconds, per_login[0] * 1000, per_login[1] * 1000, per_login[2] * 1000, per_login[3],
                hashing_share * 100]

    def me_round(self, seconds=5):
        script = os.path.join(self.dir, "me.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
            f.write(f'wrk.headers["Authorization"] = "Bearer {self.token}"\n')
            f.write("wrk.body = " + json.dumps(json.dumps({"query": "{ me { id email } }"})) + "\n")
        out = self.wrk(script, 32, seconds)
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def stop(self):
        self.process.terminate()
        self.process.wait()
        if self.database:
            self.psql(f"DROP DATABASE IF EXISTS {self.database}")


def describe(row):
    """A login round's figures (the services' only when the server uses them)."""
    text = f"{row[0]:6.1f} logins/s, hashing {row[5]:.1f} % of all cores; per login: server besides hashing {row[1]:.2f} ms"
    if DATABASE and REDIS:
        text += f", Redis {row[2]:.3f} ms, PostgreSQL {row[3]:.3f} ms, {row[4]:.1f} Redis commands"
    return text


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    servers = {}
    try:
        for name, binary in (("old", sys.argv[1]), ("new", sys.argv[2])):
            servers[name] = Server(name, os.path.abspath(binary))
        print(f"on {'PostgreSQL + Redis' if DATABASE and REDIS else 'SQLite'}, {rounds} rounds, builds in turns")
        logins = {name: [] for name in servers}
        me = {name: [] for name in servers}
        for r in range(1, rounds + 1):
            for name, server in servers.items():
                row = server.login_round()
                logins[name].append(row)
                print(f"round {r} {name}: {describe(row)}", flush=True)
            for name, server in servers.items():
                me[name].append(server.me_round())
                print(f"round {r} {name}: me {me[name][-1]:8,.0f} req/s", flush=True)
        print("medians:")
        for name in servers:
            medians = [statistics.median(column) for column in zip(*logins[name])]
            print(f"  {name}: {describe(medians)}; me {statistics.median(me[name]):,.0f} req/s")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
