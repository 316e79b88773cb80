"""Conversion to MindRecord: every input format, bad samples counted, good ones stored exactly once.

Inputs are small real files written here; shards are read back with MindSpore's own MindDataset and
images decoded with PIL, independently of mindclip's pipeline.
"""
import collections
import io
import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

import mindclip  # noqa: F401
from mindclip.data.convert import convert, convert_files
from mindclip.data.images import SKIP_REASONS
from mindclip.data.sources import RawSample, SourceOptions
from mindclip.data.validate import RecordOptions
from tool_loader import load_tool


def _image_bytes(mode, size, fmt, seed):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = (rng.random((size[1], size[0], channels)) * 255).astype(np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


GOOD_IMAGES = {  # name -> bytes; an RGB JPEG, a PNG with alpha, a grayscale JPEG, a palette GIF
    "rgb.jpg": _image_bytes("RGB", (40, 30), "JPEG", 0),
    "alpha.png": _image_bytes("RGBA", (24, 36), "PNG", 1),
    "gray.jpg": _image_bytes("L", (33, 21), "JPEG", 2),
    "palette.gif": _image_bytes("RGB", (16, 16), "GIF", 3),
}
TRUNCATED = GOOD_IMAGES["rgb.jpg"][: len(GOOD_IMAGES["rgb.jpg"]) * 2 // 3]
CORRUPT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # a JPEG signature, then garbage
NOT_AN_IMAGE = b"this is a text file, not a picture\n"


def _expected_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _write(folder, name, data):
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("images"))
    for name, data in GOOD_IMAGES.items():
        _write(folder, f"img/{name}", data)
    _write(folder, "img/truncated.jpg", TRUNCATED)
    _write(folder, "img/corrupt.jpg", CORRUPT)
    _write(folder, "img/text.jpg", NOT_AN_IMAGE)
    return folder


def read_shards(out_dir, prefix="train", columns=("id", "key", "image", "caption")):
    """All rows of the shards, read by MindSpore's MindDataset (not by mindclip)."""
    import mindspore.dataset as ds

    files = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir)
                   if f.startswith(prefix + "-") and f.endswith(".mindrecord"))
    rows = []
    for row in ds.MindDataset(files, columns_list=list(columns), shuffle=False).create_dict_iterator(output_numpy=True):
        rows.append({k: (v.item() if v.ndim == 0 and k != "image" else v) for k, v in row.items()})
    return rows


def check_written(summary, out_dir, expected, skipped):
    """Shards hold exactly `expected` (caption -> image bytes), once each; counts match."""
    rows = read_shards(out_dir)
    assert summary.written == len(expected) == len(rows)
    assert sorted(r["id"] for r in rows) == list(range(len(rows)))
    assert collections.Counter(r["caption"] for r in rows) == collections.Counter(list(expected))
    for row in rows:
        np.testing.assert_array_equal(_expected_rgb(row["image"].tobytes()), _expected_rgb(expected[row["caption"]]))
    assert summary.skipped == {reason: skipped.get(reason, 0) for reason in SKIP_REASONS}
    with open(summary.report, encoding="utf-8") as f:
        report = [line.rstrip("\n").split("\t") for line in f][1:]
    assert collections.Counter(r[1] for r in report) == collections.Counter(
        {k: v for k, v in skipped.items() if v})
    assert not [f for f in os.listdir(out_dir) if f.startswith(".partial")]
    return rows


def test_csv_with_every_kind_of_bad_sample(image_folder, tmp_path):
    lines = ["filepath\ttitle", "img/rgb.jpg\ta red thing", "img/alpha.png\ta see-through thing",
             "img/gray.jpg\tgrey, with \"quotes\" and ünïcödé", "img/palette.gif\ta palette image",
             "img/truncated.jpg\ttruncated", "img/corrupt.jpg\tcorrupt", "img/text.jpg\ttext file",
             "img/missing.jpg\tmissing", "img/rgb.jpg\t   ", "img/rgb.jpg"]
    data = ("\n".join(lines) + "\n").encode("utf-8") + b"img/rgb.jpg\tbad \xff\xfe bytes\n"
    csv_path = _write(image_folder, "pairs.csv", data)
    summary = convert_files(csv_path, str(tmp_path), progress_every_s=None, log=None)
    expected = {"a red thing": GOOD_IMAGES["rgb.jpg"], "a see-through thing": GOOD_IMAGES["alpha.png"],
                'grey, with "quotes" and ünïcödé': GOOD_IMAGES["gray.jpg"],
                "a palette image": GOOD_IMAGES["palette.gif"]}
    check_written(summary, str(tmp_path), expected, {"unreadable_image": 3, "missing_file": 1, "empty_caption": 1,
                                                     "bad_record": 1, "caption_not_utf8": 1})
    assert summary.line() == (f"written 4, skipped 7 (bad_record 1, missing_file 1, unreadable_image 3, "
                              f"empty_caption 1, caption_not_utf8 1), shards 1, bytes {summary.bytes}")
    assert summary.bytes == sum(os.path.getsize(p) + os.path.getsize(p + ".db") for p in summary.shards)


def test_jsonl_declip_format_and_parallel_workers(image_folder, tmp_path):
    records = [{"filename": "img/rgb.jpg", "caption": "one"}, {"filename": "img/alpha.png", "caption": "two"},
               {"filename": "img/nowhere.png", "caption": "three"}, {"filename": "img/gray.jpg", "caption": ""},
               {"filename": "img/gray.jpg"}, {"caption": "no file key"}]
    text = "\n".join(json.dumps(r) for r in records) + "\n{not json\n\n" + json.dumps(
        {"filename": "img/palette.gif", "caption": "four"}) + "\n"
    path = _write(image_folder, "meta.jsonl", text.encode())
    expected = {"one": GOOD_IMAGES["rgb.jpg"], "two": GOOD_IMAGES["alpha.png"], "four": GOOD_IMAGES["palette.gif"]}
    skipped = {"missing_file": 1, "empty_caption": 2, "bad_record": 2}
    single = convert_files(path, str(tmp_path / "w1"), progress_every_s=None, log=None)
    rows_1 = check_written(single, str(tmp_path / "w1"), expected, skipped)
    double = convert_files(path, str(tmp_path / "w2"), workers=2, progress_every_s=None, log=None)
    rows_2 = check_written(double, str(tmp_path / "w2"), expected, skipped)
    assert [(r["id"], r["caption"]) for r in rows_1] == [(r["id"], r["caption"]) for r in rows_2]


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_webdataset_tars_as_img2dataset_writes_them(tmp_path):
    folder = str(tmp_path)
    _tar(os.path.join(folder, "00000.tar"), [
        ("000000000.jpg", GOOD_IMAGES["rgb.jpg"]), ("000000000.txt", b"caption from txt"),
        ("000000000.json", json.dumps({"caption": "ignored: txt wins", "key": "000000000"}).encode()),
        ("000000001.png", GOOD_IMAGES["alpha.png"]), ("000000001.json", json.dumps({"caption": "from json"}).encode()),
        ("000000002.jpg", TRUNCATED), ("000000002.txt", b"truncated image"),
        ("000000003.txt", b"no image at all"),
        ("000000004.jpg", GOOD_IMAGES["gray.jpg"]), ("000000004.txt", b"latin-1 \xe9t\xe9"),
        ("000000005.jpg", GOOD_IMAGES["gray.jpg"]), ("000000005.txt", b"  grey in a tar\n"),
    ])
    members = [("100.jpg", GOOD_IMAGES["rgb.jpg"]), ("100.txt", b"before the cut"),
               ("101.jpg", GOOD_IMAGES["rgb.jpg"]), ("101.txt", b"lost in the cut")]
    cut_path = _tar(os.path.join(folder, "00001.tar"), members)
    with tarfile.open(cut_path) as tar:
        cut = tar.getmember("101.jpg").offset_data + 100  # inside the second image
    with open(cut_path, "r+b") as f:
        f.truncate(cut)
    summary = convert_files(os.path.join(folder, "{00000..00001}.tar"), os.path.join(folder, "out"),
                            progress_every_s=None, log=None)
    expected = {"caption from txt": GOOD_IMAGES["rgb.jpg"], "from json": GOOD_IMAGES["alpha.png"],
                "grey in a tar": GOOD_IMAGES["gray.jpg"], "before the cut": GOOD_IMAGES["rgb.jpg"]}
    check_written(summary, os.path.join(folder, "out"), expected,
                  {"unreadable_image": 1, "missing_file": 1, "caption_not_utf8": 1, "bad_record": 1})


def test_coco_and_karpathy_json(image_folder, tmp_path):
    coco = {"images": [{"id": 1, "file_name": "img/rgb.jpg"}, {"id": 2, "file_name": "img/missing.jpg"},
                       {"id": 3, "file_name": "img/gray.jpg"}],
            "annotations": [{"id": 10, "image_id": 1, "caption": "coco one"},
                            {"id": 11, "image_id": 1, "caption": "coco two"},
                            {"id": 12, "image_id": 2, "caption": "gone a"},
                            {"id": 13, "image_id": 2, "caption": "gone b"},
                            {"id": 14, "image_id": 3, "caption": " "},
                            {"id": 15, "image_id": 3, "caption": "coco grey"}]}
    coco_path = _write(image_folder, "captions_train2017.json", json.dumps(coco).encode())
    summary = convert_files(coco_path, str(tmp_path / "coco"), progress_every_s=None, log=None)
    check_written(summary, str(tmp_path / "coco"), {"coco one": GOOD_IMAGES["rgb.jpg"],
                                                    "coco two": GOOD_IMAGES["rgb.jpg"],
                                                    "coco grey": GOOD_IMAGES["gray.jpg"]},
                  {"missing_file": 2, "empty_caption": 1})
    karpathy = {"dataset": "flickr30k", "images": [
        {"filename": "rgb.jpg", "filepath": "img", "split": "train",
         "sentences": [{"raw": "k one"}, {"raw": "k two"}]},
        {"filename": "alpha.png", "filepath": "img", "split": "test", "sentences": [{"raw": "k test"}]},
        {"filename": "corrupt.jpg", "filepath": "img", "split": "restval", "sentences": [{"raw": "k bad"}]}]}
    karpathy_path = _write(image_folder, "dataset_flickr30k.json", json.dumps(karpathy).encode())
    summary = convert_files(karpathy_path, str(tmp_path / "k"),
                            source_options=SourceOptions(splits=("train", "restval")), progress_every_s=None, log=None)
    check_written(summary, str(tmp_path / "k"), {"k one": GOOD_IMAGES["rgb.jpg"], "k two": GOOD_IMAGES["rgb.jpg"]},
                  {"unreadable_image": 1})


def test_pyramidclip_summary_and_roi_columns(image_folder, tmp_path):
    rng = np.random.default_rng(0)
    good_roi = rng.normal(size=(3, 2052)).astype(np.float32)
    np.save(os.path.join(image_folder, "good.npy"), good_roi)
    np.save(os.path.join(image_folder, "empty.npy"), np.zeros((0, 2052), np.float32))
    np.save(os.path.join(image_folder, "narrow.npy"), np.zeros((3, 100), np.float32))
    np.save(os.path.join(image_folder, "nan.npy"), np.full((2, 2052), np.nan, np.float32))
    _write(image_folder, "junk.npy", b"not numpy")
    rows = ["filepath\ttitle\tshort\troi", "img/rgb.jpg\tfull caption\tsummary\tgood.npy",
            "img/alpha.png\tno boxes\tnone\tempty.npy", "img/rgb.jpg\tnarrow\ts\tnarrow.npy",
            "img/rgb.jpg\tnan\ts\tnan.npy", "img/rgb.jpg\tjunk\ts\tjunk.npy", "img/rgb.jpg\tno roi file\ts\tnope.npy",
            "img/rgb.jpg\tno summary\t\tgood.npy"]
    path = _write(image_folder, "pyramid.tsv", ("\n".join(rows) + "\n").encode())
    summary = convert_files(path, str(tmp_path), source_options=SourceOptions(summary_key="short", roi_key="roi"),
                            record_options=RecordOptions(with_summary=True, with_roi=True),
                            progress_every_s=None, log=None)
    # the pair without a summary is kept with its caption as summary (the documented fallback)
    assert summary.written == 3
    assert summary.skipped["bad_roi"] == 3 and summary.skipped["missing_file"] == 1
    assert summary.skipped["empty_caption"] == 0
    stored = {r["caption"]: r for r in read_shards(str(tmp_path), columns=("caption", "summary", "roi", "roi_count"))}
    assert stored["no summary"]["summary"] == "no summary"
    strict = convert_files(path, str(tmp_path / "strict"), source_options=SourceOptions(summary_key="short", roi_key="roi"),
                           record_options=RecordOptions(with_summary=True, with_roi=True, summary_fallback=False),
                           progress_every_s=None, log=None)
    assert strict.written == 2 and strict.skipped["empty_caption"] == 1
    assert stored["full caption"]["summary"] == "summary" and stored["full caption"]["roi_count"] == 3
    np.testing.assert_array_equal(stored["full caption"]["roi"].reshape(3, 2052), good_roi)
    assert stored["no boxes"]["roi_count"] == 0
    np.testing.assert_array_equal(stored["no boxes"]["roi"], np.zeros(2052, np.float32))


def test_shards_split_by_size_and_a_failed_conversion_changes_nothing(image_folder, tmp_path, capsys):
    good = os.path.join(image_folder, "img", "rgb.jpg")
    samples = [RawSample(f"s{i}", image=good, caption=f"caption {i}") for i in range(7)]
    summary = convert(samples, str(tmp_path / "ok"), shard_samples=3, progress_every_s=0, log=None)
    progress = capsys.readouterr().err.splitlines()
    assert progress[-1].startswith("[convert] 7 pairs: 7 written, 0 skipped")
    assert [os.path.basename(p) for p in summary.shards] == [f"train-0000{i}.mindrecord" for i in range(3)]
    rows = read_shards(str(tmp_path / "ok"))
    assert [(r["id"], r["caption"]) for r in rows] == [(i, f"caption {i}") for i in range(7)]

    def failing():
        yield from samples[:4]
        raise RuntimeError("disk full")

    out = str(tmp_path / "failed")
    with pytest.raises(RuntimeError, match="disk full"):
        convert(failing(), out, shard_samples=3, progress_every_s=None, log=None)
    assert os.listdir(out) == []  # nothing published: no partial dataset to train on by mistake
    # with overwrite, the earlier shards survive a failed conversion byte for byte and are replaced
    # only by a complete one
    ok = str(tmp_path / "ok")
    before = {name: open(os.path.join(ok, name), "rb").read() for name in os.listdir(ok) if "mindrecord" in name}
    with pytest.raises(RuntimeError, match="disk full"):
        convert(failing(), ok, shard_samples=3, progress_every_s=None, overwrite=True, log=None)
    assert {name: open(os.path.join(ok, name), "rb").read() for name in os.listdir(ok) if "mindrecord" in name} == before
    assert not [name for name in os.listdir(ok) if "staging" in name or name.endswith(".partial")]
    summary = convert(samples[:2], ok, progress_every_s=None, overwrite=True, log=None)
    assert [os.path.basename(p) for p in summary.shards] == ["train-00000.mindrecord"]
    assert [r["caption"] for r in read_shards(ok)] == ["caption 0", "caption 1"]
    with pytest.raises(FileExistsError):
        convert(samples, ok, progress_every_s=None, log=None)


def test_make_mindrecord_cli(image_folder, tmp_path, capsys):

    tool = load_tool("make_mindrecord")
    path = _write(image_folder, "cli.csv", b"image,text\nimg/rgb.jpg,cli one\nimg/missing.jpg,cli two\n")
    assert tool.main([path, "--out", str(tmp_path), "--prefix", "val", "--csv-img-key", "image",
                      "--csv-caption-key", "text", "--csv-separator", ",", "--quiet"]) == 0
    summary = json.loads((tmp_path / "val-summary.json").read_text())
    assert summary["written"] == 1 and summary["skipped"]["missing_file"] == 1
    assert capsys.readouterr().out.strip().endswith(f"written 1, skipped 1 (missing_file 1), shards 1, "
                                                    f"bytes {summary['bytes']}")
    assert [r["caption"] for r in read_shards(str(tmp_path), prefix="val")] == ["cli one"]


# One line per record: quotes and tabs inside captions. Each entry: (line text after the header,
# what a CSV read gives, what a TSV read gives); a caption is written, None is a bad_record.
QUOTE_AND_TAB_LINES = [
    ('img/rgb.jpg\t"Quoted start" then more words', None, '"Quoted start" then more words'),
    ("img/alpha.png\ta see-through thing", "a see-through thing", "a see-through thing"),
    ('img/gray.jpg\t"an unterminated quote', None, '"an unterminated quote'),
    ("img/palette.gif\ta palette image", "a palette image", "a palette image"),
    ('img/rgb.jpg\t"a fully ""quoted"" caption"', 'a fully "quoted" caption', '"a fully ""quoted"" caption"'),
    ("img/rgb.jpg\ta caption with\ta tab inside", None, None),  # 3 fields: never cut to "a caption with"
    ("img/alpha.png", None, None),  # 1 field
    ('img/gray.jpg\tsays "hi" mid-caption', 'says "hi" mid-caption', 'says "hi" mid-caption'),
]


@pytest.mark.parametrize("fmt, column", [("csv", 1), ("tsv", 2)])
def test_quotes_and_tabs_never_merge_or_cut_rows(image_folder, tmp_path, fmt, column):
    lines = ["filepath\ttitle"] + [entry[0] for entry in QUOTE_AND_TAB_LINES]
    path = _write(image_folder, f"quotes.{fmt}", ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    summary = convert_files(path, str(tmp_path), progress_every_s=None, log=None)
    expected = [entry[column] for entry in QUOTE_AND_TAB_LINES]
    written = [caption for caption in expected if caption is not None]
    bad_lines = [f"{path}:{i + 2}" for i, caption in enumerate(expected) if caption is None]
    assert [row["caption"] for row in read_shards(str(tmp_path))] == written  # in file order, none cut
    assert summary.written + summary.total_skipped == len(QUOTE_AND_TAB_LINES)  # every line accounted for
    assert summary.skipped["bad_record"] == len(bad_lines) == summary.total_skipped
    with open(summary.report, encoding="utf-8") as f:
        report = [line.rstrip("\n").split("\t") for line in f][1:]
    assert [r[0] for r in report] == bad_lines and {r[1] for r in report} == {"bad_record"}
    assert "3 fields where the header has 2" in report[-2 if fmt == "csv" else 0][2]


def test_make_mindrecord_refuses_a_csv_without_header_before_writing(image_folder, tmp_path, capsys):
    good = _write(image_folder, "good.csv", b"filepath\ttitle\nimg/rgb.jpg\ta red thing\n")
    headless = _write(image_folder, "headless.csv", b"img/rgb.jpg\ta red thing\nimg/alpha.png\talpha\n")
    out = tmp_path / "out"
    rc = load_tool("make_mindrecord").main([good, headless, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{headless}:1: the header ['img/rgb.jpg', 'a red thing'] has no column 'filepath'" in err
    assert "--csv-img-key" in err
    assert not out.exists()  # the good first file was not converted either: nothing half-done


def test_make_mindrecord_refuses_existing_shards_naming_the_flag(image_folder, tmp_path, capsys):
    tool = load_tool("make_mindrecord")
    path = _write(image_folder, "one.csv", b"filepath\ttitle\nimg/rgb.jpg\tfirst run\n")
    assert tool.main([path, "--out", str(tmp_path), "--quiet"]) == 0
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    capsys.readouterr()
    second = _write(image_folder, "two.csv", b"filepath\ttitle\nimg/alpha.png\tsecond run\n")
    assert tool.main([second, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and "overwrite=True" not in err and "--prefix train" in err
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == before  # untouched
    assert tool.main([second, "--out", str(tmp_path), "--quiet", "--overwrite"]) == 0
    assert [r["caption"] for r in read_shards(str(tmp_path))] == ["second run"]
