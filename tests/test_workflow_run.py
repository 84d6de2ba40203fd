"""`sdoc run` clears a Snakemake lock only when no process of a run works in the directory."""

import subprocess
import sys
import time

import pytest

from sdoc_model.workflow_run import (
    WorkflowRunningError,
    clear_stale_lock,
    run_processes,
    working_directory,
)


def test_working_directory_is_snakemakes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert working_directory(["--cores", "2"]) == tmp_path.resolve()
    assert working_directory(["-d", "sub", "--cores", "2"]) == (tmp_path / "sub").resolve()
    assert working_directory(["--directory=other"]) == (tmp_path / "other").resolve()


def test_a_live_run_keeps_its_lock(tmp_path):
    # A job script as Snakemake starts them: its command line names .snakemake/scripts/.
    script = tmp_path / ".snakemake" / "scripts" / "tmpjob.train.py"
    script.parent.mkdir(parents=True)
    script.write_text("import time\ntime.sleep(60)\n")
    job = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while job.pid not in run_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run_processes(tmp_path).keys() == {job.pid}
        assert run_processes(tmp_path / "elsewhere") == {}
        with pytest.raises(WorkflowRunningError, match=rf"still working in {tmp_path}.*{job.pid}"):
            clear_stale_lock(tmp_path, [])
    finally:
        job.kill()
        job.wait()
    assert run_processes(tmp_path) == {}
