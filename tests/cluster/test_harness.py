#!/usr/bin/python3
"""Self-test of the fault test's machinery, no broker needed: the network
(namespaces, veths and bridge made idempotently; every node reachable; a
broker cut off from everyone, or isolated from its peers while the clients
still reach it, and healing), process control (SIGSTOP/SIGCONT, SIGKILL,
restart) on a dummy echo server inside a namespace, cleanup after SIGTERM
and after SIGKILL of the test process, and the SKIP path when not root.

Prints "ok"/"FAIL" per check, then "N passed, N failed"; prints SKIP and
exits 0 only when network namespaces cannot be used here."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netsim  # noqa: E402

PY = "/usr/bin/python3"
HELPER = os.path.join(HERE, "sockhelper.py")
PORT = 9092
ROOT_PORT = 19099   # the root-namespace server on the bridge address


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (name, (": " + detail) if detail else ""), flush=True)
        return ok


def probe(net, src, dst, secs=1.0):
    """(ok, reason): can node src open a connection to node dst's echo
    server and get an echo back within secs?"""
    port = ROOT_PORT if dst == 0 else PORT
    argv = net.exec_argv(src, [PY, HELPER, "probe", net.ip(dst), str(port), str(secs)])
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=secs + 20)
    return p.returncode == 0, p.stdout.strip()


def matrix(net, pairs):
    with ThreadPoolExecutor(16) as ex:
        res = list(ex.map(lambda ab: probe(net, *ab), pairs))
    return dict(zip(pairs, res))


def expect(check, net, name, want):
    """want: {(src, dst): bool}; one check listing every mismatch."""
    got = matrix(net, list(want))
    bad = ["%d->%d %s (%s)" % (a, b, "reachable" if got[(a, b)][0] else "unreachable", got[(a, b)][1])
           for (a, b), w in want.items() if got[(a, b)][0] != w]
    return check(name, not bad, "; ".join(bad))


def all_pairs(n):
    return [(a, b) for a in range(n + 1) for b in range(n + 1) if a != b]


def wait_listening(net, i, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if probe(net, 0, i, 0.5)[0]:
            return True
        time.sleep(0.1)
    return False


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def child_main(work):
    """Run by the cleanup checks: set up the network and an echo server per
    node, print the server pids, wait to be killed."""
    cluster.install_cleanup()
    net = netsim.Net(3).setup()
    cluster.register_net(net)
    procs = [cluster.Proc("echo %d" % i, [PY, HELPER, "serve", net.ip(i), str(PORT)],
                          os.path.join(work, "child-echo%d.log" % i), net, i) for i in net.nodes()]
    for p in procs:
        p.start()
    print("pids %s" % " ".join(str(p.pid) for p in procs), flush=True)
    time.sleep(600)


def spawn_child(work):
    with open(os.path.join(work, "child.log"), "a") as err:
        p = subprocess.Popen([PY, os.path.abspath(__file__), "--child", work], stdout=subprocess.PIPE,
                             stderr=err, text=True)
    line = p.stdout.readline()
    pids = [int(x) for x in line.split()[1:]] if line.startswith("pids") else []
    return p, pids


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child_main(sys.argv[2])
    try:
        netsim.check_available()
    except netsim.NetUnavailable as e:
        print("SKIP cluster harness: %s" % e)
        print("0 passed, 0 failed")
        return 0
    check = Checks()
    work = tempfile.mkdtemp(prefix="shopstream-harness.")
    cluster.install_cleanup()
    with netsim.lock():
        netsim.cleanup_stale()
        net = netsim.Net(3)
        cluster.register_net(net)
        try:
            run_checks(check, net, work)
        except Exception as e:
            import traceback
            traceback.print_exc()
            check("harness run", False, repr(e))
        finally:
            cluster.cleanup_all()
            left = netsim.leftovers()
            check("nothing left behind after teardown", not left, str(left))
    if check.failed == 0:
        cluster.remove_tree(work)
    else:
        print("logs in %s" % work)
    print("%d passed, %d failed" % (check.passed, check.failed))
    return 1 if check.failed else 0


def run_checks(check, net, work):
    # --- SKIP path: as an unprivileged user the fault test must skip
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY,
                             os.path.join(HERE, "test_faults.py"), "--seconds", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                            cwd="/")
    check("test_faults.py as a non-root user prints SKIP and exits 0",
          nobody.returncode == 0 and "SKIP" in nobody.stdout, "exit %d: %s" % (nobody.returncode, nobody.stdout[-500:]))

    # --- setup, idempotent
    net.setup()
    net.setup()
    names = set(netsim.leftovers())
    want = {net.bridge} | {net.ns(i) for i in net.nodes()} | {net.veth(i) for i in net.nodes()}
    check("setup twice: bridge, 3 namespaces and veths exist", names == want, "have %s" % sorted(names))
    addr = subprocess.run(["ip", "-n", net.ns(2), "-4", "-o", "addr", "show", "dev", "eth0"],
                          stdout=subprocess.PIPE, text=True).stdout
    check("namespace 2 has %s (once)" % net.ip(2), addr.count(net.ip(2) + "/24") == 1, addr)

    # --- echo servers: one per namespace, one in the root namespace
    servers = {}
    for i in [0] + net.nodes():
        port = ROOT_PORT if i == 0 else PORT
        servers[i] = cluster.Proc("echo %d" % i, [PY, HELPER, "serve", net.ip(i), str(port)],
                                  os.path.join(work, "echo%d.log" % i), net, i)
        servers[i].start()
    check("echo servers listening", all(wait_listening(net, i) for i in net.nodes()))
    out = subprocess.run(["ip", "netns", "identify", str(servers[1].pid)], stdout=subprocess.PIPE, text=True).stdout
    check("a process started in namespace 1 runs there, with the pid Popen returned",
          out.strip() == net.ns(1), "ip netns identify: %r" % out)
    n = net.n
    expect(check, net, "every node reaches every node", {ab: True for ab in all_pairs(n)})

    # --- cut off node 1 (an established connection stalls too)
    import socket
    conn = socket.create_connection((net.ip(1), PORT), 2)
    conn.settimeout(1.0)
    conn.sendall(b"a")
    check("established connection to node 1 echoes", conn.recv(1) == b"a")
    net.cut_off(1)
    expect(check, net, "cut_off(1): node 1 unreachable from/to everyone, the rest fine",
           {ab: 1 not in ab for ab in all_pairs(n)})
    conn.sendall(b"b")
    try:
        stalled = conn.recv(1) == b""
    except socket.timeout:
        stalled = True
    check("cut_off(1): established connection stalls (no reset, no data)", stalled)
    net.heal()
    conn.settimeout(15)
    try:
        resumed = conn.recv(1) == b"b"
    except OSError as e:
        resumed = False
        print("  %s" % e)
    check("heal: the stalled connection delivers its data", resumed)
    conn.close()
    expect(check, net, "heal: every node reaches every node again", {ab: True for ab in all_pairs(n)})

    # --- isolate node 2 from its peers: the clients (root) still reach it
    net.isolate_from_peers(2)
    want = {ab: not (2 in ab and 0 not in ab) for ab in all_pairs(n)}
    expect(check, net, "isolate_from_peers(2): 2 cut from 1 and 3, reachable from/to root", want)
    check("isolate_from_peers(2): recorded partitions", net.blocked == {frozenset((2, 1)), frozenset((2, 3))},
          str(net.blocked))
    fresh = netsim.Net(3)   # heal() from a new object (after a crash) finds the entries
    fresh.heal()
    expect(check, net, "heal by a fresh Net object: all reachable", {ab: True for ab in all_pairs(n)})

    # --- a single blocked pair
    net.block(1, 3)
    expect(check, net, "block(1, 3): only 1<->3 down", {ab: set(ab) != {1, 3} for ab in all_pairs(n)})
    net.unblock(1, 3)
    expect(check, net, "unblock(1, 3)", {(1, 3): True, (3, 1): True})

    # --- process control on the dummy in namespace 3
    s = servers[3]
    s.pause()
    ok, why = probe(net, 0, 3, 1.0)
    check("SIGSTOP: paused server does not answer", not ok and s.state == "paused", why)
    s.resume()
    ok, why = probe(net, 0, 3, 2.0)
    check("SIGCONT: server answers again", ok and s.state == "running", why)
    old = s.pid
    s.pause()
    s.kill()      # SIGKILL works on a stopped process
    ok, why = probe(net, 0, 3, 1.0)
    check("SIGKILL of a paused process: gone, exit -9, connection refused",
          not ok and "Refused" in why and s.popen.returncode == -9 and s.state == "dead" and not pid_alive(old),
          "rc %s, %s" % (s.popen.returncode, why))
    s.start()
    check("restart: new pid, listening again", s.pid != old and wait_listening(net, 3))
    s.kill()
    s.kill()
    check("kill twice is harmless", s.state == "dead")
    s.restart()
    check("restart() of a dead process", wait_listening(net, 3))
    check("unexpected_exit is None while running", s.unexpected_exit() is None)
    os.kill(s.pid, signal.SIGKILL)   # as if it crashed by itself
    time.sleep(0.3)
    check("a crash by itself is reported by unexpected_exit", s.unexpected_exit() == -9)
    for p in servers.values():
        p.kill()

    # --- cleanup when the test process gets SIGTERM
    net.teardown()
    child, pids = spawn_child(work)
    check("child started 3 servers in namespaces", len(pids) == 3 and all(pid_alive(p) for p in pids), str(pids))
    child.send_signal(signal.SIGTERM)
    rc = child.wait(60)
    time.sleep(0.2)
    left = netsim.leftovers()
    check("SIGTERM: child exits 143, kills its processes, removes the network",
          rc == 143 and not left and not any(pid_alive(p) for p in pids),
          "rc %s, left %s, alive %s" % (rc, left, [p for p in pids if pid_alive(p)]))

    # --- and when it is killed with SIGKILL: pdeathsig kills the servers,
    # the next run's cleanup_stale removes the network
    child, pids = spawn_child(work)
    ready = all(wait_listening(net, i) for i in net.nodes())   # past the exec of setpriv
    child.kill()
    child.wait(30)
    deadline = time.time() + 5
    while time.time() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    check("SIGKILL: the child's processes die with it (pdeathsig)", ready and not any(pid_alive(p) for p in pids))
    check("SIGKILL: namespaces are left behind", bool(netsim.leftovers()))
    netsim.cleanup_stale()
    check("cleanup_stale removes them", not netsim.leftovers(), str(netsim.leftovers()))


if __name__ == "__main__":
    sys.exit(main())
