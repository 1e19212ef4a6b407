#!/usr/bin/env python3
"""srtctl and srt-graph side by side on the same four Slurm nodes, with the same recipe and mock workers.

    bash benches/peer/run.sh [N]        # sets up (setup.sh), brings up the peer cluster, runs this

Per round and tool (alternating srtctl, srt-graph), four runs of benches/peer/peer.yaml:
  happy   submit → first successful request through nginx; submit → every result file written;
          the orchestrator's CPU time; the results themselves (to check both measured the same mock)
  cancel  after the first successful request, `scancel` → no process of the run left on any node
  worker  a decode worker killed (SIGKILL) during the benchmark → the job ends; what the tool said
  orch    the orchestrator killed (SIGKILL) during the benchmark → what is left running 10 s later, and
          what it takes to get results: srtctl: submit again; srt-graph: `srt-graph resume` in a new
          allocation (the old one ends with its batch script)
Prints medians and the ratio srt-graph / srtctl, and writes every sample to the JSON named by --out.
"""

import argparse
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

NODES = int(os.environ.get("PEER_NODES", "4"))  # a job's (run.sh scales the recipe to it)
# The cluster's (node-loss.sh brings up one node more than a job takes, to resume without the lost one).
CLUSTER_NODES = int(os.environ.get("SLURM_NODES", str(NODES)))
PUBLIC = "http://10.78.0.1:8000"
EXPECTED_RESULTS = 2  # concurrencies 4 and 16


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def netns_pids(nodes=None):
    """Every process in the peer nodes' namespaces (or those of `nodes`, numbers K of nodeK) but the
    slurmd daemons (and pids that vanished)."""
    pids = []
    for k in nodes or range(1, CLUSTER_NODES + 1):
        out = sh("ip", "netns", "pids", f"srtg-n{k}").stdout.split()
        for p in out:
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if re.match(r"^\S*slurmd ", cmd):
                continue
            pids.append((int(p), cmd.strip()))
    return pids


def first_success(model):
    body = json.dumps({"model": model, "prompt": "hello", "max_tokens": 4}).encode()
    req = urllib.request.Request(PUBLIC + "/v1/completions", data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def job_state(job):
    out = sh("squeue", "-h", "-j", job, "-o", "%T").stdout.strip()
    return out or "ENDED"


def cpu_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


class Tool:
    def __init__(self, name, a):
        self.name, self.a = name, a

    def orchestrator(self):
        pat = "srtctl.cli.do_sweep" if self.name == "srtctl" else " run "
        for pid, cmd in netns_pids():
            if pat in cmd and ("srt-graph" in cmd or self.name == "srtctl") and "srun" not in cmd:
                return pid
        return None

    def submit(self, tag):
        a = self.a
        if self.name == "srtctl":
            out = sh(a.srtctl, "apply", "-f", a.recipe, "--json", "-y", "-o", a.outputs, cwd=a.src)
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    self.job = str(d["slurm_job_id"])
                    self.dir = os.path.join(a.outputs, self.job, "logs")
                    return
            raise SystemExit(f"srtctl apply failed:\n{out.stdout}\n{out.stderr}")
        self.dir = os.path.join(a.work, f"srt-graph-{tag}-{time.time_ns()}")
        out = sh(a.bin, "submit", a.recipe, "--cluster-config", os.path.join(a.src, "srtslurm.yaml"),
                 "--mock-workers", "--timing", "fixed", "--run-dir", self.dir, "--", "--grace", "5s")
        m = re.search(r"(\d+)", out.stdout)
        if out.returncode != 0 or not m:
            raise SystemExit(f"srt-graph submit failed:\n{out.stdout}\n{out.stderr}")
        self.job = m.group(1)

    def benchmarking(self):
        """Whether the benchmark client has started (srtctl says so in its log; srt-graph in its journal)."""
        try:
            if self.name == "srtctl":
                return "Running SA-Bench benchmark" in self.log()
            return '"step":"sa-bench/' in open(os.path.join(self.dir, "journal.jsonl")).read()
        except OSError:
            return False

    def results(self):
        return sorted(glob.glob(os.path.join(self.dir, "sa-bench_*", "results_*.json")))

    def log(self):
        if self.name == "srtctl":
            return open(os.path.join(self.dir, f"sweep_{self.job}.log"), errors="replace").read()
        files = glob.glob(os.path.join(self.dir, "slurm-*.out")) + glob.glob(os.path.join(self.dir, "*.out"))
        return "".join(open(f, errors="replace").read() for f in sorted(set(files)))


def wait(cond, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def happy(t, a):
    t0 = time.monotonic()
    t.submit("happy")
    cpu, first, done = 0.0, None, None
    while time.monotonic() - t0 < a.timeout:
        now = time.monotonic() - t0
        pid = t.orchestrator()
        if pid:
            cpu = max(cpu, cpu_of(pid) or 0.0)
        if first is None and first_success("peer-model"):
            first = now
        if done is None and len(t.results()) >= EXPECTED_RESULTS:
            done = now
        if job_state(t.job) == "ENDED":
            break
        time.sleep(0.2)
    ended = time.monotonic() - t0
    res = {os.path.basename(f): json.load(open(f)) for f in t.results()}
    return {"first_request_s": first, "results_s": done, "job_end_s": ended, "orchestrator_cpu_s": cpu,
            "results": {k: {x: v.get(x) for x in ("max_concurrency", "output_throughput", "median_ttft_ms",
                                                   "median_tpot_ms", "completed")} for k, v in res.items()}}


def cancel(t, a):
    t0 = time.monotonic()
    t.submit("cancel")
    if wait(lambda: first_success("peer-model"), a.timeout) is None:
        return {"error": "never served"}
    tc = time.monotonic()
    sh("scancel", t.job)
    gone = wait(lambda: not netns_pids() and job_state(t.job) == "ENDED", 120, 0.05)
    return {"cancel_to_gone_s": (time.monotonic() - tc) if gone else None,
            "left": [c for _, c in netns_pids()][:5], "submit_to_first_s": tc - t0}


def decode_worker():
    for pid, cmd in netns_pids():
        if "mock-worker" in cmd and "decode" in cmd and "srun" not in cmd and "bash" not in cmd.split()[0]:
            return pid
    return None


def worker_kill(t, a):
    t.submit("worker")
    if wait(t.benchmarking, a.timeout) is None:
        return {"error": "benchmark never started"}
    time.sleep(2.0)
    pid = decode_worker()
    if not pid:
        return {"error": "no decode worker found"}
    tk = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait(lambda: job_state(t.job) == "ENDED", a.timeout)
    ended = time.monotonic() - tk
    gone = wait(lambda: not netns_pids(), 60, 0.1)
    log = t.log()
    said = [l.strip() for l in log.splitlines() if re.search(r"(?i)(died|exited|failed|error)", l)][:3]
    return {"kill_to_job_end_s": ended, "all_gone": bool(gone), "tool_said": said}


def orchestrator_kill(t, a):
    t.submit("orch")
    if wait(t.benchmarking, a.timeout) is None:
        return {"error": "benchmark never started"}
    time.sleep(2.0)
    pid = t.orchestrator()
    if not pid:
        return {"error": "orchestrator not found"}
    tk = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    time.sleep(10)
    left = [c for _, c in netns_pids()]
    wait(lambda: job_state(t.job) == "ENDED", 120)
    t1 = time.monotonic()
    if t.name == "srtctl":
        # No resume: the whole recipe again.
        r = happy(t, a)
        took = r["results_s"]
        how = "srtctl apply again (no resume)"
    else:
        out = sh("sbatch", "--parsable", f"--nodes={NODES}", "--output", os.path.join(t.dir, "resume-%j.out"),
                 "--wrap", f"{a.bin} resume {t.dir}")
        job = out.stdout.strip().split(";")[0]
        before = len(t.results())
        t.job = job
        # Until every result is written, as for srtctl (the job then still tears down).
        done = wait(lambda: len(t.results()) >= EXPECTED_RESULTS or job_state(job) == "ENDED", a.timeout)
        took = time.monotonic() - t1 if done and len(t.results()) >= EXPECTED_RESULTS else None
        wait(lambda: job_state(job) == "ENDED", a.timeout)
        how = f"srt-graph resume in a new allocation ({before} of {EXPECTED_RESULTS} points kept)"
    return {"left_10s_after_kill": len(left), "left_sample": left[:4], "to_results_s": took, "how": how,
            "kill_to_old_job_end_s": t1 - tk}


def enroot_root():
    return os.path.join(os.environ.get("SLURM_ENV", "/tmp/srt-graph-peer-slurm"), "enroot")


def containers():
    """pyxis container file systems on the nodes (named or per-step), as `nodeK/pyxis_…`."""
    root = enroot_root()
    return sorted(os.path.relpath(d, root).replace("/data/", "/", 1)
                  for d in glob.glob(os.path.join(root, "node*", "data", "pyxis_*")))


def leftover_containers():
    """pyxis containers still on the nodes, removed after counting: what a tool leaves behind fills the
    nodes' disks."""
    left = containers()
    for c in left:
        node, name = c.split("/", 1)
        subprocess.run(["rm", "-rf", os.path.join(enroot_root(), node, "data", name)])
    return len(left)


def clear_nodes(job):
    """What a run left on the nodes a minute after it ended, then ended: its job cancelled and its
    processes killed, so that the next run does not meet them (round 3 of 2026-12-07: srtctl's nginx, left
    by its worker-kill run, held :8000 and failed the next three runs)."""
    left = netns_pids()
    if left:
        if job:
            sh("scancel", str(job))
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait(lambda: not netns_pids(), 30)
    return [c for _, c in left][:5]


def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def parser(rounds, timeout):
    """The arguments run.sh and node-loss.sh pass: what setup.sh prepared, and where samples go."""
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=rounds)
    p.add_argument("--src", required=True)
    p.add_argument("--bin", required=True)
    p.add_argument("--recipe", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=timeout)
    return p


def main():
    p = parser(rounds=3, timeout=900)
    p.add_argument("--only", default="happy,cancel,worker,orch")
    a = p.parse_args()
    a.srtctl = os.path.join(a.src, ".venv-compute", "bin", "srtctl")
    # Per invocation: a cluster brought up afresh numbers its jobs from 1 again, and srtctl writes
    # `<outputs>/<job id>/`, so an earlier invocation's results would be read as this one's.
    a.outputs = os.path.join(a.work, "srtctl-outputs", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(a.outputs, exist_ok=True)
    runs = {"happy": happy, "cancel": cancel, "worker": worker_kill, "orch": orchestrator_kill}
    samples = {"srtctl": {}, "srt-graph": {}}
    for i in range(a.n):
        for kind in a.only.split(","):
            for name in ("srtctl", "srt-graph"):
                t = Tool(name, a)
                r = runs[kind](t, a)
                r["job"], r["dir"] = getattr(t, "job", None), getattr(t, "dir", None)
                wait(lambda: not netns_pids(), 60)
                r["left_60s_after"] = clear_nodes(r["job"])
                r["containers_left"] = leftover_containers()
                samples[name].setdefault(kind, []).append(r)
                print(f"round {i + 1} {kind:<7} {name:<10} {json.dumps({k: v for k, v in r.items() if k != 'results'})}", flush=True)
                # Every sample is kept as it comes: a round cut short still counts.
                with open(a.out, "w") as f:
                    json.dump(samples, f, indent=2)
                wait(lambda: not netns_pids(), 60)
    rows = [("happy", "first_request_s", "submit → first successful request (s)"),
            ("happy", "results_s", "submit → all results written (s)"),
            ("happy", "job_end_s", "submit → job ended, teardown done (s)"),
            ("happy", "orchestrator_cpu_s", "orchestrator CPU time (s)"),
            ("cancel", "cancel_to_gone_s", "scancel → every process gone (s)"),
            ("worker", "kill_to_job_end_s", "decode worker killed → job ends (s)"),
            ("orch", "left_10s_after_kill", "orchestrator kill -9 → processes left after 10 s"),
            ("orch", "to_results_s", "… then → results (s)")]
    rows_left = [(k, "containers_left", f"pyxis containers left on the nodes after `{k}` runs") for k in a.only.split(",")]
    print(f"\n| measure (median of {a.n}) | srtctl | srt-graph | srt-graph / srtctl |\n|---|---|---|---|")
    for kind, key, label in rows + rows_left:
        x = median([r.get(key) for r in samples["srtctl"].get(kind, [])])
        y = median([r.get(key) for r in samples["srt-graph"].get(kind, [])])
        ratio = f"{y / x:.2f}×" if x and y is not None else "–"
        fx = "–" if x is None else f"{x:.1f}"
        fy = "–" if y is None else f"{y:.1f}"
        print(f"| {label} | {fx} | {fy} | {ratio} |")
    for name in samples:
        for r in samples[name].get("happy", []):
            tput = {v["max_concurrency"]: round(v["output_throughput"] or 0, 1) for v in r["results"].values()}
            print(f"{name} output tok/s by concurrency: {tput}")


if __name__ == "__main__":
    sys.exit(main())
