"""`report.json`: what the stream concluded and how the stream itself went.

Refreshed every `SinkConfig.report_interval_s` while running and written a last time (with
`"final": true`) on the end of the source, `--max-frames`, an error or Ctrl-C; always atomically,
so a reader never sees half a file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_fetal.evaluation.report import write_json_atomic
from edge_fetal.stream.fusion import ClinicalEstimate, FusionState
from edge_fetal.stream.record import BIOMETRIC_ORDER, rounded, fused_json
from edge_fetal.stream.stats import LatencyStats, ProblemCounter
from edge_fetal.stream.writers import BestFrameSaver

REPORT_VERSION = 1


@dataclass
class StreamCounters:
    """Frame counts kept by the inference loop."""

    processed: int = 0
    failed: ProblemCounter = field(default_factory=lambda: ProblemCounter("frame processing"))
    stopped_by: str = "running"
    calibration_note: str | None = None


def clinical_json(estimate: ClinicalEstimate | None, unit: str) -> dict | None:
    if estimate is None:
        return None
    return {"value": rounded(estimate.value, 2 if unit == "weeks" else 1), "unit": unit, "formula": estimate.formula,
            "inputs": list(estimate.inputs), "inputs_locked": estimate.inputs_locked, "flag": estimate.flag}


def build_report(*, state: FusionState | None, counters: StreamCounters, source, grabber, sinks,
                 latency: LatencyStats, calibration: str, started: float, cpu_started: float, final: bool,
                 abandoned: int = 0) -> dict:
    """The report as a dict (also what `run_stream` returns). `abandoned`: frames inferred but not
    measured when the run stopped; they count as dropped, like the grabber's stale frames.
    `cpu_started`: `time.process_time()` at the start, for the CPU the run cost (the whole process,
    every thread): how much headroom a device has, or whether its CPU is what limits frames/s."""
    best: BestFrameSaver | None = sinks.best
    biometry = {}
    for name in BIOMETRIC_ORDER:
        fused = state.fused.get(name) if state is not None else None
        if fused is None:
            continue
        entry = fused_json(fused)
        entry["best_frame"]["image"] = best.image_for(name, fused.segment, fused.best.index) if best else None
        biometry[name] = entry
    elapsed = max(time.monotonic() - started, 1e-9)
    return {
        "version": REPORT_VERSION,
        "final": final,
        "stopped_by": counters.stopped_by,
        "source": source.description,
        "calibration": {"source": calibration, "note": counters.calibration_note},
        "roi": str(source.roi) if source.roi is not None else None,
        "biometry": biometry,
        "ga": clinical_json(state.ga if state else None, "weeks"),
        "ga_by_parameter": {k: clinical_json(v, "weeks") for k, v in (state.ga_by_parameter if state else {}).items()},
        "efw": clinical_json(state.efw if state else None, "g"),
        "plane_at_end": state.plane if state else None,
        "stream": {
            "frames_read": source.frames_read,
            "frames_processed": counters.processed,
            "frames_dropped": grabber.dropped + abandoned,
            "frames_failed": counters.failed.total,
            "bad_reads": source.problems.total,
            "reconnects": source.reconnects,
            "renders_dropped": sinks.renders_dropped,
            "frames_rendered": sinks.rendered,
            "video_frames": sinks.video.frames_written if sinks.video else 0,
            "video_encoder": sinks.video.encoder_used if sinks.video else None,
            "event_lines": sinks.events.lines,
            "duration_s": round(elapsed, 3),
            "processed_fps": round(counters.processed / elapsed, 2),
            **_cpu_cost(cpu_started, elapsed, counters.processed),
            "problems": {"source": source.problems.as_dict(), "processing": counters.failed.as_dict(),
                         "render": sinks.problems.as_dict()},
        },
        "latency_ms": latency.summary(),
    }


def _cpu_cost(cpu_started: float, elapsed: float, processed: int) -> dict:
    cpu = time.process_time() - cpu_started
    return {"cpu_s": round(cpu, 3), "cpu_ms_per_frame": round(1000.0 * cpu / processed, 2) if processed else None,
            "cores_busy": round(cpu / elapsed, 3)}


class ReportWriter:
    """Writes `report.json` atomically, at most every `interval_s` unless forced."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path, self.interval_s = Path(path), interval_s
        self._last = -float("inf")

    def due(self, now: float) -> bool:
        return now - self._last >= self.interval_s

    def write(self, report: dict, now: float) -> None:
        write_json_atomic(self.path, report)
        self._last = now


def summary_lines(report: dict) -> list[str]:
    """A few printable lines from a final report: biometry ± spread, GA, EFW, frame counts, latency."""
    lines = []
    for name, entry in report["biometry"].items():
        lock = "locked" if entry["locked"] else "not locked"
        image = f", best frame {entry['best_frame']['image']}" if entry["best_frame"].get("image") else ""
        lines.append(f"{name.upper():<4} {entry['value']:.1f} ± {entry['spread_sd']:.1f} {entry['unit']}  "
                     f"({entry['frames_used']} frames, {lock}{image})")
    if not report["biometry"]:
        lines.append("no biometry: no plane was held long enough with a measurable structure")
    for key, unit in (("ga", "weeks"), ("efw", "g")):
        estimate = report[key]
        if estimate is not None:
            flag = f"  [{estimate['flag']}]" if estimate["flag"] else ""
            lines.append(f"{key.upper():<4} {estimate['value']:g} {unit}  {estimate['formula']}{flag}")
    if "dicom_sr" in report:
        lines.append(sr_summary(report["dicom_sr"]))
    stream, latency = report["stream"], report["latency_ms"]["end_to_end"]
    lines.append(f"calibration: {report['calibration']['source']}"
                 + (f" ({report['calibration']['note']})" if report["calibration"]["note"] else ""))
    lines.append(f"frames: {stream['frames_read']} read, {stream['frames_processed']} processed, "
                 f"{stream['frames_dropped']} dropped, {stream['frames_failed']} failed, {stream['bad_reads']} bad reads; "
                 f"{stream['processed_fps']:.1f} fps; stopped by {report['stopped_by']}")
    if stream.get("cpu_ms_per_frame") is not None:
        lines.append(f"CPU: {stream['cpu_ms_per_frame']:.1f} ms a frame, {stream['cores_busy']:.2f} cores busy on average")
    if latency["count"]:
        lines.append(f"latency capture → result: p50 {latency['p50_ms']:.1f} ms, p95 {latency['p95_ms']:.1f} ms, "
                     f"p99 {latency['p99_ms']:.1f} ms")
    return lines


def sr_summary(entry: dict) -> str:
    """One line on the DICOM SR: written with what, or why not."""
    if entry["file"] is None:
        return f"DICOM SR not written: {entry.get('error') or entry['reason']}"
    left_out = "; ".join(f"{key.upper()} left out, {why}" for key, why in entry["left_out"].items())
    return (f"DICOM SR {entry['file']}: {', '.join(key.upper() for key in entry['reported'])}"
            + (f" ({left_out})" if left_out else ""))
