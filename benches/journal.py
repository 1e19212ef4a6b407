"""A run directory's journal for the benches: every record of `journal.jsonl` that parses (a run being
written, or killed mid-line, leaves a partial last line)."""
import json
import os


def read(run_dir):
    out = []
    try:
        for line in open(os.path.join(run_dir, "journal.jsonl")):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    except OSError:
        pass
    return out
