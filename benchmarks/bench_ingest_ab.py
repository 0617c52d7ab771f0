"""A/B of two source trees ingesting the same custodians: run it once per tree with PYTHONPATH=<tree>/src, alternating."""

import json
import os
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    import inboxrl
    from inboxrl.store.ingest import ingest
    corpus = Path("/work/shared/data/enron-mbox")
    srcs = [corpus / c for c in ("kaminski-v", "lay-k")]
    db = Path(sys.argv[1])
    for s in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{s}").unlink(missing_ok=True)
    t0 = time.perf_counter(); c0 = resource.getrusage(resource.RUSAGE_SELF)
    s = ingest(srcs, db, workers=2)
    c1 = resource.getrusage(resource.RUSAGE_SELF); k = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"code": inboxrl.__file__.split("/")[2], "wall": round(time.perf_counter() - t0, 2),
                      "writer_cpu": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 2),
                      "workers_cpu": round(k.ru_utime + k.ru_stime, 2), "stored": s.store_messages,
                      "load": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
