"""One-off generator of the golden reference data in ``ut/data`` (see README.md there).

Runs only in the reference environment (torch + open_clip), never from the tests:

    cd /work/main && /work/refvenv/bin/python ut/data/make_goldens.py

Writes
  * ``tokenizer_golden.json``: ``open_clip.tokenize`` ids of the texts in ``GOLDEN_TEXTS``;
  * ``text_tower_golden.npz``: weights, inputs and outputs of open_clip's ``TextTransformer`` (tiny
    config, exact GELU and QuickGELU).
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(OUT_DIR)))  # the checkout's mindclip (a generator, not a tool)
from mindclip.bench.torchvision_stub import import_open_clip  # noqa: E402

_LONG_CAPTION = (
    "A very long caption that keeps going: a crowded farmers market on a sunny Saturday morning, "
    "with stalls of red tomatoes, green peppers, yellow squash, fresh bread, cheese, honey and flowers, "
    "children holding balloons, a street musician playing the violin beside a fountain, dogs on leashes, "
    "people carrying woven baskets, striped awnings flapping in the wind, and a clock tower in the distance."
)

GOLDEN_TEXTS = [
    # ordinary captions
    "a photo of a cat.",
    "A Photo Of A Dog Sitting On The Grass",
    "two people riding bicycles down a busy city street at night",
    "a close-up photograph of a red apple on a wooden table",
    "an aerial view of the Golden Gate Bridge, San Francisco",
    "This is a photo of a tench.",
    "a bad photo of the hamster.",
    # punctuation and contractions
    "Hello, world! How's it going? I'm fine; you're great: we'll see...",
    "don't, can't, won't, it's, they've, she'd, I'll",
    "IT'S A DOG'S LIFE, WE'RE HERE",
    '"quoted" (parenthesised) [bracketed] {braced}',
    "e-mail: someone@example.com, url: https://www.example.org/path?query=1&x=2",
    "!!!???...---***",
    "snake_case_words and #hashtags @mentions $100 50% off",
    # digits and numbers
    "1234567890",
    "the year 2023 had 365 days and 8,760 hours; pi is 3.14159",
    "version 1.2.3-beta, 4K resolution at 60fps, 1920x1080",
    "superscripts x² y³ and fractions ½ ¾, roman Ⅻ ⅻ, circled ① ②",
    "Arabic-Indic digits ٠١٢٣ and Devanagari १२३",
    # accents and other scripts
    "Größere Straßen führen über die Brücke in München",
    "Le garçon mange une crème brûlée à la fenêtre, où est l'élève ?",
    "El niño pequeño está en la montaña ¿verdad? ¡sí!",
    "İstanbul'da ılık bir gün",
    "Tiếng Việt có dấu",
    "一只猫坐在桌子上",
    "東京タワーの夜景、とてもきれいです。",
    "고양이가 소파 위에서 자고 있다",
    "قطة تجلس على الطاولة",
    "Кошка сидит на столе",
    "Η γάτα κάθεται στο τραπέζι",
    "बिल्ली मेज पर बैठी है",
    "แมวนั่งอยู่บนโต๊ะ",
    # emoji and symbols
    "a dog 🐶 and a cat 🐱 having fun 🎉👍🏽",
    "family 👨‍👩‍👧‍👦 and flag 🇩🇪",
    "em—dash en–dash … ellipsis © ® ™ € £ ¥ °C ±",
    "∑ ∫ √2 ≈ 1.414 ≠ ∞",
    # what ftfy.fix_text changes: combining marks (NFC), widths, ligatures, curly quotes
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "Z\u0351\u0360a\u0300l\u0346g\u0311o text",
    "ＡＢＣ　ｆｕｌｌｗｉｄｔｈ　１２３！",
    "ﾃｽﾄ ｶﾀｶﾅ",
    "ﬁne ﬂowers and ﬀ",
    "“Smart quotes” and ‘single’ and it’s",
    "it'ſ a teſt",
    "price \x80 5 and a \x85 ellipsis",
    # mojibake (UTF-8 read as Windows-1252 / Latin-1, common in web-crawled captions): ftfy repairs it
    "cafÃ© au lait",
    "naÃ¯ve cafÃ© in SÃ£o Paulo, Ã¼ber KÃ¶ln",
    "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
    "â€œquotedâ€\x9d and itâ€™s done âœ”",
    "a smiling face ðŸ˜€ on a mug",
    "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
    "caf&eacute; next to cafÃ©, and a legitimate pair: ß€ and Ã©tude",
    "line one cafÃ©\nline two Ã¼ber",
    # HTML entities
    "fish &amp; chips",
    "&lt;b&gt;bold&lt;/b&gt; text",
    "it&#39;s a &quot;test&quot; &#x263A; &hearts;",
    "double escaped &amp;amp; and &amp;lt;tag&amp;gt;",
    "uppercase entity &EACUTE;T&EACUTE; and &NTILDE;",
    "real <b>html</b> keeps &amp;amp;amp; after a tag",
    "line one &amp;amp;amp;\nline two <i>x</i>\nline three &amp;amp;amp;",
    # whitespace and control characters
    "   leading and trailing spaces   ",
    "multiple    spaces\tand\ttabs\nand\nnewlines\r\nand windows",
    "non\u00a0breaking\u2003em\u3000ideographic spaces",
    "zero\u200bwidth\u200djoiner and soft\u00adhyphen",
    "bell\x07 and escape \x1b[31mred\x1b[0m text\x7f",
    "",
    "   \n\t  ",
    # special-token spellings
    "literal <start_of_text> and <end_of_text> markers",
    "OpenAI markers <|startoftext|> and <|endoftext|>",
    # length boundaries: 75 BPE ids fit exactly, 76 are cut, and a long caption
    " ".join(["a"] * 75),
    " ".join(["a"] * 76),
    _LONG_CAPTION,
]
SHORT_CONTEXT = 8
SHORT_CONTEXT_TEXTS = ["a photo of a cat.", "a b c d e f", "a b c d e f g", _LONG_CAPTION, ""]

TOWER_CONFIG = dict(context_length=77, vocab_size=1000, width=64, heads=4, layers=4, output_dim=32)
TOWER_EOT_POSITIONS = [5, 12, 30, 1, 50, 76]  # one row per position; id 999 = the row's unique maximum


def make_tokenizer_golden(oc_tokenizer, version):
    """open_clip.tokenize ids of every golden text (77 ids) and of a few texts at context 8."""
    def ids(text, context_length):
        return oc_tokenizer.tokenize([text], context_length=context_length)[0].tolist()

    with open(oc_tokenizer.default_bpe(), "rb") as file:
        vocab_sha256 = hashlib.sha256(file.read()).hexdigest()
    return {
        "generator": "ut/data/make_goldens.py",
        "function": f"open_clip.tokenize (open_clip_torch {version}), i.e. SimpleTokenizer(clean='lower')",
        "vocab_sha256": vocab_sha256,
        "context_length": 77,
        "cases": [{"text": text, "ids": ids(text, 77)} for text in GOLDEN_TEXTS],
        "short_context_length": SHORT_CONTEXT,
        "short_context_cases": [{"text": t, "ids": ids(t, SHORT_CONTEXT)} for t in SHORT_CONTEXT_TEXTS],
    }


def _round_to_bfloat16(tensor):
    """Keep 8 significant bits, so the compressed file stays small; values stay arbitrary."""
    return tensor.to(torch.bfloat16).to(torch.float32)


def build_text_tower(oc_transformer, act_layer, seed):
    """Tiny TextTransformer, random init, LayerNorms and biases perturbed to non-trivial values."""
    torch.manual_seed(seed)
    tower = oc_transformer.TextTransformer(**TOWER_CONFIG, act_layer=act_layer, norm_layer=oc_transformer.LayerNorm)
    with torch.no_grad():
        for name, param in tower.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_final.weight")):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            elif name.endswith("bias"):
                param.copy_(0.1 * torch.randn_like(param))
            param.copy_(_round_to_bfloat16(param))
    return tower.eval()


def make_tower_tokens(seed=1234):
    """(6, 77) int64: ids in [1, 998], EOT 999 at TOWER_EOT_POSITIONS[row], zeros after."""
    generator = torch.Generator().manual_seed(seed)
    length = TOWER_CONFIG["context_length"]
    tokens = torch.randint(1, 999, (len(TOWER_EOT_POSITIONS), length), generator=generator)
    for row, eot in enumerate(TOWER_EOT_POSITIONS):
        tokens[row, eot] = TOWER_CONFIG["vocab_size"] - 1
        tokens[row, eot + 1:] = 0
    return tokens


def make_tower_golden(oc_transformer):
    tokens = make_tower_tokens()
    arrays = {}
    for prefix, act_layer, seed in (("gelu", torch.nn.GELU, 0), ("quick_gelu", oc_transformer.QuickGELU, 1)):
        tower = build_text_tower(oc_transformer, act_layer, seed)
        tower.output_tokens = True
        with torch.no_grad():
            pooled, final_tokens = tower(tokens)
        for key, value in tower.state_dict().items():
            arrays[f"{prefix}/{key}"] = value.numpy().astype(np.float32)
        arrays[f"{prefix}/tokens"] = tokens.numpy().astype(np.int32)
        arrays[f"{prefix}/pooled"] = pooled.numpy().astype(np.float32)
        arrays[f"{prefix}/final_tokens"] = final_tokens.numpy().astype(np.float32)
    return arrays


def main():
    oc = import_open_clip()
    oc_tokenizer, oc_transformer, version = oc.tokenizer, oc.transformer, oc.__version__
    golden = make_tokenizer_golden(oc_tokenizer, version)
    with open(os.path.join(OUT_DIR, "tokenizer_golden.json"), "w", encoding="utf-8") as file:
        file.write(json.dumps({k: v for k, v in golden.items() if not k.endswith("cases")}, ensure_ascii=False)[:-1])
        for key in ("cases", "short_context_cases"):  # one case per line keeps diffs readable
            rows = ",\n".join(json.dumps(case, ensure_ascii=False) for case in golden[key])
            file.write(f', "{key}": [\n{rows}\n]')
        file.write("}\n")
    path = os.path.join(OUT_DIR, "text_tower_golden.npz")
    np.savez_compressed(path, **make_tower_golden(oc_transformer))
    print(f"{len(GOLDEN_TEXTS)} texts, open_clip {version}; {path}: {os.path.getsize(path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
