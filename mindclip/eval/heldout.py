"""Periodic evaluation on a held-out set while training (`train.eval_every`, `train.eval_data`).

    evaluator = HeldOutEvaluator(model, "demo_out/data", batch_size=64)   # once
    metrics = evaluator()   # every eval_every steps: {"zeroshot/top1": ..., "retrieval/image_to_text_R@1": ...}

`data` is one of:
- a demo data folder (`tools/make_demo_data.py`): zero-shot on `val_labels.tsv` with its
  `classnames.txt` / `templates.txt`, and retrieval on `val_captions.json`;
- a retrieval CSV (image and caption columns) or a Karpathy-split JSON (split "test", images
  relative to the JSON's folder): retrieval only.

The encoders are compiled on the first call and reused; the model's train/eval mode is restored.
"""
import os

from mindclip.eval import datasets
from mindclip.eval.encode import as_encoders
from mindclip.eval.metrics import classification_metrics, retrieval_metrics
from mindclip.eval.prompts import load_prompts_file
from mindclip.eval.zeroshot import build_zero_shot_classifier, zero_shot_scores


def load_heldout(data):
    """(ClassificationSet or None, ZeroShotPrompts or None, RetrievalSet or None) for `data` (module doc)."""
    if os.path.isdir(data):
        if not datasets.is_demo_folder(data):
            raise ValueError(f"{data}: not a demo data folder (no {datasets.DEMO_LABELS} or {datasets.DEMO_CAPTIONS})")
        labelled = prompts = captioned = None
        if os.path.isfile(os.path.join(data, datasets.DEMO_LABELS)):
            labelled = datasets.read_demo_classification(data)
            prompts = load_prompts_file(os.path.join(data, datasets.DEMO_CLASSNAMES),
                                        os.path.join(data, datasets.DEMO_TEMPLATES))
        if os.path.isfile(os.path.join(data, datasets.DEMO_CAPTIONS)):
            captioned = datasets.read_demo_retrieval(data)
        return labelled, prompts, captioned
    if data.lower().endswith(".json"):
        return None, None, datasets.read_karpathy_json(data, os.path.dirname(os.path.abspath(data)))
    if data.lower().endswith((".csv", ".tsv")):
        return None, None, datasets.read_retrieval_csv(data)
    raise ValueError(f"held-out data {data!r} must be a demo folder, a retrieval CSV/TSV or a Karpathy JSON")


class HeldOutEvaluator:
    """Zero-shot and/or retrieval metrics of a CLIP on one held-out set, with graphs compiled once.

    Args:
        model: the CLIP being trained (its weights are read at each call), or `ClipEncoders` of it.
        data: see the module doc.
        tokenizer: callable `tokenizer(texts, context_length)`; default `mindclip.tokenize`.
        batch_size, num_workers: as in `ClipEncoders`.
    """

    def __init__(self, model, data, tokenizer=None, batch_size=64, num_workers=2):
        if tokenizer is None:
            from mindclip.tokenizer import tokenize as tokenizer
        self.tokenizer = tokenizer
        self.labelled, self.prompts, self.captioned = load_heldout(data)
        self.encoders = as_encoders(model, batch_size=batch_size, num_workers=num_workers)

    def __call__(self, progress=False):
        """A flat dict of metrics: `zeroshot/<name>` and `retrieval/<name>`."""
        out, features = {}, None
        if self.labelled is not None:
            classifier = build_zero_shot_classifier(self.encoders, self.tokenizer, self.prompts.classnames,
                                                    self.prompts.templates)
            features = self.encoders.encode_images(self.labelled.images, progress=progress)  # (N, E)
            scores = zero_shot_scores(features, classifier)
            out.update({f"zeroshot/{k}": v for k, v in classification_metrics(scores, self.labelled.labels).items()})
        if self.captioned is not None:
            same_images = features is not None and self.captioned.images.paths == self.labelled.images.paths
            images = features if same_images else self.encoders.encode_images(self.captioned.images, progress=progress)
            texts = self.encoders.encode_texts(self.captioned.captions, self.tokenizer, progress=progress)
            metrics = retrieval_metrics(images, texts, self.captioned.text_image_ids)
            out.update({f"retrieval/{k}": v for k, v in metrics.items()})
        return out
