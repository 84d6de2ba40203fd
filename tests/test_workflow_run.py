"""`sdoc run` clears a Snakemake lock only when no process of a run works in the directory."""

import subprocess
import sys
import time

import pytest

from sdoc_model.workflow_run import (
    WorkflowRunningError,
    clear_stale_lock,
    is_workflow_arg,
    run,
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


def test_a_cluster_run_keeps_its_lock(tmp_path, capsys, monkeypatch):
    # Jobs of an executor run elsewhere: the lock stays, and exec is never reached.
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("x")
    monkeypatch.setattr("os.execv", lambda *args: pytest.fail("exec'd"), raising=True)
    monkeypatch.setattr(
        "sdoc_model.workflow_run.clear_stale_lock", lambda *a: pytest.fail("unlocked")
    )
    with pytest.raises(pytest.fail.Exception, match="exec'd"):
        run(["-d", str(tmp_path), "--profile", "workflow/profiles/slurm"])
    assert "the lock is kept" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "counted"),
    [
        (["python", "-m", "snakemake", "--cores", "2"], True),
        (["/venv/bin/snakemake", "--cores", "2"], True),
        (["python", "/w/.snakemake/scripts/tmpab.train.py"], True),
        (["python", "-m", "torch.distributed.run", "-m", "sdoc_model.train"], True),
        (["tail", "-f", ".snakemake/log/run.snakemake.log"], False),
        (["vim", "Snakefile"], False),
    ],
)
def test_what_counts_as_a_process_of_the_run(argv, counted):
    assert any(map(is_workflow_arg, argv)) == counted
