#!/usr/bin/python3
"""10,000 idle connections (shared/RELIABILITY.md row 6), held or refused per
the broker's limits, without the broker failing or other clients waiting.

held:    max.connections and max.connections.per.ip above 10,000: every
         connection is accepted and still answers ApiVersions afterwards;
         memory stays bounded.
refused: the defaults (max.connections.per.ip=2000): the broker holds at
         most 2000 connections from 127.0.0.1 and closes the rest, while a
         client from another address (127.0.0.2) is served at once.
Prints "N passed, N failed".
"""
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
N = int(os.environ.get("SHOPSTREAM_IDLE_CONNECTIONS", "10000"))


def api_versions(corr):
    body = struct.pack(">hhih", 18, 0, corr, 4) + b"test"
    return struct.pack(">i", len(body)) + body


def ask(sock, corr, timeout=5.0):
    """ApiVersions v0 on sock; returns the correlation id of the reply or None."""
    sock.settimeout(timeout)
    try:
        sock.sendall(api_versions(corr))
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            if not chunk:
                return None
            head += chunk
        size, got = struct.unpack(">ii", head)
        left = size - 4
        while left > 0:
            chunk = sock.recv(min(left, 65536))
            if not chunk:
                return None
            left -= len(chunk)
        return got
    except OSError:
        return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def run_case(name, extra, check):
    work = tempfile.mkdtemp(prefix="shopstream-conns.")
    log = open(os.path.join(work, "broker.log"), "w")
    port = free_port()
    proc = subprocess.Popen([BIN, "broker", "--listen", "127.0.0.1:%d" % port, "--data-dir",
                             os.path.join(work, "data")] + extra, stdout=log, stderr=log)
    socks = []
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    return "broker did not start"
                time.sleep(0.05)
        time.sleep(1.1)  # a fresh accept-rate window
        t0 = time.time()
        for i in range(N):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError as e:
                s.close()
                return "connect %d failed: %s" % (i, e)
            socks.append(s)
        connect_s = time.time() - t0
        # a client from another address is served promptly meanwhile
        other = socket.socket()
        other.bind(("127.0.0.2", 0))
        t1 = time.time()
        other.connect(("127.0.0.1", port))
        got = ask(other, 424242, timeout=15)
        other_s = time.time() - t1
        other.close()
        if got != 424242:
            return "a client from 127.0.0.2 was not answered (%s)" % got
        time.sleep(0.5)
        if proc.poll() is not None:
            return "the broker exited with %s" % proc.returncode
        return check(proc, socks, connect_s, other_s)
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def check_held(proc, socks, connect_s, other_s):
    # let the accept throttle (2000/s) take them all in
    deadline = time.time() + 30
    while time.time() < deadline and open_fds(proc.pid) < N:
        time.sleep(0.2)
    held = open_fds(proc.pid)
    if held < N:
        return "the broker holds %d descriptors, fewer than %d connections" % (held, N)
    bad = [i for i in range(0, N, max(1, N // 40)) if ask(socks[i], i) != i]
    if bad:
        return "held connections %s did not answer" % bad[:5]
    rss = rss_kb(proc.pid)
    if rss > 256 * 1024:
        return "RSS %d kB with %d idle connections" % (rss, N)
    print("   held %d connections (connects %.1fs, other client %.2fs, RSS %d kB)"
          % (N, connect_s, other_s, rss), flush=True)
    return None


def check_refused(proc, socks, connect_s, other_s):
    time.sleep(6)  # the throttle lets the rest in and the broker refuses them
    held = open_fds(proc.pid)
    if held > 2000 + 100:
        return "the broker holds %d descriptors with max.connections.per.ip=2000" % held
    answered = sum(1 for i in range(0, N, max(1, N // 50)) if ask(socks[i], i, timeout=2) == i)
    if answered == 0:
        return "no connection was kept at all"
    print("   refused past the cap: %d descriptors held, %d of %d sampled connections answer, other client %.2fs"
          % (held, answered, len(range(0, N, max(1, N // 50))), other_s), flush=True)
    return None


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 200:
        print("SKIP: the file descriptor limit %d is below %d" % (hard, N + 200))
        print("0 passed, 1 failed")
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cases = [
        ("held", ["--set", "max.connections=%d" % (N + 100), "--set", "max.connections.per.ip=%d" % (N + 100)],
         check_held),
        ("refused", [], check_refused),
    ]
    passed = failed = 0
    for name, extra, check in cases:
        err = run_case(name, extra, check)
        if err:
            failed += 1
            print("FAIL %s: %s" % (name, err), flush=True)
        else:
            passed += 1
            print("ok   %d idle connections %s" % (N, name), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
