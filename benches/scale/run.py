"""One size of benches/scale (see run.sh): the recipe run in a fresh allocation of N nodes, once with the
node agents and once with one srun per process, each measured from the outside and from its journal.

Per run: allocation → all workers started (the last worker's `spawned` in the journal, from when
salloc was started: this idle cluster grants the allocation at once), → healthy (the
health gate's end), teardown (the last benchmark's end → the run's end), the orchestrator's CPU time
(itself and the children it reaped, from GNU time; its own share sampled from /proc) and peak memory (VmHWM), and the most `srun` processes
alive at once (sampled every 100 ms). `--report FILE` prints the table of every size in FILE."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import journal  # noqa: E402


def proc_children(pid):
    # Each thread lists the children it forked: srun is started from the runtime's worker threads.
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in proc_children(p):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_and_hwm(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        own = sum(int(x) for x in fields[11:13]) / tck
        cpu = own + sum(int(x) for x in fields[13:15]) / tck
        hwm = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
        return cpu, hwm, own
    except (OSError, IndexError, ValueError):
        return None


def one_run(a, mode):
    run_dir = tempfile.mkdtemp(prefix=f"scale-{a.nodes}-{mode}-", dir=a.work)
    recipe = os.path.join(run_dir, "scale.yaml")
    open(recipe, "w").write(open(a.recipe).read().replace("@NODES@", str(a.nodes)))
    env = dict(os.environ)
    env["SRT_GRAPH_NODE_AGENT"] = "1" if mode == "agents" else "0"
    # salloc runs the orchestrator here, in the allocation, as the batch script would on node 1.
    # CPU from GNU time: the orchestrator and every child it reaped, taken when it exits (a sampler
    # would miss the sruns reaped last).
    times = os.path.join(run_dir, "time.txt")
    cmd = ["salloc", "-N", str(a.nodes), "--", "/usr/bin/time", "-f", "%U %S", "-o", times, a.bin, "run", recipe, "--executor", "slurm",
           "--run-dir", os.path.join(run_dir, "run"), "--grace", "5s", "-q"]
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(run_dir + "/out.log", "w"))
    peak = {"cpu": 0.0, "own": 0.0, "hwm": 0, "sruns": 0}
    done = threading.Event()

    def sample():
        orch = None
        while not done.is_set():
            if orch is None:
                orch = next((c for c in descendants(p.pid)
                             if " run " in cmdline(c) and not cmdline(c).startswith("/usr/bin/time")), None)
            if orch is not None:
                got = cpu_and_hwm(orch)
                if got:
                    peak["cpu"] = max(peak["cpu"], got[0])
                    peak["hwm"] = max(peak["hwm"], got[1])
                    peak["own"] = max(peak["own"], got[2])
                sruns = sum(1 for c in descendants(orch) if cmdline(c).startswith("srun "))
                peak["sruns"] = max(peak["sruns"], sruns)
            time.sleep(0.1)

    th = threading.Thread(target=sample)
    th.start()
    rc = p.wait()
    done.set()
    th.join()
    try:
        user, system = open(times).read().split()[-2:]
        peak["cpu"] = float(user) + float(system)
    except (OSError, ValueError):
        sys.exit(f"no CPU figure from /usr/bin/time in {times}")
    j = journal.read(os.path.join(run_dir, "run"))
    if rc != 0 or not j:
        sys.exit(f"{mode} at {a.nodes} nodes failed (rc {rc}): see {run_dir}/out.log")
    start = t0  # salloc started: the allocation is granted at once on this idle cluster
    workers = [r["t"] for r in j if r.get("event") == "spawned" and r.get("step", "").startswith("agg-")]
    healthy = next(r["t"] for r in j if r.get("event") == "step_finished" and r.get("step") == "wait-healthy")
    bench_end = max(r["t"] for r in j if r.get("event") == "step_finished" and r.get("step", "").startswith("sa-bench/"))
    end = next(r["t"] for r in reversed(j) if r.get("event") == "run_finished")
    return {
        "workers_started_s": max(workers) - start,
        "healthy_s": healthy - start,
        "teardown_s": end - bench_end,
        "orchestrator_cpu_s": peak["cpu"],
        "orchestrator_own_cpu_s": peak["own"],
        "orchestrator_peak_mib": peak["hwm"] / 2**20,
        "sruns_alive_max": peak["sruns"],
        "wall_s": time.time() - t0,
    }


def srun_floor(a):
    """What no orchestrator can beat here: from salloc's start to one process started and ended on
    every node by a single srun (the lower bound of "allocation → all workers started"). Median of 3."""
    took = []
    for _ in range(3):
        t0 = time.time()
        subprocess.run(["salloc", "-N", str(a.nodes), "--", "srun", f"--nodes={a.nodes}", "--ntasks-per-node=1", "true"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took.append(time.time() - t0)
    return sorted(took)[1]


ROWS = [
    ("workers_started_s", "allocation → all workers started (s)", "{:.1f}"),
    ("healthy_s", "allocation → healthy (s)", "{:.1f}"),
    ("teardown_s", "teardown (s)", "{:.1f}"),
    ("orchestrator_cpu_s", "orchestrator CPU, with reaped children (s)", "{:.2f}"),
    ("orchestrator_own_cpu_s", "… of which its own (s)", "{:.2f}"),
    ("orchestrator_peak_mib", "orchestrator peak memory (MiB)", "{:.1f}"),
    ("sruns_alive_max", "srun processes alive at once (each srun forks a helper: 2 per job step)", "{:.0f}"),
]


def report(path):
    data = json.load(open(path))
    sizes = sorted(data, key=int)
    print(f"benches/scale ({time.strftime('%Y-%m-%d', time.gmtime(os.path.getmtime(path)))}): "
          "agents / one srun per process, per size; growth from the smallest size")
    head = "| measure | " + " | ".join(f"{n} nodes" for n in sizes) + f" | {sizes[0]} → {sizes[-1]} |"
    print(head)
    print("|---" * (len(sizes) + 2) + "|")
    for key, label, fmt in ROWS:
        cells = []
        for n in sizes:
            ag = data[n]["agents"][key]
            ps = data[n].get("per-step", {}).get(key)
            cells.append(fmt.format(ag) + (f" / {fmt.format(ps)}" if ps is not None else ""))
        first, last = data[sizes[0]]["agents"][key], data[sizes[-1]]["agents"][key]
        growth = f"{last / first:.1f}×" if first else "–"
        print(f"| {label} | " + " | ".join(cells) + f" | {growth} (agents) |")
    floors = [data[n].get("floor", {}).get("srun_all_nodes_s") for n in sizes]
    if all(f is not None for f in floors):
        cells = [f"{f:.2f}" for f in floors]
        print("| floor: allocation → one srun's process on every node (s) | " + " | ".join(cells)
              + f" | {floors[-1] / floors[0]:.1f}× |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--recipe")
    ap.add_argument("--work")
    ap.add_argument("--out")
    ap.add_argument("--report")
    ap.add_argument("--modes", default="agents,per-step", help="which of agents,per-step to run")
    a = ap.parse_args()
    if a.report:
        return report(a.report)
    data = json.load(open(a.out)) if os.path.exists(a.out) else {}
    row = {}
    for mode in a.modes.split(","):
        row[mode] = one_run(a, mode)
        print(f"{a.nodes:>3} nodes {mode:<9} {json.dumps(row[mode])}", flush=True)
    row["floor"] = {"srun_all_nodes_s": srun_floor(a)}
    print(f"{a.nodes:>3} nodes floor     {json.dumps(row['floor'])}", flush=True)
    data[str(a.nodes)] = row
    json.dump(data, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
