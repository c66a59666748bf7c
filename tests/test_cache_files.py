"""The file cache (CACHE_DIR, without REDIS_URL) as it is started again and again: every file
in its folder is JSON, its count of files survives a restart, and it warns of no entry of its
own (data/cache.py)."""
from __future__ import annotations

import json
import logging

from flask import Flask

from data import cache


def _started(monkeypatch, tmp_path) -> Flask:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    server = Flask("file-cache")
    cache.init_app(server)
    return server


def test_the_file_cache_counts_its_files_across_a_restart_and_reads_every_one(monkeypatch, tmp_path, caplog):
    with _started(monkeypatch, tmp_path).app_context():
        for i in range(5):
            assert cache.cached(f"entry-{i}", lambda i=i: {"n": i}) == {"n": i}
    with caplog.at_level(logging.WARNING), _started(monkeypatch, tmp_path).app_context():
        files = cache.cache.cache
        assert files._file_count == 5            # the threshold counts what the folder holds
        assert cache.cached("entry-5", lambda: {"n": 5}) == {"n": 5}
        assert files._file_count == 6
        assert [cache.cached(f"entry-{i}", lambda: None) for i in range(6)] == [{"n": i} for i in range(6)]
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    for path in (tmp_path / "cache").iterdir():
        json.loads(path.read_bytes()[4:])         # after its four bytes of expiry


def test_an_entry_in_plain_json_but_not_in_the_caches_form_is_computed_anew(monkeypatch, tmp_path, caplog):
    """Whoever can write the folder can write JSON the cache did not: a value without when and
    where it was computed is a miss, not a figure on the wall."""
    with caplog.at_level(logging.WARNING), _started(monkeypatch, tmp_path).app_context():
        cache.cache.set("snapshot", {"open": 0})
        assert cache.cached("snapshot", lambda: {"open": 7}) == {"open": 7}
        assert cache.cached("snapshot", lambda: {"open": 8}) == {"open": 7}
    assert {r.getMessage() for r in caplog.records} == {"a cache entry that is not FloorLink's was ignored"}
