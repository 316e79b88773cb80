"""Inference from an export folder alone: the two MINDIR files, the sidecar and the tokenizer.

    clip = ExportedCLIP("out/export")
    result = clip.zero_shot(["cat.jpg", "dog.png"], ["cat", "dog", "car"])
    result["labels"]                      # ['cat', 'dog']
    clip.similarity(["cat.jpg"], ["a photo of a cat", "a red car"])   # (1, 2) cosines

No checkpoint and no model code are loaded: the image tower is what `image_encoder.mindir` holds.
"""
import os

import numpy as np
import mindspore as ms
from PIL import Image

from mindclip.eval.prompts import check_prompts
from mindclip.export.mindir import load_tower
from mindclip.export.sidecar import SidecarError, read_sidecar, sidecar_path
from mindclip.tokenizer import default_tokenizer

DEFAULT_TEMPLATES = ("a photo of a {}.",)


class ImageReadError(ValueError):
    """An image file that is missing or cannot be decoded."""


class TextTooLongError(ValueError):
    """A text whose tokens (with SOT and EOT) do not fit the exported context length."""


def read_image(path):
    """Decode an image file into an RGB `PIL.Image`; `ImageReadError` names the file otherwise."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{path}: cannot read image ({e})") from None


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _unit_rows(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class ExportedCLIP:
    """The exported towers of one folder, with the preprocessing its sidecar records.

    Args:
        export_dir: folder written by `export_model` / `tools/export.py`.
        batch_size: images or texts run per call of a tower (the files take any batch).

    Raises:
        SidecarError: the sidecar is missing, incomplete, of another format version, does not match
            the MINDIR files beside it, or was written for another tokenizer vocabulary or
            another image normalisation than this mindclip's.
    """

    def __init__(self, export_dir, batch_size=64):
        self.export_dir = export_dir
        self.batch_size = int(batch_size)
        self.sidecar = read_sidecar(export_dir)
        image, text = self.sidecar["image"], self.sidecar["text"]
        self.image_size = int(image["image_size"])
        self.context_length = int(text["context_length"])
        self.embed_dim = int(self.sidecar["model"]["embed_dim"])
        self.logit_scale = float(self.sidecar["model"]["logit_scale"])
        self.tokenizer = default_tokenizer()
        self._check_preprocessing()
        self._image_tower = load_tower(os.path.join(export_dir, image["file"]), image["input"]["shape"], ms.float32)
        self._text_tower = load_tower(os.path.join(export_dir, text["file"]), text["input"]["shape"], ms.int32)

    def _check_preprocessing(self):
        """The tokenizer and the image normalisation here must be those the export was made with."""
        from mindclip.data import CLIP_MEAN, CLIP_STD

        where = sidecar_path(self.export_dir)
        if self.sidecar["text"]["tokenizer_vocab_sha256"] != self.tokenizer.vocab_sha256:
            raise SidecarError(f"{where}: 'text.tokenizer_vocab_sha256' is {self.sidecar['text']['tokenizer_vocab_sha256']}"
                               f", but this mindclip's tokenizer vocabulary has {self.tokenizer.vocab_sha256}")
        for key, expected in (("mean", CLIP_MEAN), ("std", CLIP_STD)):
            if not np.allclose(self.sidecar["image"][key], expected, rtol=0, atol=1e-7):
                raise SidecarError(f"{where}: 'image.{key}' is {self.sidecar['image'][key]}, but "
                                   f"mindclip.data.preprocess_image uses {list(expected)}")

    # ------------------------------------------------------------------ inputs
    def preprocess(self, image):
        """A path or PIL image -> (3, S, S) float32, the eval transform at the exported size."""
        from mindclip.data import preprocess_image

        pil = read_image(image) if isinstance(image, (str, os.PathLike)) else image
        return preprocess_image(pil, self.image_size)

    def _image_batch(self, images):
        """Paths / PIL images -> (N, 3, S, S); an array is taken as already preprocessed."""
        if isinstance(images, np.ndarray):
            expected = (3, self.image_size, self.image_size)
            if images.ndim != 4 or images.shape[1:] != expected:
                raise ValueError(f"preprocessed images must be (N, {', '.join(map(str, expected))}), got {images.shape}")
            return images.astype(np.float32)
        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        return np.stack([self.preprocess(image) for image in images])

    def tokenize(self, texts):
        """Texts -> (N, context_length) int32; a text that would be truncated raises `TextTooLongError`."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for index, text in enumerate(texts):
            count = len(self.tokenizer.encode(text)) + 2  # SOT and EOT
            if count > self.context_length:
                raise TextTooLongError(f"text {index} ({text[:40]!r}...) has {count} tokens with SOT/EOT, more than "
                                       f"the exported context length {self.context_length}")
        return self.tokenizer(texts, self.context_length)

    # ------------------------------------------------------------------ towers
    def _run(self, tower, inputs):
        chunks = [tower(ms.Tensor(inputs[i:i + self.batch_size])).asnumpy()
                  for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, self.embed_dim), np.float32)

    def encode_images(self, images):
        """Paths, PIL images, or a preprocessed (N, 3, S, S) array -> unit embeddings (N, E) float32."""
        return self._run(self._image_tower, self._image_batch(images))

    def encode_tokens(self, tokens):
        """Token rows (N, context_length) int32 (e.g. from `tokenize`) -> unit embeddings (N, E) float32."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.context_length:
            raise ValueError(f"tokens must be (N, {self.context_length}), got {tokens.shape}")
        return self._run(self._text_tower, tokens.astype(np.int32))

    def encode_texts(self, texts):
        """Texts -> unit embeddings (N, E) float32 (`TextTooLongError` rather than truncation)."""
        return self.encode_tokens(self.tokenize(texts))

    # ------------------------------------------------------------------ tasks
    def class_embeddings(self, classnames, templates=None):
        """(C, E) unit rows: each class's template embeddings averaged then re-normalised (CLIP)."""
        templates = list(templates or DEFAULT_TEMPLATES)
        texts = [template.format(name) for name in classnames for template in templates]
        per_template = self.encode_texts(texts).reshape(len(classnames), len(templates), -1)
        return _unit_rows(per_template.mean(axis=1))

    def zero_shot(self, images, classnames, templates=None, top_k=5):
        """Zero-shot classification of `images` among `classnames`.

        Returns a dict: `probs` (N, C) softmax of `logit_scale * cosine`, `top` (N, k) class indices by
        decreasing probability, `labels` (N,) the predicted class names.
        """
        if top_k < 1:
            raise ValueError(f"zero_shot: top_k must be at least 1, got {top_k}")
        check_prompts(list(classnames), list(templates or DEFAULT_TEMPLATES), source="zero_shot")
        logits = self.logit_scale * self.encode_images(images) @ self.class_embeddings(classnames, templates).T
        probs = _softmax(logits)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :min(top_k, len(classnames))]
        return {"probs": probs, "top": top, "labels": [classnames[i] for i in top[:, 0]]}

    def similarity(self, images, captions):
        """(N_images, N_captions) cosine similarities of the image and caption embeddings."""
        return self.encode_images(images) @ self.encode_texts(captions).T
