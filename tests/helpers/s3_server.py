"""An S3-compatible server on loopback for tests: moto's server in its own process.

moto (``moto[server]``, a dev dependency) is an emulation of the S3 API, not a storage system:
it speaks S3's HTTP protocol (SigV4-signed requests, PUT with Content-MD5, ranged GET, HEAD,
error codes) the way the archive's client uses it, and keeps objects in memory. The archive code
talks to it over a real socket with boto3, exactly as it would to MinIO or a cloud bucket.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from collector.store.archive_targets import S3Settings
from tests.helpers.ports import free_port

ACCESS_KEY = "kuzot-test-key"
SECRET_KEY = "kuzot-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def settings(self, url: str, cache_bytes: int = 64 * 1024 * 1024) -> S3Settings:
        return S3Settings(url, endpoint=self.endpoint, region=REGION,
                          access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                          cache_bytes=cache_bytes)

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, stopped at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
