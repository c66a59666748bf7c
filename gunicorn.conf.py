"""Production serving: `gunicorn 'app:create_server()'` reads this file from the project root.

The app is built once in the master (--preload) and forked; each worker then drops any
database connections it inherited, so no two processes share a socket.
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

    db.dispose_all()
