"""`edge-fetal stream` options: a wrong value is one clear line, before any source or model opens."""

from edge_fetal.cli import main


def test_stream_with_zero_inference_workers_is_one_clear_line(tmp_path, capsys):
    code = main(["stream", "--source", "sim:1", "--inference-workers", "0", "--out", str(tmp_path)])
    assert code == 2 and "--inference-workers must lie in 1..8" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing is written for a refused run"


def test_stream_into_a_folder_with_an_earlier_run_is_refused_before_the_source_opens(tmp_path, capsys):
    (tmp_path / "report.json").write_text('{"final": true}')
    code = main(["stream", "--source", "sim:1", "--max-frames", "2", "--out", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert "already holds the outputs of an earlier run (report.json)" in error and "--overwrite" in error
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]
    assert (tmp_path / "report.json").read_text() == '{"final": true}'


def test_stream_with_overwrite_replaces_an_earlier_run(tmp_path):
    (tmp_path / "best_fl.png").write_bytes(b"an earlier scan's femur")
    code = main(["stream", "--source", "sim:1", "--max-frames", "3", "--out", str(tmp_path), "--overwrite"])
    assert code == 0
    assert not (tmp_path / "best_fl.png").exists() and (tmp_path / "report.json").is_file()


def test_stream_without_out_writes_each_run_into_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["stream", "--source", "sim:1", "--max-frames", "2"]) == 0
    assert main(["stream", "--source", "sim:1", "--max-frames", "2"]) == 0
    runs = sorted((tmp_path / "stream_out").iterdir())
    assert len(runs) == 2, "the second run must neither be refused nor replace the first"
    assert all((run / "report.json").is_file() for run in runs)


def test_video_encoder_cpu_writes_mp4v_and_the_last_line_names_it(tmp_path, capsys):
    code = main(["stream", "--source", "sim:1", "--max-frames", "3", "--out", str(tmp_path), "--video-encoder", "cpu"])
    assert code == 0
    assert f"wrote {tmp_path / 'annotated.mp4'} (mp4v), events.jsonl, report.json" in capsys.readouterr().out
