"""Processes for the fault test: a generic managed process (started inside a
netsim namespace, killed with SIGKILL, paused with SIGSTOP/SIGCONT,
restarted with the same arguments, its output appended to a log file), the
shopstream broker built on it (cluster or single-node arguments), and a
Cluster of them with readiness checks, topic creation and leader look-ups.

Every process started is registered; cleanup_all() (run by atexit and by
the SIGTERM/SIGINT/SIGHUP handlers install_cleanup() sets) kills them all
and tears the network down, so an interrupted run leaves nothing behind.
Children are also started under `setpriv --pdeathsig KILL`, so they die
with this process even when it is killed with SIGKILL."""
import atexit
import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kmeta  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
if not os.path.isabs(BIN):
    BIN = os.path.join(ROOT, BIN)

PLAINTEXT_PORT = 9092
CONTROLLER_PORT = 9093

# -- cleanup registry ----------------------------------------------------
_procs = []
_nets = []
_cleanup_lock = threading.RLock()
_installed = False


def register_net(net):
    _nets.append(net)


def cleanup_all():
    with _cleanup_lock:
        for p in list(_procs):
            try:
                p.kill()
            except Exception:
                pass
        for net in list(_nets):
            try:
                net.teardown()
            except Exception as e:
                print("cleanup: network teardown failed: %s" % e, file=sys.stderr, flush=True)
        _nets.clear()


def install_cleanup():
    """atexit + SIGTERM/SIGINT/SIGHUP: kill our processes, remove the
    network, exit (128 + signal number)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(cleanup_all)

    def handler(signum, frame):
        print("\nsignal %d: cleaning up" % signum, file=sys.stderr, flush=True)
        cleanup_all()
        os._exit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


# -- processes -----------------------------------------------------------
class Proc:
    """A process run as argv inside net node `node` (0 or net None: the
    root namespace).  States: "new", "running", "paused", "dead"."""

    def __init__(self, name, argv, log_path, net=None, node=0, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.net = net
        self.node = node
        self.env = env
        self.popen = None
        self.state = "new"
        self.starts = 0
        _procs.append(self)

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def full_argv(self):
        # pdeathsig first: it survives the exec of ip and of the program
        argv = self.net.exec_argv(self.node, self.argv) if self.net and self.node else self.argv
        return ["setpriv", "--pdeathsig", "KILL", "--"] + argv

    def start(self):
        if self.state in ("running", "paused"):
            raise RuntimeError("%s already running" % self.name)
        with open(self.log_path, "a") as logf:
            logf.write("==== %s start #%d at %.3f: %s\n" % (self.name, self.starts + 1, time.time(),
                                                          " ".join(self.argv)))
            logf.flush()
            self.popen = subprocess.Popen(self.full_argv(), stdout=logf, stderr=logf,
                                          stdin=subprocess.DEVNULL, env=self.env, close_fds=True)
        self.state = "running"
        self.starts += 1

    def exited(self):
        """The exit status if the process has ended, else None."""
        return self.popen.poll() if self.popen else None

    def unexpected_exit(self):
        """The exit status if it ended while it should be running/paused."""
        if self.state in ("running", "paused"):
            rc = self.exited()
            if rc is not None:
                self.state = "dead"
                return rc
        return None

    def _signal(self, sig):
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill(self):
        """SIGKILL and reap."""
        if self.popen and self.popen.poll() is None:
            self._signal(signal.SIGKILL)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.state != "new":
            self.state = "dead"

    def pause(self):
        self._signal(signal.SIGSTOP)
        self.state = "paused"

    def resume(self):
        self._signal(signal.SIGCONT)
        if self.state == "paused":
            self.state = "running"

    def restart(self):
        self.kill()
        self.start()

    def terminate(self, timeout=20):
        """SIGCONT + SIGTERM, SIGKILL after timeout; returns the exit status
        (None if it had to be killed)."""
        if not self.popen or self.popen.poll() is not None:
            self.state = "dead" if self.popen else self.state
            return self.popen.returncode if self.popen else None
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.state = "dead"
        return rc

    def tail(self, n=3000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


# -- brokers -------------------------------------------------------------
def broker_argv(node_id, ips, data_dir, single=False, extra=()):
    """The broker start contract.  ips: {node_id: ip}.  Single-node mode is
    the pre-cluster broker: --listen, fsync before acknowledging."""
    ip = ips[node_id]
    if single:
        return [BIN, "broker", "--listen", "%s:%d" % (ip, PLAINTEXT_PORT), "--data-dir", data_dir,
                "--set", "log.flush.interval.messages=1"] + list(extra)
    voters = ",".join("%d@%s:%d" % (i, ips[i], CONTROLLER_PORT) for i in sorted(ips))
    return [BIN, "broker", "--data-dir", data_dir,
            "--set", "node.id=%d" % node_id,
            "--set", "listeners=PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (ip, PLAINTEXT_PORT, ip, CONTROLLER_PORT),
            "--set", "advertised.listeners=PLAINTEXT://%s:%d" % (ip, PLAINTEXT_PORT),
            "--set", "controller.quorum.voters=%s" % voters,
            "--set", "broker.session.timeout.ms=3000",
            "--set", "broker.heartbeat.interval.ms=500",
            "--set", "replica.lag.time.max.ms=3000",
            "--set", "default.replication.factor=3",
            "--set", "min.insync.replicas=2",
            "--set", "offsets.topic.replication.factor=3"] + list(extra)


class Cluster:
    """n brokers, broker i in net node i (address net.ip(i)), data and logs
    in work/b<i>-data and work/b<i>.log.  single=True: one broker, started
    the pre-cluster way."""

    def __init__(self, net, work, single=False, extra=()):
        self.net = net
        self.work = work
        self.single = single
        ids = [1] if single else net.nodes()
        ips = {i: net.ip(i) for i in ids}
        # a private copy of the binary: a rebuild during the run must not
        # make a restart fail or mix versions
        if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
            raise RuntimeError("no broker binary at %s (run make, or set SHOPSTREAM_BIN)" % BIN)
        self.bin = os.path.join(work, "shopstream")
        shutil.copy2(BIN, self.bin)
        self.brokers = collections.OrderedDict()
        for i in ids:
            data = os.path.join(work, "b%d-data" % i)
            argv = broker_argv(i, ips, data, single, extra)
            argv[0] = self.bin
            self.brokers[i] = Proc("broker %d" % i, argv,
                                   os.path.join(work, "b%d.log" % i), net, i)
            self.brokers[i].data_dir = data
        self.bootstrap = ",".join("%s:%d" % (ips[i], PLAINTEXT_PORT) for i in ids)

    def ids(self):
        return list(self.brokers)

    def start(self):
        for b in self.brokers.values():
            b.start()

    def stop(self, timeout=20):
        return {i: b.terminate(timeout) for i, b in self.brokers.items()}

    def metadata(self, i, topics=None, timeout=1.0):
        return kmeta.metadata(self.net.ip(i), PLAINTEXT_PORT, topics, timeout)

    def views(self, topic=None, timeout=1.0):
        """{broker id: metadata or the exception string} from each broker
        (all topics are asked for: naming one could auto-create it)."""
        out = {}
        for i in self.ids():
            try:
                out[i] = self.metadata(i, None, timeout)
            except Exception as e:
                out[i] = "%s: %s" % (type(e).__name__, e)
        return out

    def leaders(self, topic, timeout=0.7):
        """{partition: leader} by majority of the brokers that answer (ties:
        the lowest broker id's view)."""
        votes = collections.defaultdict(collections.Counter)
        for i, v in self.views(topic, timeout).items():
            if isinstance(v, dict) and topic in v["topics"]:
                for p, info in v["topics"][topic]["partitions"].items():
                    if info["error"] == 0 and info["leader"] >= 0:
                        votes[p][info["leader"]] += 1
        return {p: c.most_common(1)[0][0] for p, c in votes.items()}

    def _crashed(self):
        for i, b in self.brokers.items():
            rc = b.unexpected_exit()
            if rc is not None:
                raise RuntimeError("broker %d exited with status %s while starting; log tail:\n%s"
                                   % (i, rc, b.tail(2000)))

    def wait_brokers(self, timeout=60):
        """Until every broker's Metadata lists all brokers."""
        want = set(self.ids())
        deadline = time.time() + timeout
        while True:
            self._crashed()
            views = self.views()
            # the pre-cluster broker calls itself node 0: there, one broker is enough
            ok = all(isinstance(v, dict) and (len(v["brokers"]) == 1 if self.single else set(v["brokers"]) >= want)
                     for v in views.values())
            if ok:
                return views
            if time.time() > deadline:
                raise RuntimeError("cluster not formed after %d s (want brokers %s): %s%s" % (
                    timeout, sorted(want), self._describe(views),
                    "" if self.single else " -- does the broker support node.id/controller.quorum.voters yet?"))
            time.sleep(0.3)

    def create_topic(self, topic, partitions, timeout=60):
        rf = len(self.brokers)
        argv = [self.bin, "topic", "create", topic, "--partitions", str(partitions), "--replicas", str(rf),
                "--bootstrap", self.bootstrap]
        deadline = time.time() + timeout
        while True:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL, timeout=60)
            if p.returncode == 0 or "already exists" in p.stdout.lower():
                return
            if time.time() > deadline:
                raise RuntimeError("topic create failed: %s" % p.stdout.strip())
            time.sleep(0.5)

    def wait_topic(self, topic, partitions, timeout=60):
        """Until every broker's Metadata has the topic with every partition
        led (and, in a cluster, with len(brokers) replicas)."""
        rf = len(self.brokers)
        deadline = time.time() + timeout
        while True:
            self._crashed()
            views = self.views(topic)
            ok = True
            for v in views.values():
                t = v["topics"].get(topic) if isinstance(v, dict) else None
                if not t or t["error"] or len(t["partitions"]) != partitions:
                    ok = False
                    break
                for info in t["partitions"].values():
                    if info["error"] or info["leader"] < 0 or len(info["replicas"]) != rf:
                        ok = False
            if ok:
                return views
            if time.time() > deadline:
                raise RuntimeError("topic %s not ready after %d s: %s" % (topic, timeout, self._describe(views, topic)))
            time.sleep(0.3)

    @staticmethod
    def _describe(views, topic=None):
        parts = []
        for i, v in views.items():
            if not isinstance(v, dict):
                parts.append("broker %d: %s" % (i, v))
                continue
            s = "broker %d: brokers %s" % (i, sorted(v["brokers"]))
            t = v["topics"].get(topic) if topic else None
            if t:
                s += ", leaders %s" % {p: x["leader"] for p, x in sorted(t["partitions"].items())}
            parts.append(s)
        return "; ".join(parts)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
