"""CLIP's byte-level BPE tokenizer, in pure Python and NumPy.

Gives exactly the ids of ``open_clip.tokenize`` (open_clip 3.3.0, the OpenAI-compatible
``SimpleTokenizer(clean='lower')``); ``ut/test_tokenizer.py`` checks this on the golden texts of
``ut/data/tokenizer_golden.json``. A row is ``[SOT, BPE ids..., EOT, 0, 0, ...]``; a text too long
for the context keeps its first ``context_length - 1`` ids with EOT written over the last one.

Text cleaning is open_clip's own: ``ftfy.fix_text`` (the ``ftfy`` package, as open_clip uses it,
mojibake repair included: ``"cafÃ©"`` -> ``"café"``), ``html.unescape`` twice, strip, whitespace
collapse, lower case.

The split pattern's ``\\p{L}`` (letters) and ``\\p{N}`` (numbers) are built for the stdlib ``re``
from the Unicode categories of ``unicodedata`` (no ``regex`` package). Checked against open_clip on
every assigned code point: they split alike everywhere in Python's Unicode version (14.0 for Python
3.11), U+0345 included (dropped by both); characters assigned later (the ``regex`` package follows
newer Unicode) may split differently. ``\\s`` differs only on U+1C..U+1F, which cleaning removes.

BPE results are cached per word: 10k ImageNet prompts take ~0.5-0.8 s (measured on a busy 2-core host).

Special tokens are spelled ``<start_of_text>`` and ``<end_of_text>`` as in open_clip (OpenAI CLIP
spells them ``<|startoftext|>``, ``<|endoftext|>``); a caption holding that literal text gets the
special id, as with open_clip.

The special ids ``SOT_ID``, ``EOT_ID``, ``PAD_ID`` and LightCLIP's MLM ``MASK_ID`` (one past the
vocabulary) are defined in this module only; the data, models and losses import them.
"""
import functools
import gzip
import hashlib
import html
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence

import ftfy
import numpy as np

VOCAB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "bpe_simple_vocab_16e6.txt.gz")
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
DEFAULT_CONTEXT_LENGTH = 77
SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
_NUM_MERGES = 49152 - 256 - 2  # merges used by CLIP: lines 1..48894 of the vocabulary file
_NO_MERGE = float("inf")

# The special ids, defined here only. They follow from the vocabulary's layout: 256 byte symbols,
# their 256 word-final forms, the merges, then SOT and EOT (`Tokenizer.__init__` checks the file).
PAD_ID = 0  # fills a row after EOT (as in open_clip; id 0 is also the byte "!", told apart by position)
SOT_ID = 2 * 256 + _NUM_MERGES  # 49406
EOT_ID = SOT_ID + 1  # 49407; CLIP pools the text at the largest id of a row, this one
VOCAB_SIZE = EOT_ID + 1  # 49408 ids
MASK_ID = VOCAB_SIZE  # 49408: LightCLIP's MLM [MASK], one past CLIP's vocabulary (its token table gets a row more)


# ----------------------------------------------------------------------------- text cleaning
def clean_text(text: str) -> str:
    """open_clip's ``clean='lower'``: ``ftfy.fix_text``, unescape HTML twice, collapse whitespace, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


# ----------------------------------------------------------------------------- pre-tokenization
def _char_class_ranges(chars):
    """Sorted characters -> the body of a regex character class, in consecutive ranges."""
    codes, parts, index = [ord(c) for c in chars], [], 0
    while index < len(codes):
        end = index
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        parts.append(f"\\U{codes[index]:08x}" + (f"-\\U{codes[end]:08x}" if end > index else ""))
        index = end + 1
    return "".join(parts)


_SPECIALS_AND_CONTRACTIONS = f"{re.escape(SOT_TOKEN)}|{re.escape(EOT_TOKEN)}|'s|'t|'re|'ve|'m|'ll|'d"
# The same split for ASCII text (most captions), where \p{L} is [a-zA-Z] and \p{N} is [0-9]: 2x faster.
_ASCII_SPLIT_PATTERN = re.compile(rf"{_SPECIALS_AND_CONTRACTIONS}|[a-zA-Z]+|[0-9]|[^\sa-zA-Z0-9]+",
                                  re.ASCII | re.IGNORECASE)


@functools.lru_cache(maxsize=None)
def _split_pattern():
    """CLIP's pre-tokenization pattern for the stdlib ``re`` (built once, ~0.15 s).

    open_clip: ``<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``
    with IGNORECASE. In ``re``, ``\\w`` is exactly letters + numbers + '_' and ``\\d`` is the decimal
    digits (Nd), so the other numbers (Nl, No: '²', '½', 'Ⅻ', ...) are listed explicitly.
    """
    codes = np.arange(0x110000, dtype="<u4")
    every_char = codes[(codes < 0xD800) | (codes > 0xDFFF)].tobytes().decode("utf-32-le")  # no surrogates
    word_chars = "".join(re.findall(r"[^\W\d_]+", every_char))  # letters and numbers but Nd
    other_numbers = _char_class_ranges(
        [c for c in word_chars if c.isnumeric() and unicodedata.category(c)[0] == "N"])
    letters = rf"[^\W\d_{other_numbers}]+"
    number = rf"[\d{other_numbers}]"
    # With IGNORECASE the regex package matches U+0345 (a combining mark whose case fold is the
    # letter 'ι') with none of the classes, so open_clip drops it; an exhaustive comparison over all
    # code points found no other such character.
    others = r"(?:[^\w\s\u0345]|_)+"
    return re.compile(rf"{_SPECIALS_AND_CONTRACTIONS}|{letters}|{number}|{others}", re.IGNORECASE)


# ----------------------------------------------------------------------------- byte-level BPE
@functools.lru_cache(maxsize=None)
def _bytes_to_unicode():
    """CLIP/GPT-2 map from the 256 byte values to printable characters (byte -> char)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, shift = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return dict(zip(printable, map(chr, chars)))


def _bpe(word, ranks):
    """Merge the symbols of one byte-encoded word, lowest merge rank first; returns the symbols."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    while len(symbols) > 1:
        pair_ranks = [ranks.get(pair, _NO_MERGE) for pair in zip(symbols, symbols[1:])]
        best_rank = min(pair_ranks)
        if best_rank == _NO_MERGE:
            break
        start = pair_ranks.index(best_rank)
        first, second = symbols[start], symbols[start + 1]
        merged, index = symbols[:start], start  # merge every occurrence of the pair, left to right
        while index < len(symbols):
            if index < len(symbols) - 1 and symbols[index] == first and symbols[index + 1] == second:
                merged.append(first + second)
                index += 2
            else:
                merged.append(symbols[index])
                index += 1
        symbols = merged
    return symbols


class Tokenizer:
    """CLIP's byte-level BPE tokenizer: ``tokenizer(texts) -> (N, context_length) int32`` ids.

    Args:
        vocab_path: gzipped BPE merges file (default: the copy shipped in ``mindclip/assets``).
        context_length: row length used when ``__call__`` is given none (77 for every CLIP model).

    Each distinct word's ids are cached (like open_clip), so repeated vocabulary costs one dict lookup.
    """

    sot_token_id = SOT_ID
    eot_token_id = EOT_ID
    pad_token_id = PAD_ID

    def __init__(self, vocab_path: str = VOCAB_PATH, context_length: int = DEFAULT_CONTEXT_LENGTH):
        with open(vocab_path, "rb") as file:
            raw = file.read()
        self.vocab_sha256 = hashlib.sha256(raw).hexdigest()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")[1:_NUM_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [SOT_TOKEN, EOT_TOKEN]
        self._encoder = {symbol: index for index, symbol in enumerate(vocab)}
        self._decoder = vocab
        self._ranks = {merge: rank for rank, merge in enumerate(merges)}
        self._byte_encoder = _bytes_to_unicode()
        self._byte_decoder = {char: byte for byte, char in self._byte_encoder.items()}
        self._cache = {}  # word -> ids
        self._pattern = _split_pattern()
        self.context_length = context_length
        if (self._encoder[SOT_TOKEN], self._encoder[EOT_TOKEN], len(vocab)) != (SOT_ID, EOT_ID, VOCAB_SIZE):
            raise ValueError(f"{vocab_path}: not CLIP's BPE vocabulary ({len(vocab)} symbols, expected {VOCAB_SIZE})")

    @property
    def vocab_size(self) -> int:
        """Number of ids (49408): 256 bytes, 256 word-final bytes, 48894 merges, SOT, EOT."""
        return VOCAB_SIZE

    def _word_ids(self, word):
        ids = self._cache.get(word)
        if ids is None:
            if word in (SOT_TOKEN, EOT_TOKEN):  # matched whole by the split pattern
                ids = self._cache[word] = [self._encoder[word]]
            else:
                encoded = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
                ids = self._cache[word] = [self._encoder[s] for s in _bpe(encoded, self._ranks)]
        return ids

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text after cleaning, without SOT/EOT."""
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer.encode expects a str, got {type(text).__name__}")
        ids = []
        text = clean_text(text)
        pattern = _ASCII_SPLIT_PATTERN if text.isascii() else self._pattern
        for word in pattern.findall(text):
            ids.extend(self._word_ids(word))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of BPE ids; a leading SOT is dropped and decoding stops at the first EOT (so a
        padded row decodes to its caption). Words are joined by single spaces, punctuation
        included ("a dog , running"); bytes that do not form UTF-8 become U+FFFD."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if ids and ids[0] == self.sot_token_id:
            ids = ids[1:]
        if self.eot_token_id in ids:
            ids = ids[:ids.index(self.eot_token_id)]
        unknown = [i for i in ids if not 0 <= i < self.vocab_size]
        if unknown:
            raise ValueError(f"Tokenizer.decode: ids {unknown[:5]} are outside the vocabulary [0, {self.vocab_size})")
        symbols = "".join(self._decoder[i] for i in ids)
        text = bytearray(self._byte_decoder[c] for c in symbols).decode("utf-8", errors="replace")
        return text.replace("</w>", " ").strip()

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> np.ndarray:
        """Token rows ``[SOT, ids..., EOT, 0...]`` of shape (N, context_length), int32.

        A single str gives N = 1. Texts too long keep EOT as their last token (open_clip's truncation).
        """
        context_length = self.context_length if context_length is None else int(context_length)
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (SOT and EOT), got {context_length}")
        texts = _as_text_list(texts)
        rows = np.zeros((len(texts), context_length), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id] + self.encode(text)[:context_length - 2] + [self.eot_token_id]
            rows[row, :len(ids)] = ids
        return rows


def _as_text_list(texts):
    """A str or a sequence of str -> list of str; anything else is refused naming what it got."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"tokenize expects a str or a sequence of str, got {type(texts).__name__}")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"tokenize: texts[{index}] is {type(text).__name__} ({text!r:.40}), expected str")
    return texts


@functools.lru_cache(maxsize=None)
def default_tokenizer() -> Tokenizer:
    """The shared Tokenizer on the shipped vocabulary (built on first use, ~0.3 s)."""
    return Tokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = DEFAULT_CONTEXT_LENGTH) -> np.ndarray:
    """Token rows (N, context_length) int32 of CLIP's tokenizer, like ``open_clip.tokenize``."""
    return default_tokenizer()(texts, context_length)
