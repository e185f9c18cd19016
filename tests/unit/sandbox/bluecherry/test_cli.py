"""`bcsync sandbox bluecherry` as a real process: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
BCSYNC = [sys.executable, "-c", "from workers.entry import main; main()", "sandbox", "bluecherry"]


@pytest.mark.integration
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_cleanly_on_a_signal(stop: signal.Signals, tmp_path: Path) -> None:
    options = ["--port", "0", "--customers", "5", "--styles", "2", "--orders", "10", "--key", "k1"]
    command = [*BCSYNC, *options, "--csv-dir", str(tmp_path)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Blue Cherry sandbox listening on http://127.0.0.1:"), line
        url = line.split(" on ")[1].strip()
        response = httpx.get(f"{url}/api/order", headers={"Ocp-Apim-Subscription-Key": "k1"}, timeout=10)
        assert response.status_code == 200 and len(response.json()["data"]["header"]) == 10
        assert httpx.post(f"{url}/_sandbox/csv-drop", timeout=10).status_code == 200
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_refuses_bad_options_clearly() -> None:
    command = [*BCSYNC, "--timezone", "Nowhere/Land"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown time zone 'Nowhere/Land'" in done.stderr


@pytest.mark.integration
def test_cli_serves_a_tenant_dialect() -> None:
    command = [*BCSYNC, "--port", "0", "--customers", "3", "--styles", "1", "--orders", "4", "--key", "k1",
               "--dialect", "ibmi"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" on ")[1].strip()
        headers = {"Ocp-Apim-Subscription-Key": "k1"}
        orders = httpx.get(f"{url}/api/SalesOrder", headers=headers, timeout=10).json()["data"]["header"]
        assert len(orders) == 4 and {"order_no", "order_stat", "chg_stamp"} <= set(orders[0])
        assert httpx.get(f"{url}/api/order", headers=headers, timeout=10).status_code == 404
        assert httpx.get(f"{url}/_sandbox/dump", timeout=10).json()["dialect"] == "ibmi"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_refuses_an_unknown_dialect() -> None:
    done = subprocess.run([*BCSYNC, "--dialect", "as400"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown dialect 'as400' (known: default, ibmi)" in done.stderr
