"""Production serving: `gunicorn 'app:create_server()'` reads this file from the project root.

The app is built once in the master (--preload) and forked; each worker then drops any
database connections it inherited, so no two processes share a socket, and starts the beat
that computes the next interval's views ahead of each snapshot boundary (data/wall/ahead.py).

One worker per core, each with 4 threads (gthread): a request waits for the database for
much of its time (a write through the ingest API is some nine round trips, a wall refresh
a cache read), and while one thread waits another runs. More threads than the 5 pooled
connections a process keeps (data/db.py) would open and close a connection for every
request beyond them, and only wait longer for the interpreter lock.
"""
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8050')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
preload_app = True
timeout = 60
accesslog = "-"


def post_fork(server, worker):
    from data import db
    from data.wall import ahead

    db.dispose_all()
    # Each worker wakes before every snapshot boundary; one of them computes ahead of it.
    ahead.start(server.app.wsgi())
