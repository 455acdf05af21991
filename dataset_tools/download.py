"""Fetching item images: bounded concurrency, timeouts, retries, resumable, with a progress bar.

A file is written to ``DEST.part`` and renamed when complete and readable as an image, so an
interrupted run leaves no file that looks finished, and a re-run skips the finished ones.
"""

import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm


@dataclass
class DownloadReport:
    fetched: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)  # (url, dest, reason)

    def summary(self):
        return (f"images: {self.fetched} fetched, {self.skipped} already there, "
                f"{len(self.failed)} failed")


def _is_image(path):
    try:
        from PIL import Image

        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # PIL raises many types for a broken file
        return False


def fetch(url, dest, timeout=10.0, retries=3, backoff=0.5):
    """Download one file; returns ``None`` on success, else the reason it failed."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    reason = "no attempt"
    for attempt in range(retries + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "recbole-tpad/0.1"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
            if not _is_image(part):
                part.unlink(missing_ok=True)
                return "not an image"
            os.replace(part, dest)
            return None
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code}"
            if error.code < 500 and error.code != 429:  # a missing image will stay missing
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        part.unlink(missing_ok=True)
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    part.unlink(missing_ok=True)
    return reason


def download_all(jobs, workers=8, timeout=10.0, retries=3, backoff=0.5, progress=True):
    """Fetch ``[(url, dest), ...]`` with at most ``workers`` requests in flight."""
    report = DownloadReport()
    todo = []
    for url, dest in jobs:
        if Path(dest).is_file():
            report.skipped += 1
        else:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            todo.append((url, dest))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(fetch, url, dest, timeout, retries, backoff): (url, dest)
                   for url, dest in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="downloading images",
                           unit="img", disable=not progress):
            url, dest = futures[future]
            reason = future.result()
            if reason is None:
                report.fetched += 1
            else:
                report.failed.append((url, str(dest), reason))
    return report
