"""Container health check of the web service: GET a URL, healthy on HTTP 200 (python only, no curl).

    python /app/docker/healthcheck.py http://127.0.0.1:8000/healthz

The default page reads the database, so a healthy web container is one that can serve a real request.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def check(url: str, timeout_s: float = 5.0) -> str | None:
    """None when ``url`` answers 200, otherwise a sentence saying what was wrong."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "healthcheck"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if response.status != 200:
                return f"{url} answered HTTP {response.status}"
    except urllib.error.HTTPError as err:
        return f"{url} answered HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return f"{url} is unreachable: {err}"
    return None


if __name__ == "__main__":
    problem = check(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
