# Computes srt-graph's latency tables for worker roles with aiconfigurator-core's silicon-calibrated
# engine. Input: a JSON list of `ModelInput` on stdin; output: a JSON list on stdout, per input either a
# table or {"unsupported": "why"}. Exit status 4 with one line on stderr: aiconfigurator cannot be imported.
import json, sys, time

def fail(code, message):
    sys.stderr.write(message.replace("\n", " ") + "\n")
    sys.exit(code)

try:
    import aiconfigurator_core
    from aiconfigurator_core.sdk.engine import compile_engine
    from aiconfigurator_core.sdk import memory, perf_database
    from importlib.metadata import version as dist_version
except Exception as e:  # noqa: BLE001 - any import failure means a broken install
    fail(4, f"{type(e).__name__}: {e}")

def grid(lo, hi):
    out, v = [], lo
    while v < hi:
        out.append(v)
        v *= 2
    out.append(hi)
    return sorted(set(out))

# When the measured kernels lack the requested attention precision, the nearest measured one is used
# (and reported): fp8 attention first falls back to bf16 attention math, then to a bf16 KV cache.
FALLBACKS = [{}, {"fmha_quant_mode": "bfloat16"}, {"fmha_quant_mode": "bfloat16", "kvcache_quant_mode": "bfloat16"}]

def engine(m, version, par):
    first = last = None
    for extra in FALLBACKS:
        quant = {k: m.get(k) for k in ("gemm_quant_mode", "moe_quant_mode", "kvcache_quant_mode", "fmha_quant_mode")}
        quant.update(extra)
        try:
            spec = compile_engine(m["model"], m["system"], m["backend"], version, nextn=m["nextn"], **par, **quant)
            eng = aiconfigurator_core.AicEngine.from_spec(spec)
            eng.predict_prefill_latency(1, 128)
            eng.decode_step_latency(1, 128, 2)
            return eng, quant
        except Exception as e:  # noqa: BLE001
            last = e
            if first is None:
                first = e
            if "data missing" not in str(e) and "not available" not in str(e).lower():
                break
    raise last

def table(m):
    par = dict(tp_size=m["tp"], pp_size=m["pp"], attention_dp_size=m["attention_dp"],
               moe_tp_size=m["moe_tp"], moe_ep_size=m["moe_ep"])
    version = m.get("backend_version")
    if perf_database.get_version_slots(m["system"], m["backend"]) is not None:
        version = perf_database.resolve_query_version(m["system"], m["backend"], version or "current")
    eng, quant = engine(m, version, par)
    max_ctx = max(256, m["max_context"])
    ctx_grid = grid(128, max_ctx)
    # Prefill: one forward of `b` sequences of `s` tokens each; the scheduler batches by tokens.
    pre_batch = grid(1, max(1, min(64, m["chunked_prefill"] // 128, m["max_batch"])))
    prefill = [[eng.predict_prefill_latency(b, s) for s in ctx_grid] for b in pre_batch]
    dec_batch = grid(1, max(1, m["max_batch"]))
    decode = [[eng.decode_step_latency(b, s, 2) for s in ctx_grid] for b in dec_batch]
    kv = None
    try:
        est = memory.estimate_kv_cache(m["model"], m["system"], m["backend"], version,
                                       max_num_tokens=m["chunked_prefill"], max_batch_size=m["max_batch"],
                                       memory_fraction_kind="of_total" if m["backend"] != "trtllm" else "of_free",
                                       memory_fraction_value=m["mem_fraction"], nextn=m["nextn"], **par, **quant)
        kv = est
    except Exception as e:  # noqa: BLE001 - capacity is optional; the scheduler then bounds by batch only
        kv = {"error": f"{type(e).__name__}: {e}"}
    return {
        "engine": {"name": "aiconfigurator-core", "version": dist_version("aiconfigurator-core")},
        "backend_version": version, "quant": quant,
        "ctx_grid": ctx_grid, "prefill_batch_grid": pre_batch, "prefill_ms": prefill,
        "decode_batch_grid": dec_batch, "decode_ms": decode, "kv_estimate": kv,
    }

results = []
for m in json.load(sys.stdin):
    t = time.time()
    try:
        out = table(m)
        out["compute_secs"] = time.time() - t
    except Exception as e:  # noqa: BLE001 - aiconfigurator raises many types for unsupported combinations
        out = {"unsupported": f"{type(e).__name__}: {e}".replace("\n", " ")[:600]}
    results.append(out)
json.dump(results, sys.stdout)
