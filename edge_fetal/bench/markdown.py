"""The benchmark result as Markdown tables (what goes into benchmarks/results/*.md and the README)."""

from __future__ import annotations


def _f(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def model_rows_table(rows: list[dict]) -> list[str]:
    return _table(
        ["variant", "runtime", "precision", "layout", "device", "p50 ms", "p95 ms", "p99 ms", "frames/s",
         "GFLOP/s", "of peak", "RSS Δ MiB"],
        [[r["variant"], r["runtime"], r["precision"], r["layout"], r["device"], _f(r["p50_ms"]), _f(r["p95_ms"]),
          _f(r["p99_ms"]), _f(r["frames_per_s"], 1), _f(r.get("gflops_achieved"), 1),
          _f(None if r.get("peak_fraction") is None else 100 * r["peak_fraction"], 1, " %"), _f(r.get("rss_delta_mib"), 0)]
         for r in rows])


def end_to_end_table(section: dict) -> list[str]:
    lines = [f"Backend in the pipeline: **{section['backend']}**; {section['rounds']} round(s) of "
             f"{section['frames_per_run']} frames each (every frame held {section['hold']}x), pipeline and naive in turns.", ""]
    rows = []
    workers = section["pipeline"].get("inference_workers") or 1
    offline_label = "pipeline (`run_stream`, offline" + (f", {workers} frames in the model at once, "
                                                         f"{section['pipeline'].get('threads_each')} thread each)" if workers > 1 else ")")
    for name, label in (("pipeline", offline_label), ("naive", "naive baseline")):
        part = section.get(name)
        if not part:
            continue
        c2r, proc = part["capture_to_result"], part["processing"]
        rows.append([label, _f(part["frames_per_s"], 1), _f(c2r["p50_ms"]), _f(c2r["p95_ms"]), _f(c2r["p99_ms"]),
                     _f(proc["p50_ms"]), _f(proc["p99_ms"])])
    from_file = section.get("offline_file")
    if from_file:
        proc = from_file["processing"]
        rows.append([f"pipeline, offline, a recorded scan streamed from a file ({from_file['frames_per_run']} "
                     f"frames, decoding included)", _f(from_file["frames_per_s"], 1), "–", "–", "–",
                     _f(proc["p50_ms"]), _f(proc["p99_ms"])])
    live = section.get("live")
    if live and live["capture_to_result"]["p50_ms"] is not None:
        c2r, proc = live["capture_to_result"], live["processing"]
        rows.append([f"pipeline, live source at {live['source_fps']:.0f} frames/s ({live['frames_dropped']} of "
                     f"{live['frames_processed'] + live['frames_dropped']} dropped)", "–", _f(c2r["p50_ms"]),
                     _f(c2r["p95_ms"]), _f(c2r["p99_ms"]), _f(proc["p50_ms"]), _f(proc["p99_ms"])])
    lines += _table(["", "frames/s", "capture→result p50 ms", "p95 ms", "p99 ms", "processing p50 ms", "processing p99 ms"], rows)
    if from_file:
        lines += ["", f"The recorded scan: {from_file['source']}."]
    cpu = _cpu_lines(section)
    if cpu:
        lines += ["", "CPU of the whole process per frame (cores kept busy on average): " + "; ".join(cpu)
                  + ". Near the usable CPUs, frames/s is bound by the CPU a frame costs."]
    spread = _run_to_run(section)
    if spread and section["rounds"] > 1:
        lines += ["", f"Run to run ({section['rounds']} rounds, lowest–highest): " + "; ".join(spread) + "."]
    stages = section["pipeline"].get("stages") or {}
    if stages:
        lines += ["", "Pipeline stages, p50 ms: " + ", ".join(f"{k} {_f(v['p50_ms'])}" for k, v in stages.items())
                  + f"; render + mp4 ({section['pipeline'].get('video_encoder') or 'not written'}) on its own thread "
                    f"{_f(section['pipeline'].get('render_p50_ms'))}."]
    shares = section["pipeline"].get("work_shares") or {}
    if shares.get("critical_path") is not None:
        lines += ["", f"Work outside the model (mean per frame): {100 * shares['critical_path']:.0f} % of preprocess + infer + "
                      f"measure + fuse; {_share(shares, 'with_drawing')} with the render thread drawing the overlay; "
                      f"{100 * shares['all_work']:.0f} % with its drawing and mp4 encoding."]
    ratio = section.get("ratio")
    if ratio:
        pipe, naive = section["pipeline"], section["naive"]
        lines += ["", f"Pipeline vs naive (> 1: the pipeline is better): throughput **{_f(ratio['throughput'])}x**; "
                      f"p99 capture→result naive / pipeline **{_f(ratio['p99_capture_to_result'])}** "
                      f"({_f(naive['capture_to_result']['p99_ms'], 1)} vs {_f(pipe['capture_to_result']['p99_ms'], 1)} ms); "
                      f"p99 processing naive / pipeline **{_f(ratio['p99_processing'])}**.",
                  "", "Capture→result in the pipeline includes its read-ahead: offline, the grabber stamps a frame when it "
                      "reads it, then waits to place it in the one-slot mailbox, so it waits while up to two earlier "
                      "frames are processed; the naive loop reads a frame only when it is free. Processing is the "
                      "engine's own stages for a frame (no waiting)."]
    else:
        lines += ["", "No naive baseline (it needs torch and the network's architecture)."]
    return lines


def _cpu_lines(section: dict) -> list[str]:
    """Each pipeline line's CPU per frame and busy cores: how close a line runs to the machine's CPU bound."""
    parts = []
    for label, part in (("offline from memory", section.get("pipeline")), ("from the file", section.get("offline_file")),
                        ("live", section.get("live"))):
        if part and part.get("cpu_ms_per_frame") is not None:
            parts.append(f"{label} {_f(part['cpu_ms_per_frame'], 1)} ms ({_f(part['cores_busy'])})")
    return parts


def _run_to_run(section: dict) -> list[str]:
    """How far the rounds of each end-to-end line spread: a target missed by less than this spread
    is within this machine's noise."""
    parts = []
    for label, part, key, unit, digits in (
            ("offline from memory", section.get("pipeline"), "frames_per_s_by_run", "frames/s", 1),
            ("from the file", section.get("offline_file"), "frames_per_s_by_run", "frames/s", 1),
            ("live capture→result p50", section.get("live"), "capture_to_result_p50_by_run", "ms", 2),
            ("live p99", section.get("live"), "capture_to_result_p99_by_run", "ms", 2)):
        values = (part or {}).get(key) or []
        if values:
            parts.append(f"{label} {_f(min(values), digits)}–{_f(max(values), digits)} {unit}")
    return parts


def scaling_tables(scaling: dict) -> list[str]:
    lines = ["### Input size (ONNX Runtime fp32, batch 1)", ""]
    lines += _table(["input H x W", "GFLOP/frame", "p50 ms", "p95 ms", "p99 ms", "frames/s", "GFLOP/s"],
                    [[_box(p), _f(p.get("gflop_per_frame"), 3), _f(p["p50_ms"]), _f(p["p95_ms"]), _f(p["p99_ms"]),
                      _f(p["frames_per_s"], 1), _f(p.get("gflops_achieved"), 1)] for p in scaling["input_size"]])
    lines += ["", "### Batch (ONNX Runtime fp32)", ""]
    lines += _table(["batch", "p50 ms per call", "p99 ms per call", "frames/s"],
                    [[p["batch"], _f(p["p50_ms"]), _f(p["p99_ms"]), _f(p["frames_per_s"], 1)] for p in scaling["batch"]])
    lines += ["", "### Concurrent streams (one ONNX Runtime session per thread, cores / streams intra-op threads)", ""]
    lines += _table(["streams", "threads each", "p50 ms per frame", "p99 ms per frame", "frames/s, all streams"],
                    [[p["streams"], p["intra_op_threads"], _f(p["p50_ms"]), _f(p["p99_ms"]), _f(p["frames_per_s"], 1)]
                     for p in scaling["streams"]])
    return lines


def format_markdown(doc: dict) -> str:
    machine, model, peak = doc["machine"], doc["model"], doc["peak"]
    settings = doc["settings"]
    frames = settings["frames"]
    lines = [
        f"# edge-fetal benchmark: {machine['cpu']} ({machine['usable_cpus']} CPUs), {doc['date']}", "",
        f"- Machine: {machine['cpu']}" + (f" ({machine['cpu_identity']})" if machine.get("cpu_identity") else "")
        + f", {machine['physical_cores']} physical core(s), flags {', '.join(machine['cpu_flags']) or '–'}; "
        f"idle driver {machine.get('cpuidle_driver') or 'unknown'}; {machine['platform']}",
        f"- Versions: Python {machine['python']}, onnxruntime {machine['onnxruntime']}, torch {machine['torch']}, "
        f"OpenCV {machine['opencv']}, numpy {machine['numpy']}" + (f", TensorRT {machine['tensorrt']}" if machine.get("tensorrt") else ""),
        f"- Model: `{model['path']}`, input {_box(model)} px{_fitted(model)}, {_f(model['gflop_per_frame'], 3)} GFLOP/frame; "
        f"torch weights: {model['torch_weights']}",
        f"- Peak: {_f(peak['gflops'], 1)} GFLOP/s ({peak['method']}, best of start and end of the run)",
        f"- Frames: {frames['real_hc18']} real HC18 ({frames['real_folder']}) + simulated {frames['simulated']}; "
        f"{settings['rounds']} interleaved rounds x {settings['iterations']} calls per variant"
        + (" (**--quick**: not for comparison)" if settings["quick"] else ""),
        "", "## Model only (batch 1)", "",
    ]
    lines += model_rows_table([r for r in doc["rows"] if r["group"] == "model"])
    lines += ["", "INT8 GFLOP/s counts the same operations as fp32; its fraction is of the fp32 peak.", ""]
    lines += ["## End to end (capture → result)", ""]
    lines += end_to_end_table(doc["end_to_end"]) if doc.get("end_to_end") else ["Not measured."]
    lines += ["", "## Scaling", ""] + scaling_tables(doc["scaling"])
    memory, engine = doc["memory"], doc["memory"].get("engine_process") or {}
    lines += ["", "## Memory", ""]
    if "peak_rss_mib" in engine:
        lines.append(f"- Engine process (fresh process, `run_stream` with {engine['variant']}, overlay and mp4): "
                     f"peak RSS **{_f(engine['peak_rss_mib'], 0)} MiB**")
    elif engine:
        lines.append(f"- Engine process: not measured ({engine.get('error')})")
    lines += [f"- Benchmark process: peak RSS {_f(memory['peak_rss_mib'], 0)} MiB (after the model-only timing: "
              f"{_f(memory['peak_rss_mib_after_model_only'], 0)} MiB), with every variant and torch loaded at once.",
              "- RSS Δ in the tables: resident memory a variant added when it was opened and warmed up (weights, "
              "session, arena); approximate, as freed memory is not always returned."]
    if doc["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in doc["notes"]]
    return "\n".join(lines) + "\n"


def _box(entry: dict) -> str:
    """"H x W" of an input (older results name only the square side)."""
    height, width = entry.get("input_hw") or (entry["input_size"], entry["input_size"])
    return f"{height}x{width}"


def _fitted(model: dict) -> str:
    if not model.get("input_stride"):
        return ""
    return (f" (the fitted box of an 800x540 frame: long side {model['input_size']}, short side padded to a "
            f"multiple of {model['input_stride']} only)")


def _share(shares: dict, key: str) -> str:
    value = shares.get(key)
    return "n/a" if value is None else f"{100 * value:.0f} %"
