"""Evaluation: zero-shot classification and image-text retrieval (LightCLIP paper, Tables 1-3).

    from mindclip.eval import evaluate_zero_shot, load_eval_set
    eval_set = load_eval_set("zeroshot", "/data/cifar-10-batches-py", "cifar10")   # any layout, see eval_set.py
    metrics = evaluate_zero_shot(model, mindclip.tokenize, eval_set.data, eval_set.prompts.classnames,
                                 eval_set.prompts.templates)

Host-side pieces (readers, prompts, metrics, result files) import no MindSpore; the encoders
(`ClipEncoders`, `build_zero_shot_classifier`, `evaluate_*`) load it when first used.
Never imports `mindclip.train` or `mindclip.losses`.
"""
from mindclip.eval import datasets, metrics, results
from mindclip.eval.datasets import (ClassificationSet, RetrievalSet, read_cifar, read_classification_csv,
                                    read_image_folder, read_karpathy_json, read_retrieval_csv)
from mindclip.eval.encode import ClipEncoders
from mindclip.eval.eval_set import EvalSet, load_eval_set
from mindclip.eval.heldout import HeldOutEvaluator, load_heldout
from mindclip.eval.metrics import classification_metrics, retrieval_metrics
from mindclip.eval.prompts import ZeroShotPrompts, list_zero_shot_datasets, load_prompts_file, load_zero_shot_prompts
from mindclip.eval.retrieval import evaluate_retrieval
from mindclip.eval.zeroshot import build_zero_shot_classifier, evaluate_zero_shot

__all__ = ["datasets", "metrics", "results", "ClassificationSet", "RetrievalSet", "read_cifar",
           "read_classification_csv", "read_image_folder", "read_karpathy_json", "read_retrieval_csv",
           "ClipEncoders", "EvalSet", "load_eval_set", "HeldOutEvaluator", "load_heldout", "classification_metrics", "retrieval_metrics", "ZeroShotPrompts",
           "list_zero_shot_datasets", "load_prompts_file", "load_zero_shot_prompts", "evaluate_retrieval",
           "build_zero_shot_classifier", "evaluate_zero_shot"]
