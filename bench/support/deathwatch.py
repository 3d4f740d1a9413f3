# Tells when processes die, without spending CPU while they live, for
# bench/teardown.exs. A watcher that polls /proc in a loop takes one of
# the machine's cores from the teardown it measures (on 2 cores that made
# medians twice as long and left 30-80 ms outliers in 1 run of 50).
#
# Protocol, one line each way:
#   stdin  "PID PID ...\n"   watch these (pidfd_open(2); an exited one counts
#                            as dead at once)
#   stdout "ready\n"         every pidfd is open: the caller may act now
#   stdout "PID MICROS\n"    PID exited (it is a zombie or gone) at MICROS, the
#                            CLOCK_REALTIME microsecond, as the BEAM's
#                            System.os_time(:microsecond) reads it
# The caller reads one death line per pid, then sends the next set.
import os
import select
import sys
import time


def main():
    out = sys.stdout
    for line in sys.stdin:
        pids = [int(p) for p in line.split()]
        fds = {}
        dead = []
        for pid in pids:
            try:
                fds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                dead.append(pid)
        out.write("ready\n")
        out.flush()
        now = time.time_ns() // 1000
        for pid in dead:
            out.write(f"{pid} {now}\n")
        out.flush()
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        while fds:
            for fd, _ in poller.poll():
                now = time.time_ns() // 1000
                out.write(f"{fds.pop(fd)} {now}\n")
                out.flush()
                poller.unregister(fd)
                os.close(fd)


main()
