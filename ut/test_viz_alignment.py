"""Token-alignment maps: geometry on synthetic tokens, the model features, checkpoints, the tool."""
import contextlib
import itertools

import numpy as np
import pytest
from PIL import Image

import mindclip
from mindclip.tokenizer import MASK_ID
from mindclip.viz import alignment
from tool_loader import load_tool

GRID = (3, 4)


@pytest.fixture(scope="module")
def tokenizer():
    return mindclip.Tokenizer()


def _orthonormal_rows(n, dim, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q[:n]  # (n, dim), orthonormal


def _synthetic(tokenizer, caption, targets, dim=16, seed=0):
    """Image tokens = orthonormal patch vectors; each word token = the vector of its target patch mix."""
    image_tokens = _orthonormal_rows(GRID[0] * GRID[1], dim, seed)  # (12, dim)
    tokens, words = alignment.caption_words(tokenizer, caption, 16)
    rng = np.random.default_rng(seed + 1)
    text_tokens = rng.normal(size=(len(tokens), dim))  # SOT, EOT, pad: anything
    for (_, positions), mix in zip(words, targets):
        for p in positions:
            text_tokens[p] = sum(weight * image_tokens[patch] for patch, weight in mix.items())
    return image_tokens, text_tokens, tokens, words


def _brute_force_assignment(cost, n_words):
    """Minimum-cost injective word -> patch assignment by enumeration (independent of scipy)."""
    best = min(itertools.permutations(range(cost.shape[0]), n_words),
               key=lambda patches: sum(cost[p, w] for w, p in enumerate(patches)))
    return list(best)


def test_synthetic_similarity_and_assignment(tokenizer):
    # "circle" points at patch 5, "red" at patch 5 too but a little at 2: one-to-one, red must take 2.
    targets = [{5: 0.9, 2: 0.436}, {5: 1.0}, {11: 1.0}]
    image_tokens, text_tokens, tokens, words = _synthetic(tokenizer, "red circle left", targets)
    maps = alignment.align_tokens(image_tokens, text_tokens, tokens, words, GRID)
    assert [w.word for w in maps.words] == ["red", "circle", "left"]
    unit = text_tokens / np.linalg.norm(text_tokens, axis=1, keepdims=True)
    for word in maps.words:  # heat map = cosine computed by hand, in row-major grid order
        expected = (image_tokens @ unit[word.positions[0]]).reshape(GRID)
        np.testing.assert_allclose(word.similarity, expected, atol=1e-9)
    assert [int(w.similarity.argmax()) for w in maps.words] == [5, 5, 11]
    cost = 1 - image_tokens @ unit[[1, 2, 3]].T  # (12 patches, 3 words)
    expected_patches = _brute_force_assignment(cost, 3)
    assert expected_patches == [2, 5, 11]
    assert [w.matched for w in maps.words] == [[divmod(p, GRID[1])] for p in expected_patches]


def test_render_highlights_the_expected_patches(tokenizer):
    targets = [{5: 0.9, 2: 0.436}, {5: 1.0}, {11: 1.0}]
    maps = alignment.align_tokens(*_synthetic(tokenizer, "red circle left", targets), GRID)
    grey = Image.new("RGB", (50, 40), (128, 128, 128))  # uniform: the heat alone orders brightness
    figure, layout = alignment.render_alignment(grey, maps, panel_size=120)
    pixels = np.asarray(figure).astype(int)
    assert len(layout.panel_origins) == 1 + len(maps.words)
    for k, word in enumerate(maps.words, start=1):
        (row, col), = word.matched
        left, top, right, bottom = (int(round(v)) for v in layout.cell_box(k, row, col))
        outline = pixels[top + 1, left + 5:right - 5]  # inside the top edge of the matched cell
        assert (outline == alignment.MATCH_COLOR).all(), word.word
        centres = np.array([[pixels[int((b[1] + b[3]) / 2), int((b[0] + b[2]) / 2)].sum()
                             for b in (layout.cell_box(k, r, c) for c in range(GRID[1]))] for r in range(GRID[0])])
        assert centres.argmax() == word.similarity.argmax(), word.word  # hottest drawn cell = most similar patch
        for r, c in itertools.product(range(GRID[0]), range(GRID[1])):
            if (r, c) != (row, col):
                box = layout.cell_box(k, r, c)
                centre = pixels[int((box[1] + box[3]) / 2), int(box[0]) + 1]
                assert not (centre == alignment.MATCH_COLOR).all()


def test_a_word_of_several_tokens_is_one_panel(tokenizer):
    tokens, words = alignment.caption_words(tokenizer, "a zyxwvut, here", 16)
    assert [w for w, _ in words] == ["a", "zyxwvut,", "here"]
    pieces = words[1][1]
    assert len(pieces) == len(tokenizer.encode("zyxwvut,")) > 2
    assert list(tokens[pieces]) == tokenizer.encode("zyxwvut,")
    image_tokens = _orthonormal_rows(12, 16)
    text_tokens = np.random.default_rng(3).normal(size=(16, 16))
    maps = alignment.align_tokens(image_tokens, text_tokens, tokens, words, GRID)
    unit = text_tokens / np.linalg.norm(text_tokens, axis=1, keepdims=True)
    expected = (image_tokens @ unit[pieces].T).mean(axis=1).reshape(GRID)
    np.testing.assert_allclose(maps.words[1].similarity, expected, atol=1e-9)
    assert len(maps.words[1].matched) == len(pieces)  # 6 word tokens, 12 patches: every token matched


def test_more_words_than_patches_leaves_some_unmatched(tokenizer):
    tokens, words = alignment.caption_words(tokenizer, "one two three four five six", 16)
    rng = np.random.default_rng(0)
    maps = alignment.align_tokens(rng.normal(size=(4, 8)), rng.normal(size=(16, 8)), tokens, words, (2, 2))
    matched = [w.matched for w in maps.words]
    assert sum(len(m) for m in matched) == 4  # one-to-one: 4 patches, 6 words
    assert sorted(c for m in matched for c in m) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_bad_captions_and_words_are_refused(tokenizer):
    with pytest.raises(ValueError, match="no word tokens"):
        alignment.caption_words(tokenizer, "   ", 16)
    _, words = alignment.caption_words(tokenizer, "a red circle", 16)
    with pytest.raises(ValueError, match=r"\['square'\] are not in the caption"):
        alignment.select_words(words, ["red", "square"])
    assert [w for w, _ in alignment.select_words(words, ["Circle"])] == ["circle"]


# ----------------------------------------------------------------------------- with real towers
@contextlib.contextmanager
def pynative():
    """Reference computations run op by op: no second graph compile of the towers."""
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        yield
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def _model_identities(model, tokenizer, image):
    """The per-location tokens average to the global embedding; the EOT text token is the caption's."""
    import mindspore as ms
    from mindclip.data.transforms import preprocess_image

    weight, use_ln_post, _ = alignment.local_projection(model)
    features = alignment.AlignmentFeatures(model, use_ln_post)
    pixels = preprocess_image(image, model.config.image.image_size)[None]
    tokens = tokenizer(["a red circle on the left"], 77)
    flat, grid, text_tokens = features(pixels, tokens)  # graph mode
    with pynative():
        global_embedding = model.encode_image(ms.Tensor(pixels), normalize=False).asnumpy()[0]
        text_embedding = model.encode_text(ms.Tensor(tokens), normalize=False).asnumpy()[0]
    np.testing.assert_allclose((flat[0] @ weight).mean(axis=0), global_embedding, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(text_tokens[0, tokens[0].argmax()], text_embedding, rtol=1e-4, atol=1e-5)
    return grid, features


@pytest.mark.parametrize("name, overrides, grid", [
    ("tiny_mobilenetv2", {"image.image_size": 96}, (3, 3)),  # CNN feature map
    ("tiny_swin", {}, (2, 2)),  # Swin tokens reshaped to a map
])
def test_model_tokens_decompose_the_global_embedding(tokenizer, name, overrides, grid):
    model = mindclip.create_model(name, **overrides)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8))
    got_grid, features = _model_identities(model, tokenizer, image)
    assert got_grid == grid
    maps = alignment.compute_alignment(model, image, "a red circle", tokenizer, features=features)
    assert maps.grid == grid and all(w.matched is None for w in maps.words)  # no token projection: heat only
    assert maps.image_tokens_from == "global projection per location"


def test_tool_reads_the_token_projection_of_a_checkpoint(tmp_path, tokenizer):
    """A training-style checkpoint (MLM vocabulary, pretrain.image_token_proj) drives the assignment."""
    from mindclip.models.weights import save_weights

    visualize = load_tool("visualize")

    model = mindclip.create_model("tiny_mobilenetv2", **{"text.vocab_size": MASK_ID + 1})
    projection = np.random.default_rng(1).normal(size=(32, model.visual.stage_channels[3])).astype(np.float32)
    checkpoint = str(tmp_path / "ckpt.ckpt")
    save_weights(model, checkpoint, extra={alignment.TOKEN_PROJ_KEY: projection, "meta.step": 3})
    image_path = str(tmp_path / "image.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image_path)
    out = str(tmp_path / "align.png")
    maps = visualize.run(["align", "--model", "tiny_mobilenetv2", "--checkpoint", checkpoint, "--image", image_path,
                           "--caption", "a small red circle", "--out", out])
    assert maps.image_tokens_from == "token projection"
    assert [len(w.matched) for w in maps.words] == [1, 1, 1, 1]  # 4 words, 2x2 patches: a bijection
    assert sorted(c for w in maps.words for c in w.matched) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # the heat maps use the checkpoint's projection: recompute them from the model's own features
    import mindspore as ms
    from mindclip.data.transforms import preprocess_image

    loaded, token_proj = alignment.load_alignment_model("tiny_mobilenetv2", checkpoint)
    np.testing.assert_array_equal(token_proj, projection)
    tokens, words = alignment.caption_words(tokenizer, "a small red circle")
    with pynative():
        last = loaded.visual.forward_stages(ms.Tensor(preprocess_image(Image.open(image_path), 64)[None]))[3]
        final, _ = loaded.text.forward_tokens(ms.Tensor(tokens[None]))
        text_tokens = loaded.text.project_tokens(final).asnumpy()[0]  # (L, E)
    last = last.asnumpy()[0]  # (C, H, W)
    image_tokens = last.reshape(last.shape[0], -1).T @ projection.T  # (H*W, E), row-major grid
    expected = alignment.align_tokens(image_tokens, text_tokens, tokens, words, last.shape[1:])
    for got, want in zip(maps.words, expected.words):
        np.testing.assert_allclose(got.similarity, want.similarity, atol=1e-5)
        assert got.matched == want.matched
    with Image.open(out) as figure:
        assert figure.size[0] > 5 * 160


def test_vit_patches_go_through_ln_post_and_proj(tokenizer):
    import mindspore as ms
    from mindclip.data.transforms import preprocess_image

    model = mindclip.create_model("tiny_vit")  # 32 px, patch 8: a 4 x 4 grid
    image = Image.fromarray(np.random.default_rng(4).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    maps = alignment.compute_alignment(model, image, "a red circle", tokenizer)
    assert maps.grid == (4, 4) and maps.image_tokens_from == "ln_post + proj per patch"
    tokens, words = alignment.caption_words(tokenizer, "a red circle")
    with pynative():
        last = model.visual.forward_stages(ms.Tensor(preprocess_image(image, 32)[None]))[3]  # (1, W, 4, 4)
        patches = model.visual.ln_post(last.reshape(1, last.shape[1], -1).transpose(0, 2, 1))  # (1, 16, W)
        image_tokens = (patches @ model.visual.proj).asnumpy()[0]  # (16, E)
        final, _ = model.text.forward_tokens(ms.Tensor(tokens[None]))
        text_tokens = model.text.project_tokens(final).asnumpy()[0]
    expected = alignment.align_tokens(image_tokens, text_tokens, tokens, words, (4, 4), with_matching=False)
    for got, want in zip(maps.words, expected.words):
        np.testing.assert_allclose(got.similarity, want.similarity, atol=1e-5)


def test_attention_pooling_needs_a_token_projection():
    with pytest.raises(ValueError, match="pools with attention"):
        alignment.local_projection(mindclip.create_model("tiny_rn"))
