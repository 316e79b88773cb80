"""mindclip.tokenizer against open_clip's ids (golden file made by ut/data/make_goldens.py)."""
import hashlib
import io
import json
import os
import subprocess
import sys
import tokenize as py_tokenize

import numpy as np
import pytest

from mindclip.tokenizer import (EOT_ID, MASK_ID, PAD_ID, SOT_ID, VOCAB_PATH, VOCAB_SHA256, VOCAB_SIZE, Tokenizer,
                                clean_text, default_tokenizer, tokenize)

SOT, EOT = 49406, 49407  # open_clip's ids, typed here as the independent reference
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "ut", "data")


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
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['ftfy']"


def test_tokenizer_and_masking_depend_on_nothing_heavy():
    """The tokenizer imports no other mindclip module; MLM masking (which takes its ids) stays NumPy-only."""
    code = ("import sys, mindclip.tokenizer; print(sorted(m for m in sys.modules if m.startswith('mindclip')));"
            "import mindclip.data.masking; print('mindspore' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["['mindclip',", "'mindclip.tokenizer']", "False"]


def test_special_ids_are_open_clips(golden):
    assert (SOT_ID, EOT_ID, PAD_ID, VOCAB_SIZE, MASK_ID) == (SOT, EOT, 0, 49408, 49408)
    for case in golden["cases"]:  # open_clip's rows: SOT first, EOT the largest id, zeros after the last EOT
        ids = case["ids"]
        end = len(ids) - 1 - ids[::-1].index(EOT_ID)
        assert ids[0] == SOT_ID and max(ids) == EOT_ID and set(ids[end + 1:]) <= {PAD_ID}, case["text"]


# Files allowed to spell the special ids (or the vocabulary sizes 49408/49409) as numbers.
_SPELLS_IDS = {
    "mindclip/tokenizer.py": "defines them",
    "ut/test_tokenizer.py": "the independent reference",
}


def _id_literals(path):
    """(line, number) of every numeric literal 49406..49409 in the Python file (strings and comments aside)."""
    with open(path, encoding="utf-8") as file:
        tokens = py_tokenize.generate_tokens(io.StringIO(file.read()).readline)
        return [(t.start[0], t.string) for t in tokens
                if t.type == py_tokenize.NUMBER and t.string in ("49406", "49407", "49408", "49409")]


def test_special_ids_are_defined_only_in_the_tokenizer():
    found = []
    for folder in ("mindclip", "tools", "ut"):
        for where, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in (n for n in names if n.endswith(".py")):
                relative = os.path.relpath(os.path.join(where, name), ROOT).replace(os.sep, "/")
                if relative not in _SPELLS_IDS:
                    found += [f"{relative}:{line}: {number}" for line, number in _id_literals(os.path.join(where, name))]
    assert not found, "import SOT_ID / EOT_ID / PAD_ID / MASK_ID / VOCAB_SIZE from mindclip.tokenizer: " + ", ".join(found)
