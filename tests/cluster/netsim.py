"""A simulated network for the fault test: one network namespace per broker,
each joined by a veth pair to a bridge in the root namespace, where the test
clients run.  Node 0 is the root namespace (the clients, SUBNET.254 on the
bridge); node i >= 1 is namespace PREFIX-b<i> with SUBNET.<i> on its eth0.

Partitions are made by "blackholing" neighbours: to cut the link between
nodes a and b, each side gets a permanent neighbour (ARP) entry giving the
other's address a MAC address no interface owns, so every packet between them
(new connections and established ones alike) is silently dropped on the
bridge, the way a real partition looks (timeouts, no resets, no
"unreachable" errors).  Healing deletes those entries and ARP resolves
again.  This needs nothing beyond iproute2 (no netfilter, tc classifiers or
kernel modules).

Everything created carries PREFIX ("ssft" unless SHOPSTREAM_NET_PREFIX), so
cleanup_stale() can remove what a crashed run left behind: it kills the
processes still inside our namespaces (they can only be ours) and deletes the
namespaces, veths and the bridge.  Runs are serialised with lock()."""
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import time

PREFIX = os.environ.get("SHOPSTREAM_NET_PREFIX", "ssft")
SUBNET = os.environ.get("SHOPSTREAM_NET_SUBNET", "10.77.0")
# A locally administered unicast MAC that no interface has: frames sent to
# it are flooded by the bridge and dropped by every receiver.
BLACKHOLE_MAC = "02:5e:00:de:ad:01"


class NetUnavailable(Exception):
    """Network namespaces cannot be used here (not root, no iproute2, no
    permission): the caller prints SKIP."""


class NetError(Exception):
    pass


def run(argv, check=True, timeout=20):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    if check and p.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


def _ns_list():
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _link_names():
    p = run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in p.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def ns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def cleanup_stale(prefix=PREFIX, quiet=False):
    """Removes every namespace, veth and bridge named PREFIX-*, first killing
    (SIGKILL, after SIGCONT) the processes inside those namespaces.  Returns
    a list of what was removed."""
    removed = []
    for ns in _ns_list():
        if not ns.startswith(prefix + "-"):
            continue
        for _ in range(50):
            pids = ns_pids(ns)
            if not pids:
                break
            for pid in pids:
                for sig in (signal.SIGKILL, signal.SIGCONT):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)
        run(["ip", "netns", "del", ns], check=False)
        removed.append("netns " + ns)
    for link in _link_names():
        if link.startswith(prefix + "-"):
            run(["ip", "link", "del", link], check=False)
            removed.append("link " + link)
    if removed and not quiet:
        print("netsim: removed stale %s" % ", ".join(removed), flush=True)
    return removed


def leftovers(prefix=PREFIX):
    """Namespaces and links with our prefix that still exist."""
    return [n for n in _ns_list() if n.startswith(prefix + "-")] + \
        [l for l in _link_names() if l.startswith(prefix + "-")]


def check_available(prefix=PREFIX):
    """Raises NetUnavailable (with the reason) when namespaces, veths or a
    bridge cannot be made here; cleans up its probe."""
    if os.geteuid() != 0:
        raise NetUnavailable("not root (network namespaces need root)")
    if not shutil.which("ip"):
        raise NetUnavailable("iproute2 ('ip') not installed")
    ns = prefix + "-probe"
    try:
        for argv in (["ip", "netns", "add", ns],
                     ["ip", "link", "add", prefix + "-pbr", "type", "bridge"],
                     ["ip", "link", "add", prefix + "-pv", "type", "veth", "peer", "name", "eth0", "netns", ns],
                     ["ip", "link", "set", prefix + "-pv", "master", prefix + "-pbr"],
                     ["ip", "-n", ns, "link", "set", "lo", "up"]):
            p = run(argv, check=False)
            if p.returncode != 0:
                raise NetUnavailable("cannot '%s': %s" % (" ".join(argv), p.stderr.strip()))
    finally:
        run(["ip", "link", "del", prefix + "-pv"], check=False)
        run(["ip", "link", "del", prefix + "-pbr"], check=False)
        run(["ip", "netns", "del", ns], check=False)


class lock:
    """Serialises runs on this machine (another worktree may run the same
    test): a flock on /run/lock/<prefix>-netsim.lock, waited for up to
    timeout seconds."""

    def __init__(self, prefix=PREFIX, timeout=1800):
        d = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
        self.path = os.path.join(d, prefix + "-netsim.lock")
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + self.timeout
        said = False
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.time() > deadline:
                raise NetError("another run holds %s for more than %d s" % (self.path, self.timeout))
            if not said:
                print("netsim: waiting for another run to release %s" % self.path, flush=True)
                said = True
            time.sleep(1)

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None


class Net:
    def __init__(self, n, prefix=PREFIX, subnet=SUBNET):
        self.n = n
        self.prefix = prefix
        self.subnet = subnet
        self.bridge = prefix + "-br"
        self.blocked = set()   # frozenset({a, b}) pairs currently cut

    # naming ------------------------------------------------------------
    def ns(self, i):
        return None if i == 0 else "%s-b%d" % (self.prefix, i)

    def veth(self, i):
        return "%s-v%d" % (self.prefix, i)

    def ip(self, i):
        return "%s.%d" % (self.subnet, 254 if i == 0 else i)

    def dev(self, i):
        return self.bridge if i == 0 else "eth0"

    def nodes(self):
        return list(range(1, self.n + 1))

    def exec_argv(self, i, argv):
        """argv run inside node i's namespace (ip netns exec execs it: the
        process keeps the pid Popen returns)."""
        return list(argv) if i == 0 else ["ip", "netns", "exec", self.ns(i)] + list(argv)

    def _ipcmd(self, i, *args):
        return ["ip"] + ([] if i == 0 else ["-n", self.ns(i)]) + list(args)

    # setup / teardown --------------------------------------------------
    def setup(self):
        """Creates whatever is missing (idempotent): the bridge with
        SUBNET.254/24, and per node a namespace, a veth pair (PREFIX-v<i> on
        the bridge, eth0 inside) and SUBNET.<i>/24."""
        links = set(_link_names())
        for line in run(["ip", "-4", "-o", "addr", "show"], check=False).stdout.splitlines():
            f = line.split()
            if len(f) >= 4 and f[3].startswith(self.subnet + ".") and f[1] != self.bridge:
                raise NetError("%s is already used on this host (%s); set SHOPSTREAM_NET_SUBNET to a free "
                               "/24, e.g. 10.78.0" % (f[3], f[1]))
        if self.bridge not in links:
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
        # no STP/forwarding delay: ports forward as soon as they are up
        run(["ip", "link", "set", self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"],
            check=False)
        run(["ip", "addr", "replace", self.ip(0) + "/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        existing = set(_ns_list())
        for i in self.nodes():
            ns = self.ns(i)
            if ns not in existing:
                run(["ip", "netns", "add", ns])
            if self.veth(i) not in links:
                run(["ip", "link", "add", self.veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", self.veth(i), "master", self.bridge])
            run(["ip", "link", "set", self.veth(i), "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "replace", self.ip(i) + "/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        self.heal()
        return self

    def teardown(self):
        cleanup_stale(self.prefix, quiet=True)
        self.blocked.clear()

    # faults -------------------------------------------------------------
    def _neigh_block(self, i, other):
        run(self._ipcmd(i, "neigh", "replace", self.ip(other), "lladdr", BLACKHOLE_MAC,
                        "dev", self.dev(i), "nud", "permanent"))

    def _neigh_unblock(self, i, other):
        run(self._ipcmd(i, "neigh", "del", self.ip(other), "dev", self.dev(i)), check=False)

    def block(self, a, b):
        """Drops every packet between nodes a and b (both directions)."""
        self._neigh_block(a, b)
        self._neigh_block(b, a)
        self.blocked.add(frozenset((a, b)))

    def unblock(self, a, b):
        self._neigh_unblock(a, b)
        self._neigh_unblock(b, a)
        self.blocked.discard(frozenset((a, b)))

    def cut_off(self, i):
        """Node i loses every peer and the clients."""
        for j in [0] + self.nodes():
            if j != i:
                self.block(i, j)

    def isolate_from_peers(self, i):
        """Node i loses the other brokers; the clients still reach it."""
        for j in self.nodes():
            if j != i:
                self.block(i, j)

    def heal(self):
        """Removes every blackhole entry (including ones this object did
        not record, e.g. after a crash in the middle of a fault)."""
        for i in [0] + self.nodes():
            for j in [0] + self.nodes():
                if i != j:
                    p = run(self._ipcmd(i, "neigh", "show", self.ip(j), "dev", self.dev(i)), check=False)
                    if BLACKHOLE_MAC in p.stdout.lower():
                        self._neigh_unblock(i, j)
        self.blocked.clear()
