"""EDA-style caption augmentation: synonym replacement, random swap, random deletion.

Words are the caption's whitespace-separated pieces. Applied in this order:

1. synonym replacement: each word with an entry in the synonym table is replaced, with
   probability `synonym_prob`, by one of its synonyms chosen uniformly. Matching is on the word
   lower-cased without surrounding punctuation; the punctuation is kept.
2. random swap: ``round(swap_prob * n_words)`` times, two positions chosen uniformly swap words.
3. random deletion: each word is deleted with probability `delete_prob`; at least one word stays.

All randomness comes from the `numpy.random.Generator` passed in, so the result is a function of
the caption and the generator's state. A probability of 0 disables that step.

Synonym table files (`load_synonyms`): either TSV, one ``word<TAB>syn1,syn2,...`` per line (lines
starting with ``#`` are comments), or JSON, an object ``{"word": ["syn1", "syn2"], ...}``. Words
are matched lower-case; a synonym may hold spaces ("close to"). The default table
(``mindclip/data/synonyms.tsv``, about 460 common caption words) is used when no file is given.
"""
import dataclasses
import json
import os
import string

DEFAULT_SYNONYMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synonyms.tsv")
_PUNCTUATION = string.punctuation + "“”‘’"


def load_synonyms(path=None):
    """Read a synonym table (TSV or JSON, see module doc) -> {word: (synonym, ...)}."""
    path = path or DEFAULT_SYNONYMS_FILE
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith(".json"):
        try:
            table = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: invalid JSON synonym table: {e}") from None
        if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
            raise ValueError(f'{path}: a JSON synonym table must be {{"word": ["synonym", ...]}}')
        items = table.items()
    else:
        items = list(_tsv_items(path, text))
    return {word.strip().lower(): tuple(s.strip() for s in syns if s.strip()) for word, syns in items if syns}


def _tsv_items(path, text):
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{line_no}: expected 'word<TAB>syn1,syn2', got {line!r}")
        word, synonyms = line.split("\t", 1)
        yield word, synonyms.split(",")


@dataclasses.dataclass(frozen=True)
class TextAugmenter:
    """Caption augmentation with fixed probabilities; `augmenter(caption, rng) -> caption`."""

    synonyms: dict
    synonym_prob: float = 0.0
    swap_prob: float = 0.0
    delete_prob: float = 0.0

    @property
    def enabled(self):
        return self.synonym_prob > 0 or self.swap_prob > 0 or self.delete_prob > 0

    def __call__(self, caption, rng):
        words = caption.split()
        if not words:
            return caption
        if self.synonym_prob > 0:
            words = replace_synonyms(words, self.synonyms, self.synonym_prob, rng)
        if self.swap_prob > 0:
            words = swap_words(words, round(self.swap_prob * len(words)), rng)
        if self.delete_prob > 0:
            words = delete_words(words, self.delete_prob, rng)
        return " ".join(words)


def replace_synonyms(words, synonyms, prob, rng):
    """Each word with synonyms is replaced with probability `prob` (punctuation kept)."""
    out = []
    for word in words:
        core = word.strip(_PUNCTUATION)
        choices = synonyms.get(core.lower()) if core else None
        if choices and rng.random() < prob:
            start = word.index(core)
            word = word[:start] + choices[rng.integers(len(choices))] + word[start + len(core):]
        out.append(word)
    return out


def swap_words(words, n_swaps, rng):
    """Swap two uniformly chosen positions, `n_swaps` times."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(n_swaps):
        i, j = rng.integers(len(words), size=2)
        words[i], words[j] = words[j], words[i]
    return words


def delete_words(words, prob, rng):
    """Delete each word with probability `prob`; if all would go, keep one chosen uniformly."""
    keep = rng.random(len(words)) >= prob
    if not keep.any():
        return [words[rng.integers(len(words))]]
    return [w for w, k in zip(words, keep) if k]
