#!/usr/bin/env python3
"""The pause a redis client sees across crdump --tcp-established and crrestore (issue 12).

redis-server on 127.0.0.1 with N clients connected (each has done one INCR). One client sends
INCR the instant crdump starts; its pause is the time from then to its answer, which comes from
the restored server (the request is dropped by the network lock and sent again by the kernel).
Also the dump and restore wall times, against the same server with no clients.

  bench/net_pause.py [BIN_DIR] [RUNS]     (BIN_DIR default build/bin, RUNS default 5)

Prints medians. Timings are figures, never pass/fail.
"""
import os
import socket
import statistics
import subprocess
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
IMG = "/dev/shm/crtools-net-pause.img"
INCR = b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_reply(c):
    buf = b""
    while not buf.endswith(b"\r\n"):
        d = c.recv(64)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    return buf


def one_run(nclients):
    port = free_port()
    srv = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "no", "--maxclients", "4096"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    clients = []
    try:
        for _ in range(200):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port)))
                break
            except OSError:
                time.sleep(0.01)
        for _ in range(nclients - 1):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        for c in clients:
            c.sendall(INCR)
            read_reply(c)
        probe = clients[0] if nclients > 0 else None
        if nclients == 0:
            clients[0].close()
            clients = []
        args = [f"{BIN}/crdump", "-o", IMG, str(srv.pid)]
        if nclients:
            args.insert(1, "--tcp-established")
        for attempt in range(100):
            t0 = time.monotonic()
            dump = subprocess.Popen(args, stderr=subprocess.PIPE)
            if probe:
                probe.sendall(INCR)
            err = dump.communicate()[1]
            t1 = time.monotonic()
            # The readiness client just closed: redis may not have seen it yet (refused in
            # CLOSE_WAIT, the server carries on); try again.
            if dump.returncode == 0 or b"CLOSE_WAIT" not in err or probe:
                break
            time.sleep(0.01)
        if dump.returncode != 0:
            raise RuntimeError("crdump: " + err.decode())
        srv.wait()
        r = subprocess.run([f"{BIN}/crrestore", "-d", "-i", IMG, "--pidfile", IMG + ".pid"],
                           capture_output=True)
        t2 = time.monotonic()
        if r.returncode != 0:
            raise RuntimeError("crrestore: " + r.stderr.decode())
        pause = None
        if probe:
            read_reply(probe)
            pause = time.monotonic() - t0
        for c in clients[1:]:
            c.sendall(INCR)
            read_reply(c)
        return t1 - t0, t2 - t1, pause
    finally:
        for c in clients:
            c.close()
        try:
            os.kill(srv.pid, 9)
        except ProcessLookupError:
            pass
        # The restored server is crrestore's child, not ours: its pid from --pidfile.
        if os.path.exists(IMG + ".pid"):
            try:
                os.kill(int(open(IMG + ".pid").read()), 9)
            except (ValueError, ProcessLookupError):
                pass
            os.unlink(IMG + ".pid")
        if os.path.exists(IMG):
            os.unlink(IMG)


def main():
    print(f"redis-server, {RUNS} runs each, medians; image on /dev/shm")
    print(f"{'clients':>8} {'dump ms':>9} {'restore ms':>11} {'pause ms':>9}")
    for n in (0, 1, 100, 1000):
        runs = [one_run(n) for _ in range(RUNS)]
        d = statistics.median(r[0] for r in runs) * 1e3
        rs = statistics.median(r[1] for r in runs) * 1e3
        p = statistics.median(r[2] for r in runs) * 1e3 if n else float("nan")
        print(f"{n:>8} {d:>9.1f} {rs:>11.1f} {p:>9.1f}")


if __name__ == "__main__":
    main()
