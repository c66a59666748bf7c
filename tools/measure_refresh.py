"""Measure what one wall screen costs per refresh: server time and bytes on the wire.

Opens a page in headless Chromium against a running server, records every Dash callback
request through the browser's network log for a number of refreshes, and prints, per
callback, the median and p95 of the server's answer time and the bytes received.

    .venv/bin/python -m tools.measure_refresh http://127.0.0.1:8050/ --seconds 60
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from tools.browser import chromium


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def measure(url: str, seconds: float, width: int = 1920, height: int = 1080) -> dict:
    driver = chromium(width, height, performance_log=True)
    try:
        driver.get(url)
        time.sleep(seconds)
        requests, sizes, timings = {}, {}, {}
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                if "_dash-update-component" in params["request"]["url"]:
                    body = json.loads(params["request"].get("postData") or "{}")
                    requests[params["requestId"]] = body.get("output", "?")
            elif message["method"] == "Network.responseReceived":
                timing = params["response"].get("timing")
                if timing:
                    timings[params["requestId"]] = timing["receiveHeadersEnd"] - timing["sendEnd"]
            elif message["method"] == "Network.loadingFinished":
                sizes[params["requestId"]] = params["encodedDataLength"]
        by_output: dict[str, dict[str, list[float]]] = {}
        for request_id, output in requests.items():
            if request_id in sizes and request_id in timings:
                row = by_output.setdefault(output[:60], {"ms": [], "bytes": []})
                row["ms"].append(timings[request_id])
                row["bytes"].append(sizes[request_id])
        return {output: {"count": len(v["ms"]), "median_ms": statistics.median(v["ms"]),
                         "p95_ms": _p95(v["ms"]), "median_bytes": statistics.median(v["bytes"]),
                         "max_bytes": max(v["bytes"]), "first_bytes": v["bytes"][0]}
                for output, v in by_output.items()}
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    results = measure(args.url, args.seconds)
    print(f"{'callback output':60} {'n':>4} {'med ms':>7} {'p95 ms':>7} {'first B':>8} {'med B':>7} {'max B':>7}")
    for output, r in sorted(results.items()):
        print(f"{output:60} {r['count']:>4} {r['median_ms']:>7.1f} {r['p95_ms']:>7.1f} "
              f"{r['first_bytes']:>8} {r['median_bytes']:>7.0f} {r['max_bytes']:>7}")


if __name__ == "__main__":
    main()
