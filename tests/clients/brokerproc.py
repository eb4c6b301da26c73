"""A shopstream broker process for the Python client tests: started on a
free 127.0.0.1 port with its own data dir inside a work dir, stopped by PID
(a signal, then SIGKILL if it lingers), restartable on the same port and
data dir.  The binary is $SHOPSTREAM_BIN or bin/shopstream."""
import os
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """A broker on 127.0.0.1:port with data in <work>/<name>-data; extra is a
    list of further arguments (e.g. ["--set", "key=value"])."""

    def __init__(self, work, name="broker", extra=()):
        self.data_dir = os.path.join(work, name + "-data")
        self.log_path = os.path.join(work, name + "-broker.log")
        self.port = free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.extra = list(extra)
        self.proc = None

    def start(self, timeout=15):
        with open(self.log_path, "a") as logf:
            self.proc = subprocess.Popen(
                [BIN, "broker", "--listen", self.bootstrap, "--data-dir", self.data_dir] + self.extra,
                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("broker exited with %s" % self.proc.returncode)
                time.sleep(0.02)
        raise RuntimeError("broker did not start listening within %d s" % timeout)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Returns the exit status (None if it had to be killed)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def tail(self, n=3000):
        try:
            with open(self.log_path) as f:
                return f.read()[-n:]
        except OSError:
            return ""
