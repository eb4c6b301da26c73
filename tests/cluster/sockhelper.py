"""Small socket programs for the harness self-test (tests/cluster/test_harness.py):
  sockhelper.py serve IP PORT        a threaded echo server (the dummy process)
  sockhelper.py probe IP PORT SECS   exit 0 if a connection echoes "ping" back
                                     within SECS, 1 otherwise (reason on stdout)"""
import socket
import sys
import threading


def serve(ip, port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(64)
    print("listening on %s:%d" % (ip, port), flush=True)

    def echo(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)

    while True:
        c, _ = srv.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def probe(ip, port, secs):
    try:
        with socket.create_connection((ip, port), secs) as s:
            s.settimeout(secs)
            s.sendall(b"ping")
            if s.recv(4) == b"ping":
                print("ok")
                return 0
            print("bad reply")
    except OSError as e:
        print("%s: %s" % (type(e).__name__, e))
    return 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
