"""``--hdr FILE`` (HdrHistogram's .hgrm text) and ``--plot FILE.svg``, read back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.bench_servers import raw_server
from tinyws.bench import hdr, plot
from tinyws.bench.histogram import Histogram

HEADER = "       Value     Percentile TotalCount 1/(1-Percentile)"
ROW = re.compile(r"^ *(\d+\.\d{3}) (\d\.\d{12}) +(\d+)(?: +(\d+\.\d{2}|inf))?$")
FOOTER = re.compile(
    r"#\[Mean    = +(\d+\.\d{3}), StdDeviation   = +(\d+\.\d{3})\]\n"
    r"#\[Max     = +(\d+\.\d{3}), Total count    = +(\d+)\]\n"
    r"#\[Buckets = +(\d+), SubBuckets     = +(\d+)\]\n$"
)
SVG = "{http://www.w3.org/2000/svg}"


def parse_hgrm(text: str) -> tuple[list[tuple[float, float, int]], re.Match[str]]:
    """Return the rows (ms, percentile fraction, count) and the footer's match."""
    lines = text.split("\n")
    assert lines[0] == HEADER and lines[1] == ""
    rows = []
    for line in lines[2:]:
        if line.startswith("#"):
            break
        match = ROW.match(line)
        assert match is not None, line
        value, fraction, count, inverse = match.groups()
        rows.append((float(value), float(fraction), int(count)))
        if float(fraction) < 1.0:  # every row but the last has 1/(1-p)
            assert float(inverse) == pytest.approx(1 / (1 - float(fraction)), abs=0.01)
        else:
            assert inverse is None
    footer = FOOTER.search(text)
    assert footer is not None
    return rows, footer


def bench(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", *args, "--quiet", "--json", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_hdr_file_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "latency.hgrm"
    with raw_server() as server:
        data = bench(server.url(), "-n", "400", "-c", "4", "--hdr", str(out))
    rows, footer = parse_hgrm(out.read_text())
    values, fractions, counts = zip(*rows, strict=True)
    assert list(values) == sorted(values) and list(counts) == sorted(counts)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert list(fractions) == sorted(set(fractions))  # increasing: one row per step
    assert counts[-1] == 400 and int(footer[4]) == 400
    latency = data["latency_us"]
    assert isinstance(latency, dict)
    # Max in ms with three decimals; the JSON has µs with one.
    assert float(footer[3]) == pytest.approx(latency["max"] / 1000, abs=0.0006)
    assert values[-1] == pytest.approx(latency["max"] / 1000, abs=0.0006)
    assert float(footer[1]) == pytest.approx(latency["mean"] / 1000, abs=0.0006)
    assert (footer[5], footer[6]) == ("32", "2048")


def test_percentile_steps_follow_hdrhistogram() -> None:
    hist = Histogram()
    for value in range(1, 1001):  # 1 .. 1000 µs
        hist.record(value * 1000)
    rows = hdr.percentile_rows(hist)
    levels = [level for _, level, _ in rows]
    # Five steps per halving of the distance to 100 %: 0, 10 … 50, 55 … 75, 77.5 …
    assert levels[:8] == pytest.approx([0, 10, 20, 30, 40, 50, 55, 60])
    assert (levels[-1], rows[-1][2]) == (100.0, 1000)
    by_level = {level: value for value, level, _ in rows}
    assert by_level[50.0] == pytest.approx(500_000, rel=0.001)
    assert by_level[90.0] == pytest.approx(900_000, rel=0.001)


def test_empty_histogram_has_no_rows() -> None:
    text = hdr.to_hgrm(Histogram())
    assert text.startswith(HEADER + "\n\n#[Mean")


def test_svg_plot_of_a_rate_run(tmp_path: Path) -> None:
    out = tmp_path / "latency.svg"
    with raw_server() as server:
        bench(server.url(), "--rate", "300", "-n", "300", "--plot", str(out))
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    width, height = float(root.attrib["width"]), float(root.attrib["height"])
    lines = root.findall(f"{SVG}polyline")
    assert [line.attrib["data-series"] for line in lines] == ["latency (from schedule)", "service"]
    for line in lines:
        points = [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]
        assert len(points) > 20
        xs = [x for x, _ in points]
        assert xs == sorted(xs)  # along the percentile axis
        assert all(0 <= x <= width and 0 <= y <= height for x, y in points)
    labels = [text.text for text in root.iter(f"{SVG}text")]
    assert {"0%", "90%", "99%"} <= set(labels)


def test_plot_axis_and_series_names_are_escaped() -> None:
    hist = Histogram()
    hist.record(1_000_000)
    svg = plot.to_svg([('a<b & "c"', hist)], "t<1>")
    root = ET.fromstring(svg)
    [line] = root.findall(f"{SVG}polyline")
    assert line.attrib["data-series"] == 'a<b & "c"'
