"""Encoders, zero-shot classifier, zero-shot and retrieval evaluation of a tiny CLIP, against
references computed without mindclip.eval: whole-batch tower calls and brute-force sorting."""
import json
import os

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

import mindclip
from mindclip.data.transforms import preprocess_image
from mindclip.eval import (ClipEncoders, HeldOutEvaluator, build_zero_shot_classifier, datasets,
                           evaluate_retrieval, evaluate_zero_shot)
from mindclip.models import ImageEncoder, TextEncoder

COLOURS = {"blue": (30, 40, 210), "green": (30, 200, 40), "red": (220, 30, 30)}
CLASSNAMES = ["blue", ["green", "lime"], "red", "violet"]  # "violet" has no images
TEMPLATES = ["a photo of a {} thing.", "a {} square"]
CAPTIONS = {"blue": ["a blue square", "blue", "a big blue block", "the colour blue", "blue on grey"],
            "green": ["a green square", "green", "grass green", "a lime block", "green on grey"],
            "red": ["a red square", "red", "crimson", "a red block", "red on grey"]}


def brute_rank(scores, positive):
    """0-based position of the first correct candidate; wrong ones first among equal scores."""
    order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), bool(positive[j])))
    return next(pos for pos, j in enumerate(order) if positive[j])


@pytest.fixture(scope="module")
def model():
    ms.set_seed(0)
    return mindclip.create_model("tiny_resnet18")


@pytest.fixture(scope="module")
def encoders(model):
    return ClipEncoders(model, batch_size=4, num_workers=2)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """An ImageFolder of 6 JPEGs of different sizes (2 per colour), with a Karpathy JSON of them."""
    root = tmp_path_factory.mktemp("eval_images")
    rng = np.random.default_rng(0)
    entries = []
    for name, colour in COLOURS.items():
        for i in range(2):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, size[::-1] + (3,)), 0, 255).astype(np.uint8)
            os.makedirs(root / name, exist_ok=True)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=95)
            entries.append({"filepath": name, "filename": f"{i}.jpg", "split": "test",
                            "sentences": [{"raw": c} for c in CAPTIONS[name]]})
    with open(root / "karpathy.json", "w") as f:
        json.dump({"images": entries}, f)
    return str(root)


@pytest.fixture(scope="module")
def reference(model, image_root):
    """Features from single whole-batch calls of fresh tower cells: full 77-token rows, no padding."""
    folder = datasets.read_image_folder(image_root)
    pixels = np.stack([preprocess_image(folder.images[i], 64) for i in range(len(folder))])
    image_features = ImageEncoder(model)(ms.Tensor(pixels)).asnumpy()
    prompts = [t.format(n) for name in CLASSNAMES for n in ([name] if isinstance(name, str) else name)
               for t in TEMPLATES]
    captions = [c for name in COLOURS for _ in range(2) for c in CAPTIONS[name]]  # 5 per image, folder order
    text_features = TextEncoder(model)(ms.Tensor(mindclip.tokenize(prompts + captions))).asnumpy()
    return {"labels": folder.labels, "images": image_features,
            "prompts": dict(zip(prompts, text_features[:len(prompts)])),
            "captions": text_features[len(prompts):]}


def test_encode_images_pads_the_last_batch_and_restores_train_mode(model, encoders, image_root, reference):
    folder = datasets.read_image_folder(image_root)  # 6 images: batches of 4 + 2 (padded)
    model.set_train(True)
    got = encoders.encode_images(folder.images, progress=False)
    assert model.training, "train mode must be restored"
    model.set_train(False)
    assert got.shape == (6, 32)
    np.testing.assert_allclose(got, reference["images"], atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_text_trimming_is_exact(encoders, reference):
    texts = list(reference["prompts"])[:6]
    got = encoders.encode_texts(texts, mindclip.tokenize, progress=False)  # cut to 16 tokens
    assert encoders.context_length == 77
    np.testing.assert_allclose(got, np.stack([reference["prompts"][t] for t in texts]), atol=2e-5)


def test_classifier_is_the_renormalised_mean_over_prompts(encoders, reference):
    got = build_zero_shot_classifier(encoders, mindclip.tokenize, CLASSNAMES, TEMPLATES, batch_size=4)
    assert got.shape == (32, len(CLASSNAMES))
    for index, name in enumerate(CLASSNAMES):
        prompts = [t.format(n) for n in ([name] if isinstance(name, str) else name) for t in TEMPLATES]
        mean = np.mean([reference["prompts"][p] for p in prompts], axis=0)
        np.testing.assert_allclose(got[:, index], mean / np.linalg.norm(mean), atol=2e-5)


def test_zero_shot_metrics_against_brute_force(encoders, image_root, reference):
    folder = datasets.read_image_folder(image_root, folder_names=["blue", "green", "red", "violet"])
    got = evaluate_zero_shot(encoders, mindclip.tokenize, folder, CLASSNAMES, TEMPLATES, ks=(1, 2), progress=False)

    classifier = []
    for name in CLASSNAMES:
        mean = np.mean([reference["prompts"][t.format(n)] for n in ([name] if isinstance(name, str) else name)
                        for t in TEMPLATES], axis=0)
        classifier.append(mean / np.linalg.norm(mean))
    scores = reference["images"] @ np.stack(classifier).T  # (6, 4)
    labels = reference["labels"]
    ranks = np.array([brute_rank(s, np.arange(4) == y) for s, y in zip(scores, labels)])
    assert got["top1"] == pytest.approx(np.mean(ranks == 0), abs=1e-9)
    assert got["top2"] == pytest.approx(np.mean(ranks < 2), abs=1e-9)
    per_class = [np.mean(ranks[labels == c] == 0) for c in range(3)]  # "violet" (3) has no images
    assert got["classes_evaluated"] == 3
    assert got["mean_per_class_recall"] == pytest.approx(np.mean(per_class), abs=1e-9)
    assert got["num_prompts"] == 10 and got["num_samples"] == 6


def test_retrieval_metrics_against_brute_force(encoders, image_root, reference):
    data = datasets.read_karpathy_json(os.path.join(image_root, "karpathy.json"), image_root)
    got = evaluate_retrieval(encoders, mindclip.tokenize, data, ks=(1, 5, 10), progress=False)

    sim = reference["images"] @ reference["captions"].T  # (6, 30)
    owner = np.repeat(np.arange(6), 5)
    i2t = np.array([brute_rank(sim[i], owner == i) for i in range(6)])
    t2i = np.array([brute_rank(sim[:, t], np.arange(6) == owner[t]) for t in range(30)])
    for k in (1, 5, 10):
        assert got[f"image_to_text_R@{k}"] == pytest.approx(np.mean(i2t < k), abs=1e-9)
        assert got[f"text_to_image_R@{k}"] == pytest.approx(np.mean(t2i < k), abs=1e-9)
    assert got["image_to_text_mean_rank"] == pytest.approx(np.mean(i2t + 1))
    assert got["text_to_image_mean_rank"] == pytest.approx(np.mean(t2i + 1))


def test_heldout_evaluator_on_demo_data(encoders, tmp_path):
    from mindclip.data.demo import make_demo_data

    make_demo_data(str(tmp_path), n_train=4, n_val=6, image_size=32, seed=1, log=lambda *a, **k: None)
    evaluator = HeldOutEvaluator(encoders, str(tmp_path))
    got = evaluator()
    names = mindclip.eval.load_prompts_file(str(tmp_path / "classnames.txt"), str(tmp_path / "templates.txt"))
    expected = evaluate_zero_shot(encoders, mindclip.tokenize, datasets.read_demo_classification(str(tmp_path)),
                                  names.classnames, names.templates, progress=False)
    assert got["zeroshot/top1"] == expected["top1"] and got["zeroshot/num_samples"] == 6
    assert got["retrieval/num_texts"] == 30 and 0 <= got["retrieval/image_to_text_R@1"] <= 1
