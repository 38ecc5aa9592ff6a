"""Benchmark: how long one password verification (scrypt) takes on this machine.

The tests check the cost that decides it (n, r, p and the accepted range, tests/test_http_auth.py);
this prints the time it gives here: the median over ``--runs`` verifications at the default cost
(n=2**14, r=8, p=1: the target is about 30 ms, at most ~50 ms) and at the cheapest and dearest
accepted n. Pure Python, no R.

    python benchmarks/bench_scrypt.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os

import _common as c

from r_server.auth import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_password, verify_password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    opts = parser.parse_args()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    medians = {}
    for n in (2**12, SCRYPT_N, 2**17):
        encoded = hash_password("benchmark-password", n=n)
        times = c.repeat(lambda encoded=encoded: verify_password("benchmark-password", encoded), opts.runs)
        medians[n] = c.median(times)
        label = " (the default)" if n == SCRYPT_N else ""
        cost = f"n=2**{n.bit_length() - 1}, r={SCRYPT_R}, p={SCRYPT_P}{label}"
        print(f"verify_password, scrypt {cost}: {c.spread(times)}")
    verdict = "met" if medians[SCRYPT_N] <= 0.05 else "NOT met"
    print(f"default cost: median {medians[SCRYPT_N] * 1e3:.1f} ms per verification (target <= ~50 ms: {verdict})")

if __name__ == "__main__":
    main()
