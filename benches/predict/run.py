#!/usr/bin/env python3
"""Validates srt-graph's performance model against measured silicon.

Takes every row of aiconfigurator-core's `systems/silicon_sample.csv` for GB200, GB300, H100 and H200
with a DeepSeek or Qwen model, builds the equivalent srt-slurm recipe, and compares with the row's
measured TTFT and TPOT:
  * `srt-graph predict` (every row);
  * a simulated run (`srt-graph run --mock-workers --sim-speed N`) through the real sglang-router and
    srt-graph's client, for a sample of the rows (`--sim-rows K`, the smallest deployments first), as
    its deviation from `predict`.

Prints a Markdown table of the median and p90 absolute % error per system x backend x mode.

  python3 benches/predict/run.py [--limit N] [--sim-rows K] [--sim-speed S] [--out results.jsonl]

Needs a built srt-graph (target/release or target/debug) and, for the simulated runs, what
`scripts/test.sh` installs (nginx, python3-venv). Not part of CI: ~1,800 predictions take a few minutes
(each distinct latency table is computed once and cached).
"""

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = {"gb200": ("gb200", 4), "gb300": ("gb300", 4), "h100_sxm": ("h100", 8), "h200_sxm": ("h200", 8)}


def binary():
    for p in (ROOT / "target/release/srt-graph", ROOT / "target/debug/srt-graph"):
        if p.exists():
            return str(p)
    sys.exit("build srt-graph first (cargo build --release)")


def cache_dir():
    if os.environ.get("SRT_GRAPH_CACHE"):
        return Path(os.environ["SRT_GRAPH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srt-graph"


def silicon_csv(bin_path):
    python = cache_dir() / "venv-aiconfigurator-0.12.0/bin/python"
    if not python.exists():
        # `predict` installs the venv the first time.
        subprocess.run([bin_path, "predict", str(ROOT / "recipes/h100-qwen3-8b-sim.yaml")], check=False,
                       capture_output=True)
    out = subprocess.run([str(python), "-c", "import aiconfigurator_core, os; print(os.path.dirname(aiconfigurator_core.__file__))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "systems/silicon_sample.csv"


def num(row, key, default=None):
    v = row.get(key, "")
    try:
        return int(float(v))
    except ValueError:
        return default


def engine_config(backend, tp, adp, ep, batch, role):
    """One role's engine flags, as srt-slurm recipes write them (`tp` counts attention TP per DP rank)."""
    width = tp * adp
    if backend == "sglang":
        cfg = {"tensor-parallel-size": width}
        # A prefill server batches by tokens (chunked-prefill-size): the row's prefill batch is
        # aiconfigurator's per-pass figure, not a limit the engine ran with.
        if role != "prefill":
            cfg["max-running-requests"] = max(1, batch) * adp
        if adp > 1:
            cfg.update({"data-parallel-size": adp, "enable-dp-attention": True})
        if ep > 1:
            cfg["expert-parallel-size"] = ep
        if role in ("prefill", "decode"):
            cfg["disaggregation-mode"] = role
        return "sglang_config", cfg
    if backend == "trtllm":
        cfg = {"tensor_parallel_size": width, "moe_expert_parallel_size": ep, "max_batch_size": max(1, batch),
               "enable_attention_dp": adp > 1, "pipeline_parallel_size": 1}
        return "trtllm_config", cfg
    cfg = {"tensor-parallel-size": tp, "max-num-seqs": max(1, batch)}
    if adp > 1:
        cfg["data-parallel-size"] = adp
    if ep > 1:
        cfg["enable-expert-parallel"] = True
    return "vllm_config", cfg


def recipe(row):
    """The srt-slurm recipe of a silicon row, or None when it cannot be written."""
    gpu, gpn = SYSTEMS[row["system"]]
    backend = row["backend"]
    m = re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"]) or re.search(r"_c(\d+)(_|$)", row["id"])
    if m:
        conc = int(m.group(1))
    elif row["mode"] == "agg":
        conc = num(row, "batch_size", 1)
    else:
        conc = num(row, "decode_batch_size", 1) * num(row, "decode_num_workers", 1) * num(row, "decode_attention_dp_size", 1)
    isl, osl = int(row["isl"]), int(row["osl"])
    roles, resources = {}, {"gpu_type": gpu, "gpus_per_node": gpn}
    frontend = "sglang" if backend == "sglang" else "dynamo"

    def place(role, key, workers, tp, adp, ep, batch):
        gpus = tp * adp
        name = {"agg": "aggregated"}.get(role, role)
        section, cfg = engine_config(backend, tp, adp, ep, batch, role)
        roles.setdefault(section, {})[name] = cfg
        nodes = max(1, -(-workers * gpus // gpn))
        resources.update({f"{key}_nodes": nodes, f"{key}_workers": workers, f"gpus_per_{key}": gpus})

    if row["mode"] == "agg":
        # Dense models record no expert parallelism (`0` or empty): one expert rank.
        tp, adp, ep = num(row, "tp_size", 1), num(row, "attention_dp_size", 1), num(row, "moe_ep_size", 1) or 1
        batch = num(row, "batch_size", conc)
        place("agg", "agg", 1, tp, adp, ep, max(1, batch // max(1, adp)) if backend == "sglang" else batch)
    else:
        for role in ("prefill", "decode"):
            workers, adp = num(row, f"{role}_num_workers", 1), num(row, f"{role}_attention_dp_size", 1)
            # A row without a batch size ran with room for every request it had in flight: a decode
            # batch of 1 would queue the others in front of decode and count that wait as TTFT.
            batch = num(row, f"{role}_batch_size") or -(-conc // max(1, workers * adp))
            place(role, role, workers, num(row, f"{role}_tp_size", 1), adp, num(row, f"{role}_moe_ep_size", 1) or 1,
                  batch)
    section = next(iter(roles))
    text = {
        "name": row["id"],
        "model": {"path": row["model_path"], "container": f"{backend}:{row['backend_version']}",
                  "precision": row["precision"] or "bf16"},
        "resources": resources,
        "frontend": {"type": frontend},
        "backend": {"type": backend, section: roles[section]},
        "benchmark": {"type": "sa-bench", "isl": isl, "osl": osl, "concurrencies": str(conc), "req_rate": "inf",
                      "random_range_ratio": 1.0},
    }
    return json.dumps(text), conc


def predict(bin_path, path):
    out = subprocess.run([bin_path, "predict", str(path), "--json"], capture_output=True, text=True)
    try:
        v = json.loads(out.stdout)
    except json.JSONDecodeError:
        return None, out.stderr.strip().splitlines()[-1:] or ["no output"]
    var = v["variants"][0]
    if not var["points"]:
        return None, [var.get("error") or "no point"]
    return var["points"][0], None


def simulate(bin_path, path, speed, first):
    """A simulated run's mean TTFT and TPOT (model time), or None."""
    with tempfile.TemporaryDirectory() as d:
        run_dir = Path(d) / "run"
        env = dict(os.environ, SRT_GRAPH_TIMING="model")
        out = subprocess.run([bin_path, "run", str(path), "--mock-workers", "-q", "--sim-speed", str(speed),
                              "--run-dir", str(run_dir), "--first-address", first],
                             capture_output=True, text=True, env=env, timeout=1800)
        if out.returncode != 0:
            return None
        files = list(run_dir.glob("sa-bench*/results_concurrency_*.json"))
        if not files:
            return None
        r = json.loads(files[0].read_text())
        return r["mean_ttft_ms"], r["mean_tpot_ms"]


def pct(a, b):
    return abs(a - b) / b * 100.0 if b else float("nan")


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N rows")
    ap.add_argument("--sim-rows", type=int, default=0, help="simulated runs for the K smallest rows")
    ap.add_argument("--sim-speed", type=float, default=4.0)
    ap.add_argument("--out", default="")
    ap.add_argument("--jobs", type=int, default=2, help="predictions at a time")
    a = ap.parse_args()
    bin_path = binary()
    rows = [r for r in csv.DictReader(open(silicon_csv(bin_path)))
            if r["system"] in SYSTEMS and re.search("deepseek|qwen", r["model_path"], re.I)]
    if a.limit:
        rows = rows[: a.limit]
    from concurrent.futures import ThreadPoolExecutor
    with tempfile.TemporaryDirectory() as work:
        def one(k):
            row = rows[k]
            text, conc = recipe(row)
            path = Path(work) / f"r{k}.yaml"
            path.write_text(text)
            p, err = predict(bin_path, path)
            res = {"id": row["id"], "system": row["system"], "backend": row["backend"], "mode": row["mode"],
                   "model": row["model_path"], "concurrency": conc,
                   # Disaggregated rows without a decode batch size also lack worker counts: the
                   # deployment is guessed (one worker per role, the batch from the concurrency).
                   "described": row["mode"] == "agg" or bool(row.get("decode_batch_size")),
                   "silicon_ttft_ms": float(row["silicon_ttft_ms"]), "silicon_tpot_ms": float(row["silicon_tpot_ms"])}
            if p:
                res.update(predicted_ttft_ms=p["mean_ttft_ms"], predicted_tpot_ms=p["mean_tpot_ms"])
            else:
                res["skipped"] = err[0][:200]
            return res
        with ThreadPoolExecutor(a.jobs) as pool:
            results = []
            for res in pool.map(one, range(len(rows))):
                results.append(res)
                print(f"\r{len(results)}/{len(rows)}", end="", file=sys.stderr)
        print(file=sys.stderr)
        sims = sorted((r for r in results if "predicted_tpot_ms" in r), key=lambda r: r["concurrency"])[: a.sim_rows]
        for n, r in enumerate(sims):
            k = next(i for i, x in enumerate(results) if x is r)
            got = simulate(bin_path, Path(work) / f"r{k}.yaml", a.sim_speed, f"127.0.{60 + n % 10}.1")
            if got:
                r["simulated_ttft_ms"], r["simulated_tpot_ms"] = got
    if a.out:
        with open(a.out, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    report(results, a.sim_speed)


def report(results, speed):
    groups = {}
    for r in results:
        groups.setdefault((r["system"], r["backend"], r["mode"]), []).append(r)
    print("| system | backend | mode | rows | predicted | TPOT median | TPOT p90 | TTFT median | TTFT p90 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    tpot_all, ttft_all = [], []
    for key in sorted(groups):
        rs = groups[key]
        ok = [r for r in rs if "predicted_tpot_ms" in r]
        tp = [pct(r["predicted_tpot_ms"], r["silicon_tpot_ms"]) for r in ok]
        tt = [pct(r["predicted_ttft_ms"], r["silicon_ttft_ms"]) for r in ok]
        tpot_all += tp
        ttft_all += tt
        f = lambda xs, g: f"{g(xs):.1f} %" if xs else "–"
        print(f"| {key[0]} | {key[1]} | {key[2]} | {len(rs)} | {len(ok)} | {f(tp, statistics.median)} | {f(tp, p90)} | "
              f"{f(tt, statistics.median)} | {f(tt, p90)} |")
    if tpot_all:
        print(f"| **all** | | | {len(results)} | {len(tpot_all)} | {statistics.median(tpot_all):.1f} % | {p90(tpot_all):.1f} % | "
              f"{statistics.median(ttft_all):.1f} % | {p90(ttft_all):.1f} % |")
    for described in (True, False):
        ok = [r for r in results if "predicted_tpot_ms" in r and r["mode"] == "disagg"
              and r.get("described", True) == described]
        if ok:
            tp = [pct(r["predicted_tpot_ms"], r["silicon_tpot_ms"]) for r in ok]
            tt = [pct(r["predicted_ttft_ms"], r["silicon_ttft_ms"]) for r in ok]
            what = "with" if described else "without"
            print(f"\ndisaggregated rows {what} their batch size and worker counts: {len(ok)}, TPOT median "
                  f"{statistics.median(tp):.1f} % (p90 {p90(tp):.1f} %), TTFT median {statistics.median(tt):.1f} % "
                  f"(p90 {p90(tt):.1f} %)", end="")
    print()
    skipped = {}
    for r in results:
        if "skipped" in r:
            why = re.sub(r"\d+", "N", r["skipped"])[:120]
            skipped[why] = skipped.get(why, 0) + 1
    if skipped:
        print("\nnot predicted:")
        for why, n in sorted(skipped.items(), key=lambda x: -x[1]):
            print(f"- {n} × {why}")
    sims = [r for r in results if "simulated_tpot_ms" in r]
    if sims:
        d = [pct(r["simulated_tpot_ms"], r["predicted_tpot_ms"]) for r in sims]
        e = [pct(r["simulated_ttft_ms"], r["predicted_ttft_ms"]) for r in sims]
        print(f"\nsimulated runs (×{speed:g} clock, real sglang-router + client): {len(sims)} rows, TPOT vs predict "
              f"median {statistics.median(d):.2f} %, max {max(d):.2f} %; TTFT vs predict median "
              f"{statistics.median(e):.1f} %, max {max(e):.1f} %")


if __name__ == "__main__":
    main()
