"""`edge-fetal stream` options: a wrong value is one clear line, before any source or model opens."""

from edge_fetal.cli import main


def test_stream_with_zero_inference_workers_is_one_clear_line(tmp_path, capsys):
    code = main(["stream", "--source", "sim:1", "--inference-workers", "0", "--out", str(tmp_path)])
    assert code == 2 and "--inference-workers must lie in 1..8" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing is written for a refused run"
