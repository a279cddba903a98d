"""Bare bcrypt baseline for deploy/bench/identity: password verifications per second.

    python bench-identity-bcrypt.py --cost 12 --threads 2 --seconds 10 [--max-hashes 100000]

Needs the `bcrypt` package (pyca/bcrypt; deploy/bench/identity installs it into a throwaway
virtualenv). Hashes one random 24-character password once at the given cost (untimed), then
`threads` threads call bcrypt.checkpw on it (one full bcrypt computation each, as identity does
for a login) until the time is up or max-hashes verifications were done in all. bcrypt releases
the GIL while hashing, so threads run in parallel; the CPU the process used is reported too, so
the table can show that they did. Prints one JSON line
{"cost","threads","hashes","seconds","rate","mean_ms","cpu_seconds","cores","version"}.
"""

import argparse
import json
import secrets
import string
import sys
import threading
import time

import bcrypt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cost", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--max-hashes", type=int, default=100_000)
    args = ap.parse_args()
    if not 4 <= args.cost <= 31 or args.threads < 1 or args.seconds <= 0 or args.max_hashes < 1:
        ap.error("cost 4..31, threads >= 1, seconds > 0, max-hashes >= 1")

    password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24)).encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=args.cost))
    if not bcrypt.checkpw(password, hashed):  # also warms up
        sys.exit("bcrypt.checkpw rejected its own hash")

    lock = threading.Lock()
    done = 0
    failed = 0
    per_thread_seconds = []

    def worker(deadline):
        nonlocal done, failed
        t0 = time.perf_counter()
        while time.perf_counter() < deadline:
            with lock:
                if done >= args.max_hashes:
                    break
                done += 1  # reserve one, so max-hashes is never exceeded
            if not bcrypt.checkpw(password, hashed):
                with lock:
                    failed += 1
        with lock:
            per_thread_seconds.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + args.seconds
    threads = [threading.Thread(target=worker, args=(deadline,)) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    # Each thread may finish its last hash after the deadline; the rate uses the real wall time.
    print(json.dumps({
        "cost": args.cost, "threads": args.threads, "hashes": done, "failed": failed,
        "seconds": round(seconds, 3), "rate": done / seconds,
        "mean_ms": (sum(per_thread_seconds) / done * 1000) if done else None,
        "cpu_seconds": round(cpu, 3), "cores": round(cpu / seconds, 2),
        "version": getattr(bcrypt, "__version__", "?"),
    }))
    sys.exit(1 if failed or not done else 0)


if __name__ == "__main__":
    main()
