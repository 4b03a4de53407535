"""`make bench`: run every benchmark and print its figures (never asserted; machines are noisy,
so each benchmark measures ratios within one run)."""

from __future__ import annotations

import sys

from bench import (
    accounting,
    credentials,
    datasets,
    evals,
    following,
    foundation,
    job_webhooks,
    preparation,
    proxy,
    proxy_clients,
    webhooks,
)


def main() -> int:
    for module in (
        foundation,
        proxy_clients,
        proxy,
        credentials,
        accounting,
        datasets,
        preparation,
        evals,
        following,
        job_webhooks,
        webhooks,
    ):
        print(f"== {module.__name__}", flush=True)
        module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
