"""Run the kill, resume and atomicity tests N times in a row with every core kept busy.

    .venv/bin/python tests/under_load.py 20            # the default selection, 20 rounds
    .venv/bin/python tests/under_load.py 5 -k sweep    # extra arguments go to pytest

The load is stress-ng (Debian's ``stress-ng``) with one CPU worker per core, or as many
spinning Python processes where stress-ng is missing. Prints one line per round and the
tally; exits 1 if any round failed. Not part of ``make test``: it takes an hour or more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SELECTION = [
    "tests/test_atomic.py::test_killed_train_export_and_web_leave_only_whole_files",
    "tests/test_resume.py::test_a_run_killed_at_random_moments_finishes_as_if_never_killed",
    "tests/test_resume.py::test_a_sweep_killed_mid_job_reruns_only_unfinished_jobs",
    "tests/test_resume.py::test_experiments_with_their_own_fit_resume",
    "tests/test_trust.py::test_a_second_writer_is_refused_and_a_killed_one_releases_at_once",
    "tests/test_resume.py::test_sigterm_records_the_run_as_interrupted_and_it_resumes",
    "tests/test_trust.py::test_serve_drops_a_request_that_is_never_finished",
]


def start_load() -> list[subprocess.Popen]:
    cores = os.cpu_count() or 1
    if shutil.which("stress-ng"):
        return [subprocess.Popen(["stress-ng", "--cpu", str(cores), "--quiet"], stdout=subprocess.DEVNULL)]
    spin = "while True: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores)]


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 20
    extra = argv[1:]
    load = start_load()
    passed = 0
    try:
        for number in range(1, rounds + 1):
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *SELECTION, *extra],
                                    cwd=HERE.parent, capture_output=True, text=True)
            ok = result.returncode == 0
            passed += ok
            tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            print(f"round {number}: {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s ({tail})",
                  flush=True)
            if not ok:
                print(result.stdout[-4000:], flush=True)
    finally:
        for process in load:
            process.kill()
    print(f"{passed}/{rounds} rounds passed with {os.cpu_count()} cores busy", flush=True)
    return 0 if passed == rounds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
