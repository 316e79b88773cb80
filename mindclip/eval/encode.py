"""Batched, graph-mode encoding of images and texts into normalised embeddings.

Graph mode compiles once per input shape, so every batch has the same shape: the last batch is
padded (by repeating its first item) to the fixed batch size and the padding rows are dropped.
Texts are tokenized to the model's context length and then cut to the smallest multiple of
`TEXT_LENGTH_STEP` that holds every text's EOT token: attention is causal and the caption is pooled
at EOT, so the positions after it change nothing (exact), and a few lengths means a few graphs.
"""
import concurrent.futures
import sys
from typing import Sequence

import numpy as np

TEXT_LENGTH_STEP = 16


def _progress(total, desc, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img" if desc == "images" else "txt", disable=not enabled,
                file=sys.stderr, dynamic_ncols=True, leave=False)


def pad_to(batch, size):
    """Pad (n, ...) to (size, ...) by repeating row 0; return (padded, n)."""
    n = len(batch)
    if n == size:
        return batch, n
    filler = np.repeat(batch[:1], size - n, axis=0)
    return np.concatenate([batch, filler], axis=0), n


def trimmed_length(tokens, context_length, step=TEXT_LENGTH_STEP):
    """Smallest multiple of `step` (at most `context_length`) that holds every row's EOT (its largest id)."""
    last = int(np.max(np.argmax(tokens, axis=1))) + 1 if len(tokens) else 1
    return min(context_length, -(-last // step) * step)


class ClipEncoders:
    """The image and text towers of one CLIP as graph-mode cells with a fixed batch size.

    Build it once and reuse it (e.g. for periodic evaluation while training): each new instance
    compiles its graphs again. The model is switched to inference mode while encoding and put back
    in the mode it was in afterwards.

    Args:
        model: a `mindclip` CLIP (see docs/architecture.md), with `model.config`.
        batch_size: rows per compiled call.
        num_workers: threads that decode and preprocess images.
    """

    def __init__(self, model, batch_size=256, num_workers=2):
        from mindclip.models.clip import ImageEncoder, TextEncoder

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.num_workers = max(1, int(num_workers))
        self.image_size = int(model.config.image.image_size)
        self.context_length = int(model.config.text.context_length)
        self._image_encoder = ImageEncoder(model, normalize=True)
        self._text_encoder = TextEncoder(model, normalize=True)

    def _run(self, cell, batch):
        import mindspore as ms

        padded, n = pad_to(batch, self.batch_size)
        was_training = self.model.training
        cell.set_train(False)
        try:
            out = cell(ms.Tensor(padded)).asnumpy()  # (batch_size, E), host sync point
        finally:
            self.model.set_train(was_training)
        return out[:n].astype(np.float32)

    def encode_images(self, images, progress=True) -> np.ndarray:
        """`images` (len() and [i] -> PIL.Image) -> (N, E) float32 normalised embeddings."""
        from mindclip.data.transforms import preprocess_image

        def load(index):
            return preprocess_image(images[index], self.image_size)  # (3, H, W) float32

        batches = [range(s, min(s + self.batch_size, len(images))) for s in range(0, len(images), self.batch_size)]
        if not batches:
            raise ValueError("no images to encode")
        out = []
        with concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool, \
                _progress(len(images), "images", progress) as bar:
            loading = pool.map(load, batches[0])  # map() submits at once: the batch loads in the background
            for i in range(len(batches)):
                batch = np.stack(list(loading))  # (b, 3, H, W)
                if i + 1 < len(batches):
                    loading = pool.map(load, batches[i + 1])  # prefetch while this batch runs
                out.append(self._run(self._image_encoder, batch))
                bar.update(len(batch))
        return np.concatenate(out)

    def encode_tokens(self, tokens, progress=True) -> np.ndarray:
        """(T, L) int token rows -> (T, E) float32 normalised embeddings."""
        tokens = np.asarray(tokens, dtype=np.int32)
        out = []
        with _progress(len(tokens), "texts", progress) as bar:
            for start in range(0, len(tokens), self.batch_size):
                batch = tokens[start:start + self.batch_size]
                out.append(self._run(self._text_encoder, batch))
                bar.update(len(batch))
        if not out:
            raise ValueError("no texts to encode")
        return np.concatenate(out)

    def encode_texts(self, texts: Sequence[str], tokenizer, progress=True) -> np.ndarray:
        """Tokenize `texts` with `tokenizer(texts, context_length)`, trim (exactly) and encode -> (T, E)."""
        tokens = np.asarray(tokenizer(list(texts), self.context_length))
        return self.encode_tokens(tokens[:, :trimmed_length(tokens, self.context_length)], progress)


def as_encoders(model, batch_size=256, num_workers=2) -> ClipEncoders:
    """`model` itself when it is already a ClipEncoders, else new encoders for that CLIP model."""
    if isinstance(model, ClipEncoders):
        return model
    return ClipEncoders(model, batch_size=batch_size, num_workers=num_workers)


__all__ = ["ClipEncoders", "as_encoders", "pad_to", "trimmed_length", "TEXT_LENGTH_STEP"]
