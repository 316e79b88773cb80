"""mindclip.tokenizer against open_clip's ids (golden file made by ut/data/make_goldens.py)."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mindclip.tokenizer import VOCAB_PATH, VOCAB_SHA256, Tokenizer, clean_text, default_tokenizer, tokenize

SOT, EOT = 49406, 49407
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture(scope="module")
def golden():
    with open(os.path.join(DATA_DIR, "tokenizer_golden.json"), encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def test_every_golden_text_matches_open_clip(golden, tokenizer):
    texts = [case["text"] for case in golden["cases"]]
    expected = np.array([case["ids"] for case in golden["cases"]])
    rows = tokenizer(texts)
    mismatched = [text for text, got, want in zip(texts, rows, expected) if not np.array_equal(got, want)]
    assert not mismatched, f"ids differ from open_clip for {mismatched!r}"
    assert len(texts) >= 60


def test_short_context_golden_matches_open_clip(golden):
    for case in golden["short_context_cases"]:
        row = tokenize(case["text"], context_length=golden["short_context_length"])[0]
        assert row.tolist() == case["ids"], case["text"]


def test_rows_shape_dtype_and_layout(tokenizer):
    rows = tokenize(["a photo of a cat.", "a dog"])
    assert rows.shape == (2, 77) and rows.dtype == np.int32
    assert rows[1, :4].tolist() == [SOT, *tokenizer.encode("a dog"), EOT]
    assert not rows[1, 4:].any()
    single = tokenize("a dog", context_length=16)  # one str gives one row
    assert single.shape == (1, 16) and single[0, :4].tolist() == rows[1, :4].tolist()


def test_truncation_keeps_eot_last(tokenizer):
    text = " ".join(f"word{i}" for i in range(100))
    ids = tokenizer.encode(text)
    row = tokenize(text)[0]
    assert len(ids) > 75
    assert row[0] == SOT and row[-1] == EOT
    assert row[1:-1].tolist() == ids[:75]
    assert int(np.argmax(row)) == 76  # CLIP pools at the largest id


def test_empty_and_blank_texts():
    expected = [SOT, EOT] + [0] * 75
    assert tokenize("")[0].tolist() == expected
    assert tokenize(" \n\t ")[0].tolist() == expected
    assert tokenize([]).shape == (0, 77)


def test_decode_round_trip_on_plain_text(tokenizer):
    for text in ["a photo of a cat", "two dogs playing in the snow", "größere straßen in münchen", "一只猫"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text
        assert tokenizer.decode(tokenizer([text])[0]) == text  # a padded row decodes to its caption


def test_decode_refuses_ids_outside_vocabulary(tokenizer):
    with pytest.raises(ValueError, match="49408"):
        tokenizer.decode([320, 49408])


def test_clean_text_applies_open_clip_cleaning():
    raw = "  Fish &amp;amp; Chips\n\tＯＫ “yes” cafe\u0301 ﬁne "
    assert clean_text(raw) == 'fish & chips ok "yes" café fine'  # as open_clip's clean_fn gives it


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["ok", 5], [["nested"]]])
def test_non_string_input_is_refused(bad):
    with pytest.raises(TypeError, match="str"):
        tokenize(bad)


def test_encode_refuses_non_string(tokenizer):
    with pytest.raises(TypeError, match="bytes"):
        tokenizer.encode(b"a cat")


def test_context_length_too_small_is_refused():
    with pytest.raises(ValueError, match="context_length"):
        tokenize("a cat", context_length=1)


def test_constants_and_vocab_file(tokenizer):
    with open(VOCAB_PATH, "rb") as file:
        assert hashlib.sha256(file.read()).hexdigest() == VOCAB_SHA256
    assert VOCAB_SHA256.startswith("924691ac") and VOCAB_SHA256.endswith("804a")
    assert tokenizer.vocab_sha256 == VOCAB_SHA256
    assert (tokenizer.sot_token_id, tokenizer.eot_token_id, tokenizer.pad_token_id) == (SOT, EOT, 0)
    assert tokenizer.vocab_size == 49408 and tokenizer.context_length == 77
    assert tokenizer.decode([SOT + 1]) == "" and tokenizer.encode("<end_of_text>") == [EOT]


def test_custom_context_length_is_the_default_row_length():
    assert Tokenizer(context_length=12)(["a cat"]).shape == (1, 12)


def test_mojibake_is_repaired_as_open_clip_repairs_it(golden):
    mojibake = [case for case in golden["cases"] if "Ã" in case["text"] or "â€" in case["text"]]
    assert len(mojibake) >= 5  # the golden set holds open_clip's ids for these (ut/data/make_goldens.py)
    for case in mojibake:
        assert tokenize(case["text"])[0].tolist() == case["ids"], case["text"]
    assert clean_text("CafÃ© au lait, doesnÃ¢â‚¬â„¢t") == "café au lait, doesn't"
    assert tokenize("cafÃ© au lait").tolist() == tokenize("café au lait").tolist()


def test_tokenizer_imports_ftfy_but_neither_mindspore_nor_torch():
    code = "import sys, mindclip.tokenizer; print(sorted({'mindspore', 'torch', 'ftfy', 'regex'} & set(sys.modules)))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['ftfy']"
