"""gunicorn settings for bench/load.py: the project's gunicorn.conf.py unchanged, plus hooks
that record what each worker does, so the load test can count database work per refresh
interval from outside the workers.

Each worker appends to two files of BENCH_COUNT_DIR, named after its pid:
  queries-PID.tsv   unix time, statement kind ("SELECT data_version") of every SQL statement
  requests-PID.tsv  unix time at the end, path, status, bytes sent, ms inside the worker, and
                    which of the bench's clients sent it (its X-Bench-Kind header, else empty)

    BENCH_COUNT_DIR=/tmp/counts gunicorn -c bench/gunicorn_counting.py 'app:create_server()'
"""
import importlib.util
import os
import re
import threading
import time
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "floorlink_gunicorn_conf", Path(__file__).resolve().parent.parent / "gunicorn.conf.py")
_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_project)
# gunicorn keeps the names it knows as settings and ignores the rest.
globals().update({name: value for name, value in vars(_project).items() if not name.startswith("_")})

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


class _Record:
    """One worker's append-only, line-buffered record; lines from its threads never interleave."""

    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, *fields) -> None:
        line = "\t".join(str(f) for f in fields) + "\n"
        with self._lock:
            self._file.write(line)


_records: dict[str, _Record] = {}


def statement_kind(statement: str) -> str:
    """The verb and first table of a statement: enough to tell the overview's reads apart."""
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1)}" if table else verb


def _count_statement(conn, cursor, statement, parameters, context, executemany):
    _records["queries"].write(f"{time.time():.6f}", statement_kind(statement))


def post_fork(server, worker):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _project.post_fork(server, worker)
    folder = Path(os.environ["BENCH_COUNT_DIR"])
    pid = os.getpid()
    _records["queries"] = _Record(folder / f"queries-{pid}.tsv")
    _records["requests"] = _Record(folder / f"requests-{pid}.tsv")
    event.listen(Engine, "before_cursor_execute", _count_statement)


def pre_request(worker, req):
    if hasattr(_project, "pre_request"):
        _project.pre_request(worker, req)
    req.bench_started = time.perf_counter()


def post_request(worker, req, environ, resp):
    if hasattr(_project, "post_request"):
        _project.post_request(worker, req, environ, resp)
    started = getattr(req, "bench_started", None)
    if started is None or resp is None:
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    sent_by = next((value for name, value in req.headers if name == "X-BENCH-KIND"), "")
    _records["requests"].write(f"{time.time():.6f}", req.path, resp.status_code, resp.sent,
                               f"{elapsed_ms:.3f}", sent_by)
