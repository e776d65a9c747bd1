"""Jobs and commits per step, from an event log and Delta logs written as Spark and Delta
write them (the fields the profile reads, with their real names)."""

from __future__ import annotations

import json

from riskcontrol.core import profiling


def _event_log(path, events):
    path.write_text("\n".join(json.dumps(e) for e in events) + '\n{"Event": "cut', "utf-8")


def _job(job_id, submitted, completed, stages):
    return [
        {"Event": "SparkListenerJobStart", "Job ID": job_id, "Submission Time": submitted,
         "Stage IDs": stages},
        {"Event": "SparkListenerJobEnd", "Job ID": job_id, "Completion Time": completed},
    ]  # fmt: skip


def _task(stage, ms):
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage,
            "Task Metrics": {"Executor Run Time": ms}}  # fmt: skip


def _commit(folder, version, at_ms, operation):
    log = folder / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    lines = [{"commitInfo": {"timestamp": at_ms, "operation": operation}}, {"add": {"path": "p"}}]
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(x) for x in lines), "utf-8")


def test_jobs_and_commits_fall_in_the_step_that_ran_them(tmp_path):
    log = tmp_path / "eventlog"
    log.mkdir()
    # job 0: stages 0 (2 tasks) and 1 (skipped: no task ran); job 1 overlaps job 0;
    # job 2 starts in step b and ends after it; a last line cut short is ignored
    _event_log(
        log / "local-1",
        [
            *_job(0, 10_000, 12_000, [0, 1]),
            _task(0, 700),
            _task(0, 800),
            *_job(1, 11_000, 13_000, [2]),
            _task(2, 1500),
            *_job(2, 19_000, 25_000, [3]),
            _task(3, 4000),
        ],
    )
    lake = tmp_path / "lake"
    _commit(lake / "bronze" / "t", 0, 12_500, "WRITE")
    _commit(lake / "bronze" / "t", 1, 14_000, "MERGE")
    _commit(lake / "ops" / "manifest", 0, 14_500, "MERGE")
    _commit(lake / "ops" / "manifest", 1, 21_000, "MERGE")

    jobs = profiling.read_event_log(log)
    assert [(j.job_id, j.stages, j.tasks, j.task_ms) for j in jobs] == [
        (0, 1, 2, 1500),
        (1, 1, 1, 1500),
        (2, 1, 1, 4000),
    ]
    commits = profiling.delta_commits(lake)
    assert [(c.table, c.version, c.operation) for c in commits] == [
        ("bronze.t", 0, "WRITE"),
        ("bronze.t", 1, "MERGE"),
        ("ops.manifest", 0, "MERGE"),
        ("ops.manifest", 1, "MERGE"),
    ]
    a, b = profiling.breakdown([("a", 9.0, 15.0), ("b", 15.0, 20.0)], jobs, commits)
    assert (a.jobs, a.tasks, a.task_seconds, a.busy_seconds, a.commits) == (2, 3, 3.0, 3.0, 3)
    assert a.idle_seconds == 3.0
    assert a.operations == {"MERGE": 2, "WRITE": 1}
    # job 2 runs on past the end of b: only its second inside b counts as busy
    assert (b.jobs, b.tasks, b.busy_seconds, b.idle_seconds, b.commits) == (1, 1, 1.0, 4.0, 0)

    table = profiling.format_breakdown([a, b]).splitlines()
    assert table[1].split() == ["a", "6.0", "2", "3", "3.0", "3.0", "3.0", "3", "MERGE", "2,",
                                "WRITE", "1"]  # fmt: skip
    assert table[-1].split() == ["total", "11.0", "3", "4", "7.0", "4.0", "7.0", "3"]


def test_event_log_conf_names_a_folder_spark_can_write(tmp_path):
    conf = profiling.event_log_conf(tmp_path / "ev")
    assert conf["spark.eventLog.enabled"] == "true"
    assert conf["spark.eventLog.dir"] == (tmp_path / "ev").resolve().as_uri()
    assert (tmp_path / "ev").is_dir()


def test_rolled_event_logs_are_read_from_their_folder(tmp_path):
    rolled = tmp_path / "eventlog" / "eventlog_v2_local-1"
    rolled.mkdir(parents=True)
    _event_log(rolled / "events_1_local-1", [*_job(0, 1_000, 2_000, [0]), _task(0, 300)])
    _event_log(rolled / "events_2_local-1", [*_job(1, 3_000, 4_000, [1]), _task(1, 200)])
    (rolled / "appstatus_local-1").write_text("", "utf-8")
    (rolled / ".appstatus_local-1.crc").write_bytes(b"\x00crc")
    jobs = profiling.read_event_log(tmp_path / "eventlog")
    assert [(j.job_id, j.tasks, j.task_ms) for j in jobs] == [(0, 1, 300), (1, 1, 200)]
