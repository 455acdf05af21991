"""dataset_tools: validate catches each broken variant, sessionize/demo/stats/from-amazon work."""

import gzip
import hashlib
import json
import subprocess
import sys
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest

from dataset_tools.__main__ import main as cli
from dataset_tools.atomic import dataset_checksum, read_atomic
from dataset_tools.demo import generate_demo
from dataset_tools.sessions import filter_sessions, sessions_from_rows, sessionize
from dataset_tools.validate import validate_dataset

INTER = "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
    f"u{u}\ti{(u + k) % 6}\t{k * 86400 + u}\n" for u in range(4) for k in range(3))
ITEM = "item_id:token\ttitle:token_seq\timage:token\n" + "".join(
    f"i{k}\titem number {k}\t\n" for k in range(6))


def make(tmp_path, inter=INTER, item=ITEM, name="toy"):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / f"{name}.inter").write_bytes(inter.encode() if isinstance(inter, str) else inter)
    if item is not None:
        (d / f"{name}.item").write_bytes(item.encode() if isinstance(item, str) else item)
    return d


def test_clean_dataset_passes(tmp_path):
    report = validate_dataset(make(tmp_path), "toy")
    assert report.ok and not report.warnings, report.errors + report.warnings


BROKEN = [  # (inter, item, expected error text)
    (INTER.replace("timestamp:float", "timestamp:double", 1), ITEM, "toy.inter:1: column 3 header 'timestamp:double' has type 'double'"),
    (INTER.replace("item_id:token", "item_id", 1), ITEM, "toy.inter:1: column 2 header 'item_id' is not name:type"),
    (INTER.replace("u0\ti0\t0", "u0 i0 0", 1), ITEM, "toy.inter:2: 1 tab-separated cells, the header has 3"),
    (INTER.replace("\t0\n", "\tyesterday\n", 1), ITEM, "toy.inter:2: field 'timestamp': 'yesterday' is not a number"),
    (INTER.replace("u0\ti0", "\ti0", 1), ITEM, "toy.inter:2: field 'user_id': empty id"),
    (INTER.replace("u0\ti0", "u0\t", 1), ITEM, "toy.inter:2: field 'item_id': empty id"),
    (INTER.replace("user_id:token", "person:token", 1).replace("u0", "p0"), ITEM, "no user or session field"),
    (INTER.replace("item_id:token", "product:token", 1), ITEM, "no item_id field"),
    (INTER.encode().replace(b"u1\t", b"u\xff\t", 1), ITEM, "toy.inter:5: bytes that are not UTF-8"),
    (INTER, ITEM + "i3\tduplicate\t\n", "toy.item:8: field 'item_id': item 'i3' already listed on line 5"),
    (INTER, "title:token_seq\titem_id:token\timage:token\n" + "".join(f"item {k}\ti{k}\t\n" for k in range(6)), "toy.item:1: field 'title': the first column must be item_id"),
    (INTER, ITEM.replace("item_id:token\t", "item_id:token\titem_id:token\t", 1), "duplicate field names"),
    (INTER, ITEM.replace("i2\titem number 2\t", "i2\titem\tnumber 2\t", 1), "toy.item:4: 4 tab-separated cells, the header has 3"),
    # issue 16: accepted silently or misreported before
    (INTER.replace("\t0\n", "\tnan\n", 1), ITEM, "toy.inter:2: field 'timestamp': 'nan' is not a finite number"),
    (INTER.replace("\t0\n", "\tinf\n", 1), ITEM, "toy.inter:2: field 'timestamp': 'inf' is not a finite number"),
    (INTER.replace("u0\ti0", "u0\ti 0", 1), ITEM, "toy.inter:2: field 'item_id': token 'i 0' contains a space"),
    (INTER.splitlines(keepends=True)[0], ITEM, "toy.inter: no rows under the header"),
    (INTER.replace("\t", ","), ITEM, "toy.inter:1: cells are separated by commas or spaces, not tabs; "
     "RecBole atomic files are tab-separated: use tabs"),
    ("\ufeff" + INTER, ITEM, "toy.inter:1: the file starts with a UTF-8 byte-order mark (BOM)"),
]


@pytest.mark.parametrize("inter,item,expected", BROKEN)
def test_broken_variants_fail_with_a_precise_message(tmp_path, inter, item, expected):
    report = validate_dataset(make(tmp_path, inter, item), "toy")
    assert not report.ok
    assert any(expected in e for e in report.errors), report.errors
    assert len(report.errors) <= 12  # one kind of problem is said once per line, capped
    assert all("; " in e for e in report.errors)  # every message says what to do


def test_warnings_do_not_fail(tmp_path):
    item = ITEM.replace("i5\titem number 5\t\n", "i5\titem number 5\timages/i5.jpg\n")
    item = item.replace("i4\titem number 4\t\n", "")
    inter = INTER + INTER.splitlines(keepends=True)[1]
    report = validate_dataset(make(tmp_path, inter, item), "toy")
    assert report.ok
    text = "\n".join(report.warnings)
    assert "image images/i5.jpg not found" in text
    assert "1 items of the interactions have no row" in text
    assert "duplicate of an earlier row" in text
    assert cli(["validate", str(tmp_path / "toy")]) == 0


def test_an_image_that_does_not_open_is_named_and_the_item_is_read_as_text(tmp_path, caplog):
    import logging

    from PIL import Image

    from recbole_tpad.mllm.prompts import dataset_items

    item = ITEM.replace("i5\titem number 5\t\n", "i5\titem number 5\timages/i5.png\n")
    item = item.replace("i4\titem number 4\t\n", "i4\titem number 4\timages/i4.png\n")
    folder = make(tmp_path, INTER, item)
    (folder / "images").mkdir()
    (folder / "images" / "i5.png").write_text("this is text, not a picture")
    Image.new("RGB", (8, 8), "red").save(folder / "images" / "i4.png")
    report = validate_dataset(folder, "toy")
    assert report.ok
    assert any("image images/i5.png not a readable image" in w for w in report.warnings), report.warnings
    assert not any("i4.png" in w for w in report.warnings)
    with caplog.at_level(logging.WARNING):
        items = {i.item_id: i for i in dataset_items(folder, "toy")}
    assert items["i5"].image is None and items["i4"].has_image()
    assert "1 item(s) of toy have an image that cannot be used" in caplog.text


def test_cli_exit_code_on_errors(tmp_path, capsys):
    make(tmp_path, INTER.replace("\t0\n", "\tx\n", 1))
    assert cli(["validate", str(tmp_path / "toy")]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_sessions_cut_by_day_and_by_gap():
    rows = [["a", "i1", "0"], ["a", "i2", "100"], ["a", "i3", "90000"], ["b", "i1", "5"],
            ["a", "i4", "90050"], ["b", "i9", "86399"]]
    assert sessions_from_rows(rows, 0, 1, 2) == [["i1", "i2"], ["i3", "i4"], ["i1", "i9"]]
    assert sessions_from_rows(rows, 0, 1, 2, gap=1000) == [["i1", "i2"], ["i3", "i4"], ["i1"], ["i9"]]


def test_filter_sessions_repeats_until_stable():
    assert filter_sessions([["a", "b"], ["a", "b"], ["c", "a"]], min_item_count=2) == [["a", "b"], ["a", "b"]]
    # dropping rare items shortens sessions, which drops sessions, which makes items rare
    assert filter_sessions([["a", "b"], ["a", "c"], ["c", "d"], ["e"]], min_item_count=2) == []
    assert filter_sessions([["a", "b", "c", "d"]], max_length=3) == [["b", "c", "d"]]


def test_sessionize_splits_by_session_and_records_provenance(tmp_path):
    source = make(tmp_path)
    out = tmp_path / "toy-session"
    counts = sessionize(source, "toy", out, "toy-session", gap=None, ratios=(0.5, 0.25, 0.25))
    assert counts["before_item_filtering"]["sessions_total"] == 12  # one item a day per user
    rows = {s: read_atomic(out / f"toy-session.{s}.inter")[1] for s in ("train", "valid", "test")}
    assert counts["sessions"] == 0 and all(not r for r in rows.values())

    inter = "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"u{u}\ti{(u * k) % 7}\t{k}\n" for u in range(20) for k in range(4))
    source = make(tmp_path, inter, ITEM, name="day")
    counts = sessionize(source, "day", tmp_path / "day-session", "day-session", seed=1)
    assert counts["sessions"] == 20 and counts["train_sessions"] == 16
    split = {s: read_atomic(tmp_path / "day-session" / f"day-session.{s}.inter")[1]
             for s in ("train", "valid", "test")}
    ids = {s: {r[0] for r in rows} for s, rows in split.items()}
    assert not (ids["train"] & ids["valid"]) and not (ids["train"] & ids["test"])
    assert len(split["train"]) == 16 * 3 and len(split["test"]) == 2  # every prefix vs last only
    assert all(len(r[1].split()) == 3 for r in split["test"])
    meta = json.loads((tmp_path / "day-session" / "day-session.sessions.json").read_text())
    assert meta["source_checksum"] == dataset_checksum(source, "day")
    assert validate_dataset(tmp_path / "day-session", "day-session").ok


@pytest.mark.parametrize("inter,says", [
    (INTER.replace("u0\ti0", "u0\ti 0", 1), "item_id 'i 0' contains a space"),
    (INTER.replace("\t0\n", "\tnan\n", 1), "timestamp 'nan' is not a finite number"),
])
def test_sessionize_refuses_what_would_corrupt_sessions(tmp_path, inter, says):
    source = make(tmp_path, inter)
    with pytest.raises(ValueError, match=says):
        sessionize(source, "toy", tmp_path / "out", "toy-s")
    with pytest.raises(ValueError, match="is the source folder"):
        sessionize(make(tmp_path), "toy", source, "toy")


def test_demo_is_deterministic_and_valid(tmp_path):
    a = generate_demo(tmp_path / "a" / "demo", items_per_category=5, n_sessions=200)
    b = generate_demo(tmp_path / "b" / "demo", items_per_category=5, n_sessions=200)
    assert a == b
    assert dataset_checksum(tmp_path / "a" / "demo", "demo") == dataset_checksum(tmp_path / "b" / "demo", "demo")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(tmp_path / "a/demo/images/i03004.png") == digest(tmp_path / "b/demo/images/i03004.png")
    report = validate_dataset(tmp_path / "a" / "demo", "demo")
    assert report.ok and not report.warnings


def test_demo_images_depend_on_category(tmp_path):
    from PIL import Image

    generate_demo(tmp_path / "demo", items_per_category=3, n_sessions=20)
    pixel = lambda item: Image.open(tmp_path / f"demo/images/{item}.png").convert("RGB").getpixel((32, 40))
    assert pixel("i01000") == pixel("i01002") != pixel("i02000")


def test_stats_table(tmp_path, capsys):
    generate_demo(tmp_path / "demo", items_per_category=5, n_sessions=100)
    assert cli(["stats", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "| sessions" in out and "| 100 |" in out and "items with an image file" in out


# ---- from-amazon ---------------------------------------------------------------------------

def _write(path, lines, gz=True):
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _reviews(users=4, items=3):
    return [json.dumps({"reviewerID": f"U{u}", "asin": f"A{i}", "overall": 4.0,
                        "unixReviewTime": 1_400_000_000 + 86400 * (u + i)})
            for u in range(users) for i in range(items)]


@pytest.fixture
def image_server(tmp_path):
    """A loopback HTTP server with two images, for the download path."""
    from PIL import Image

    root = tmp_path / "www"
    root.mkdir()
    for asin in ("A0", "A1"):
        Image.new("RGB", (4, 4), "red").save(root / f"{asin}.jpg")
    (root / "A2.jpg").write_text("not an image")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stats_on_a_comma_file_names_file_and_line(tmp_path, capsys):
    folder = make(tmp_path, INTER.replace("\t", ","))
    assert cli(["stats", str(folder)]) == 2
    assert "toy.inter:1: cells are separated by commas" in capsys.readouterr().err
    folder = make(tmp_path, INTER.replace("u1\ti1", "u1\ti1\textra", 1), name="toy2")
    assert cli(["stats", str(folder)]) == 2
    assert "toy2.inter:" in capsys.readouterr().err


def test_from_amazon_2014_format_with_broken_lines(tmp_path):
    reviews = _write(tmp_path / "reviews_Toy_5.json.gz", _reviews()[:5] + ["{broken json"] + _reviews()[5:]
                     + [json.dumps({"asin": "A0"})])
    meta = _write(tmp_path / "meta_Toy.json.gz", [
        repr({"asin": "A0", "title": "Red <b>Ball</b> &amp; Net", "categories": [["Sports", "Balls"]],
              "brand": "Acme", "description": "A\tball.", "imUrl": "http://x/A0.jpg"}),
        repr({"asin": "A1", "title": "Tent", "categories": [["Sports", "Camping"], ["Outdoor"]]}),
        "this is not a record",
        repr({"asin": "A2", "description": "no title"}),
    ])
    images = tmp_path / "imgs"
    images.mkdir()
    from PIL import Image
    Image.new("RGB", (4, 4)).save(images / "A1.png")
    out = tmp_path / "toy"
    assert cli(["from-amazon", "--reviews", str(reviews), "--meta", str(meta), "--out", str(out),
                "--images", str(images), "--kcore", "3"]) == 0
    inter_fields, inter = read_atomic(out / "toy.inter")
    assert [n for n, _ in inter_fields] == ["user_id", "item_id", "rating", "timestamp"]
    assert len(inter) == 12  # every valid review kept (3-core holds), two broken lines skipped
    items = {r[0]: r for r in read_atomic(out / "toy.item")[1]}
    assert items["A0"][1:5] == ["Red Ball & Net", "Sports Balls", "Acme", "A ball."]
    assert items["A1"][2] == "Sports Camping Outdoor" and items["A1"][5] == str((images / "A1.png").resolve())
    assert items["A0"][5] == ""  # no local image, downloads off: text only
    assert validate_dataset(out, "toy").ok


def test_from_amazon_names_latin1_lines_truncated_files_and_fake_images(tmp_path, capsys):
    lines = [line.encode() for line in _reviews()]
    lines[2] = json.dumps({"reviewerID": "U0", "asin": "A2", "overall": 4.0,
                           "unixReviewTime": 1}).replace("U0", "Ux\u00e9").encode("latin-1")
    whole = gzip.compress(b"".join(line + b"\n" for line in lines))
    reviews = tmp_path / "reviews.json.gz"
    reviews.write_bytes(whole[: len(whole) - 12])  # a download cut short
    meta = _write(tmp_path / "meta.json.gz", [json.dumps({"asin": f"A{i}", "title": f"item {i}"})
                                              for i in range(3)])
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "A1.png").write_text("not a picture")
    out = tmp_path / "toy"
    assert cli(["from-amazon", "--reviews", str(reviews), "--meta", str(meta), "--out", str(out),
                "--images", str(images)]) == 1
    captured = capsys.readouterr()
    assert "bytes that are not UTF-8" in captured.out and ":3:" in captured.out
    assert "cut short" in captured.err and str(reviews) in captured.err
    assert "images_unreadable 1" in captured.out
    inter = read_atomic(out / "toy.inter")[1]
    assert inter and not any("\ufffd" in cell for row in inter for cell in row)
    assert {r[0]: r for r in read_atomic(out / "toy.item")[1]}["A1"][5] == ""
    assert cli(["from-amazon", "--reviews", str(reviews), "--meta", str(meta), "--out", str(out),
                "--images", str(tmp_path / "NOPE")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_from_amazon_2018_format_downloads_images(tmp_path, image_server):
    reviews = _write(tmp_path / "Toy_5.json", _reviews(), gz=False)
    meta = _write(tmp_path / "meta_Toy.json.gz", [
        json.dumps({"asin": "A0", "title": "Ball", "category": ["Sports", "Balls"],
                    "description": ["Round.", "Red."], "imageURLHighRes": [f"{image_server}/A0.jpg"]}),
        json.dumps({"asin": "A1", "title": "Tent", "image": [f"{image_server}/A1.jpg"]}),
        json.dumps({"asin": "A2", "title": "Bad", "image": [f"{image_server}/A2.jpg"]}),
    ])
    out = tmp_path / "toy18"
    from dataset_tools.from_amazon import convert

    report = convert(reviews, meta, out, "toy18", download_images=True, retries=1, progress=False)
    items = {r[0]: r for r in read_atomic(out / "toy18.item")[1]}
    assert items["A0"][5] == "images/A0.jpg" and items["A1"][5] == "images/A1.jpg"
    assert items["A0"][4] == "Round. Red." and items["A0"][2] == "Sports Balls"
    assert items["A2"][5] == "" and report.counts["images_failed"] == 1
    assert "not an image" in (out / "images" / "failed.tsv").read_text()
    assert not list((out / "images").glob("*.part"))
    # a re-run finds the images there and fetches nothing again
    from dataset_tools.download import download_all
    again = download_all([(f"{image_server}/A0.jpg", out / "images" / "A0.jpg")], progress=False)
    assert again.skipped == 1 and again.fetched == 0
    assert validate_dataset(out, "toy18").ok


def test_unreachable_image_is_reported_not_fatal(tmp_path):
    from dataset_tools.download import fetch

    reason = fetch("http://127.0.0.1:9/none.jpg", tmp_path / "x.jpg", timeout=1, retries=1, backoff=0.01)
    assert reason and "Error" in reason and not (tmp_path / "x.jpg").exists()


def test_dataset_tools_import_no_torch():
    code = ("import sys, dataset_tools.__main__, dataset_tools.validate, dataset_tools.sessions, "
            "dataset_tools.from_amazon, dataset_tools.stats, dataset_tools.demo; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
