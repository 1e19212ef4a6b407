#!/usr/bin/env python3
"""A node whose network goes away under a live srt-graph run (issue 27), on the peer cluster: each node in
a network namespace of its own, as separate machines are, with pyxis containers.

    bash benches/peer/node-loss.sh [N]     # sets up, brings up 5 nodes, runs this N times (default 1)

Each time: the peer recipe (4 nodes) submitted; once its benchmark runs, the last node of the job has its
network cut (`ip link set eth0 down` in its namespace: a dead NIC, as far as every other node can tell).
Measured and checked:
  - cut → the journal's `node_lost` (target ≤ 10 s), and what the run said of it;
  - cut → the orchestrator ended (nothing waits on the dead node without a bound);
  - the processes left on the other nodes when the job has ended (must be 0);
  - the network back: the node's own processes gone once its slurmd hears the job ended;
  - `srt-graph submit --resume` (a job with `--exclude` for the lost node) → the run completes, with the
    benchmark points already finished kept;
  - 0 processes and 0 containers left on any node at the end.
Exits non-zero when a check fails; writes every sample to --out.
"""

import json
import os
import re
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.dirname(here)]
import journal  # noqa: E402
from run import (EXPECTED_RESULTS, CLUSTER_NODES, Tool, containers, job_state, leftover_containers,  # noqa: E402
                 netns_pids, parser, sh, wait)


def job_nodes(job):
    listed = sh("squeue", "-h", "-j", job, "-o", "%N").stdout.strip()
    return sh("scontrol", "show", "hostnames", listed).stdout.split() if listed else []


def status_json(a, run_dir):
    out = sh(a.bin, "status", run_dir, "--json")
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"unreadable": out.stdout + out.stderr}


def node_state(node):
    return sh("sinfo", "-h", "-N", "-n", node, "-o", "%T").stdout.strip().lower()


def one(a, i):
    t = Tool("srt-graph", a)
    t.submit(f"netloss{i}")
    if wait(t.benchmarking, a.timeout) is None:
        return {"error": "benchmark never started", "dir": t.dir}
    time.sleep(2.0)
    nodes = job_nodes(t.job)
    victim = nodes[-1]
    k = int(victim.removeprefix("node"))
    others = [n for n in range(1, CLUSTER_NODES + 1) if n != k]
    ns = f"srtg-n{k}"
    t_cut = time.time()
    sh("ip", "-n", ns, "link", "set", "eth0", "down")
    try:
        lost = wait(lambda: next((r for r in journal.read(t.dir) if r.get("event") == "node_lost"), None), 60, 0.1)
        # The orchestrator's end (the job then stays COMPLETING until Slurm hears from the dead node).
        end = wait(lambda: next((r for r in journal.read(t.dir) if r.get("event") == "run_finished"), None), a.timeout, 0.1)
        t_end = end["t"] if end else None
        # Only the batch script's own end is left on the other nodes.
        wait(lambda: job_state(t.job) in ("ENDED", "COMPLETING"), 60, 0.1)
        time.sleep(2.0)
        # The other nodes: nothing of the run may be left there.
        others_left = [c for _, c in netns_pids(others)]
        st = status_json(a, t.dir)
    finally:
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    # slurmctld sets a node it stopped hearing from DOWN; an admin resumes it once it is back.
    wait(lambda: "*" not in node_state(victim), 120, 1.0)
    if "down" in node_state(victim):
        sh("scontrol", "update", f"nodename={victim}", "state=resume")
    wait(lambda: node_state(victim).startswith("idle"), 120, 1.0)
    victim_gone = wait(lambda: not netns_pids([k]), 60, 0.5)
    wait(lambda: job_state(t.job) == "ENDED", 120, 0.5)
    before = len(t.results())
    t_resume = time.time()
    out = sh(a.bin, "submit", "--resume", t.dir)
    m = re.match(r"\s*(\d+)", out.stdout)
    if not m:
        return {"error": f"submit --resume failed: {out.stdout} {out.stderr}", "dir": t.dir}
    job = m.group(1)
    excluded = sh("scontrol", "show", "job", job).stdout
    wait(lambda: job_state(job) == "ENDED", a.timeout, 0.5)
    st2 = status_json(a, t.dir)
    wait(lambda: not netns_pids(), 60)
    return {
        "dir": t.dir, "job": t.job, "victim": victim, "cut_at": t_cut,
        "cut_to_node_lost_s": (lost["t"] - t_cut) if lost else None,
        "node_lost": lost,
        "cut_to_orchestrator_end_s": (t_end - t_cut) if t_end else None,
        "failure": st.get("failure"), "status": st.get("finished"),
        "others_left_at_job_end": others_left[:5], "victim_cleared_after_network_back": bool(victim_gone),
        "resume_job": job, "resume_excluded": re.search(r"ExcNodeList=(\S+)", excluded).group(1) if "ExcNodeList=" in excluded else None,
        "results_kept": before, "resume_status": st2.get("finished"), "resume_s": time.time() - t_resume,
        "results_after_resume": len(t.results()),
        "left_at_end": [c for _, c in netns_pids()][:5], "containers_at_end": containers(),
        "containers_left": leftover_containers(),
    }


def check(r):
    bad = []
    if r.get("error"):
        return [r["error"]]
    if r["cut_to_node_lost_s"] is None or r["cut_to_node_lost_s"] > 30:
        bad.append(f"node loss not seen within 30 s ({r['cut_to_node_lost_s']})")
    if not (r["failure"] or "").startswith(f"node {r['victim']} lost"):
        bad.append(f"the run's failure does not name the lost node: {r['failure']!r}")
    if r["others_left_at_job_end"]:
        bad.append(f"left on the other nodes at the job's end: {r['others_left_at_job_end']}")
    if r["resume_excluded"] != r["victim"]:
        bad.append(f"the resume job does not exclude {r['victim']}: {r['resume_excluded']}")
    if r["resume_status"] != "succeeded" or r["results_after_resume"] < EXPECTED_RESULTS:
        bad.append(f"resume did not complete: {r['resume_status']}, {r['results_after_resume']} results")
    # The lost node's container cannot be removed while it is lost (the run says so, naming it).
    elsewhere = [c for c in r["containers_at_end"] if not c.startswith(r["victim"] + "/")]
    if r["left_at_end"] or elsewhere:
        bad.append(f"left at the end: {r['left_at_end']}, containers {elsewhere}")
    return bad


def main():
    p = parser(rounds=1, timeout=600)
    a = p.parse_args()
    samples, failed = [], []
    for i in range(a.n):
        r = one(a, i)
        samples.append(r)
        with open(a.out, "w") as f:
            json.dump(samples, f, indent=2)
        bad = check(r)
        failed += bad
        print(json.dumps({k: v for k, v in r.items() if k != "node_lost"}), flush=True)
        for b in bad:
            print(f"FAILED: {b}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
