"""Token-alignment maps (LightCLIP, Fig. 3): which image patches each caption word is matched to.

For an image and a caption the model gives image tokens (the last image stage, one per patch of its
H x W grid, projected to the joint space) and text tokens (ln_final outputs through the text
projection, as in the token-level loss). Per word:

- the similarity map: cosine(patch, word) over the grid, drawn as a heat map;
- the Hungarian assignment of the token-level loss (`mindclip.ops.hungarian.match_tokens` on the
  cost 1 - cosine over all word tokens of the caption, `text_word_mask`): the patches matched to
  the word, drawn as outlined cells. With more words than patches some words stay unmatched, as in
  the loss.

Image tokens. A checkpoint trained with the token loss holds its projection
(`pretrain.image_token_proj.weight`, Dense C4 -> E): the maps then show exactly what the loss
matched. Without it (a CLIP, or LightCLIP without L_token) the global projection is applied at
every location: for the mindcv towers (ResNet-18, MobileNet-V2, Swin-Nano) `visual.proj`, whose
output averaged over the grid *is* the global image embedding (the pool is a mean and the
projection is linear), so the map shows how each location contributes to the image-text score;
for ViT, `ln_post` then `proj` on every patch token. Only the similarity map is drawn then: no
assignment was ever trained. ModifiedResNet's attention pool has no per-location form: a token
projection is required there.

Panels are per word, not per BPE token: the caption is split at whitespace and each piece's BPE
tokens form one word ("strawberry," -> "straw", "berry", ","); its similarity map is the mean of
its tokens' maps and its matched patches are those of any of its tokens.
"""
import dataclasses
from typing import List, Optional, Tuple

import mindspore as ms
import numpy as np
from mindspore import nn
from PIL import Image, ImageDraw

from mindclip.data.transforms import preprocess_image
from mindclip.losses.token_alignment import text_word_mask
from mindclip.models import create_model
from mindclip.models.mindcv_tower import MindcvImageTower
from mindclip.models.weights import read_checkpoint
from mindclip.ops.hungarian import match_tokens
from mindclip.viz import draw

TOKEN_PROJ_KEY = "pretrain.image_token_proj.weight"
MATCH_COLOR = (0, 235, 255)
PATCH_LINE = (255, 255, 255)


@dataclasses.dataclass
class WordAlignment:
    word: str  # the word as the tokenizer sees it (lower case)
    positions: List[int]  # its token positions in the token row (SOT is position 0)
    similarity: np.ndarray  # (H, W) cosine with each patch, mean over the word's tokens
    matched: Optional[List[Tuple[int, int]]]  # (row, col) patches assigned to its tokens; None: no assignment


@dataclasses.dataclass
class AlignmentMaps:
    caption: str
    grid: Tuple[int, int]  # (H, W) of the last image stage
    words: List[WordAlignment]
    image_tokens_from: str  # "token projection" | "global projection per location" | "ln_post + proj per patch"


# ----------------------------------------------------------------------------- caption -> words
def caption_words(tokenizer, caption, context_length=77):
    """Token row (context_length,) int32 and the words [(word, [positions])] of `caption`.

    Positions are those of `text_word_mask` (not SOT, EOT or pad); words cut off by truncation are
    dropped. Raises ValueError when the caption has no word token.
    """
    tokens = np.asarray(tokenizer([caption], context_length))[0]  # (L,)
    valid = np.asarray(text_word_mask(tokens)).astype(bool)
    words, position = [], 1  # position 0 is SOT
    pieces = [tokenizer.encode(chunk) for chunk in caption.split()]
    if [i for ids in pieces for i in ids] != tokenizer.encode(caption):  # cleaning joined pieces: one panel per token
        pieces = [[i] for i in tokenizer.encode(caption)]
    for ids in pieces:
        kept = [p for p in range(position, position + len(ids)) if p < len(tokens) and valid[p]]
        if kept:
            words.append((tokenizer.decode(ids).replace(" ", ""), kept))
        position += len(ids)
    if not words:
        raise ValueError(f"caption {caption!r} has no word tokens (only start/end markers): nothing to align")
    return tokens.astype(np.int32), words


def select_words(words, wanted):
    """The entries of `words` whose word is in `wanted` (all when `wanted` is empty), in caption order."""
    if not wanted:
        return words
    known = [w for w, _ in words]
    missing = [w for w in wanted if w.lower() not in known]
    if missing:
        raise ValueError(f"words {missing} are not in the caption; its words are {known}")
    return [(w, p) for w, p in words if w in {x.lower() for x in wanted}]


# ----------------------------------------------------------------------------- host-side geometry
def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def align_tokens(image_tokens, text_tokens, tokens, words, grid, with_matching=True, caption="",
                 image_tokens_from="token projection"):
    """The alignment maps from projected tokens (NumPy; no model involved).

    Args:
        image_tokens: (H*W, E) image tokens in row-major grid order.
        text_tokens: (L, E) projected text tokens of the token row `tokens` (L,).
        words: [(word, [positions])] from `caption_words` (possibly a `select_words` subset).
        grid: (H, W) of the image tokens.
        with_matching: run the loss's Hungarian assignment over all word tokens of `tokens`.
    """
    height, width = grid
    image_tokens = np.asarray(image_tokens, np.float64)
    if image_tokens.shape[0] != height * width:
        raise ValueError(f"{image_tokens.shape[0]} image tokens do not fill a {height}x{width} grid")
    cosine = _unit(image_tokens) @ _unit(np.asarray(text_tokens, np.float64)).T  # (G, L)
    index = matched = None
    if with_matching:
        valid = np.asarray(text_word_mask(np.asarray(tokens)))[None]  # (1, L)
        index, matched = match_tokens((1.0 - cosine)[None].astype(np.float32), valid)
        index, matched = index[0], matched[0]  # (L,), (L,)
    out = []
    for word, positions in words:
        similarity = cosine[:, positions].mean(axis=1).reshape(height, width)
        cells = None
        if with_matching:
            cells = sorted({divmod(int(index[p]), width) for p in positions if matched[p] > 0})
        out.append(WordAlignment(word, list(positions), similarity, cells))
    return AlignmentMaps(caption, (height, width), out, image_tokens_from)


# ----------------------------------------------------------------------------- model side
def load_alignment_model(name, checkpoint=None, **overrides):
    """(CLIP, token projection weight (E, C4) or None) from a preset and a model/training checkpoint.

    `create_model` sizes the text table from the checkpoint (49409 rows after MLM).
    """
    model = create_model(name, checkpoint=checkpoint, **overrides)
    token_proj = read_checkpoint(checkpoint).get(TOKEN_PROJ_KEY) if checkpoint else None
    return model, (None if token_proj is None else np.asarray(token_proj, np.float32))


def local_projection(model):
    """How the model's own head maps one location to the joint space: (weight (C4, E), uses_ln_post, name)."""
    visual = model.visual
    if isinstance(visual, MindcvImageTower):
        return visual.proj.weight.asnumpy().T, False, "global projection per location"
    if hasattr(visual, "ln_post") and hasattr(visual, "proj"):
        return visual.proj.asnumpy(), True, "ln_post + proj per patch"
    raise ValueError(f"{type(visual).__name__} pools with attention: a similarity map needs the token "
                     f"projection of a checkpoint trained with the token loss ({TOKEN_PROJ_KEY})")


class AlignmentFeatureCell(nn.Cell):
    """(images (B,3,H,W), tokens (B,L)) -> (location features (B, H*W, C4), last map, text tokens (B, L, E)).

    Location features are the last image stage in row-major grid order, through `ln_post` for ViT
    (`use_ln_post`); text tokens are ln_final outputs through the text projection (the loss's).
    """

    def __init__(self, model, use_ln_post=False):
        super().__init__()
        self.model = model
        self.use_ln_post = use_ln_post

    def construct(self, images, tokens):
        last_map = self.model.visual.forward_stages(images)[3]  # (B, C4, H4, W4)
        batch, channels = last_map.shape[0], last_map.shape[1]
        flat = last_map.reshape(batch, channels, -1).transpose(0, 2, 1)  # (B, H4*W4, C4)
        if self.use_ln_post:
            flat = self.model.visual.ln_post(flat)
        final, _ = self.model.text.forward_tokens(tokens)  # (B, L, W)
        return flat, last_map, self.model.text.project_tokens(final)  # (B, L, E)


class AlignmentFeatures:
    """`AlignmentFeatureCell` compiled once per model, fed and read as NumPy."""

    def __init__(self, model, use_ln_post=False):
        self.cell = AlignmentFeatureCell(model, use_ln_post)
        self.cell.set_train(False)

    def __call__(self, images, tokens):
        """-> (location features (B, H*W, C4), grid (H, W), text tokens (B, L, E)) as NumPy."""
        flat, last_map, text_tokens = self.cell(ms.Tensor(images, ms.float32), ms.Tensor(tokens, ms.int32))
        return flat.asnumpy(), tuple(last_map.shape[2:]), text_tokens.asnumpy()


def compute_alignment(model, image, caption, tokenizer, token_proj=None, words=None, features=None):
    """AlignmentMaps of one PIL `image` and `caption` (see the module docstring for the choices).

    Args:
        model: a mindclip CLIP (with `model.config`).
        token_proj: (E, C4) weight of `pretrain.image_token_proj`, or None (similarity map only).
        words: show only these words (default: every word of the caption).
        features: an `AlignmentFeatures` to reuse (compiled graphs) across calls.
    """
    all_words = caption_words(tokenizer, caption, int(model.config.text.context_length))
    tokens, chosen = all_words[0], select_words(all_words[1], words)
    if token_proj is not None:
        weight, use_ln_post, source = np.asarray(token_proj, np.float32).T, False, "token projection"
    else:
        weight, use_ln_post, source = local_projection(model)
    features = features or AlignmentFeatures(model, use_ln_post)
    pixels = preprocess_image(image, int(model.config.image.image_size))[None]  # (1, 3, S, S)
    flat, grid, text_tokens = features(pixels, tokens[None])
    if flat.shape[-1] != weight.shape[0]:
        raise ValueError(f"token projection takes {weight.shape[0]} channels, the last image stage has "
                         f"{flat.shape[-1]}: checkpoint and model preset do not match")
    image_tokens = flat[0] @ weight  # (H*W, E)
    return align_tokens(image_tokens, text_tokens[0], tokens, chosen, grid, with_matching=token_proj is not None,
                        caption=caption, image_tokens_from=source)


# ----------------------------------------------------------------------------- drawing
@dataclasses.dataclass
class AlignmentLayout:
    """Where things are in the rendered figure (pixels): for tests and for annotating further."""
    panel_origins: List[Tuple[int, int]]  # top-left of each panel's picture; [0] is the plain image
    panel_size: int
    grid: Tuple[int, int]
    value_range: Tuple[float, float]

    def cell_box(self, panel, row, col):
        """(left, top, right, bottom) of patch (row, col) in panel `panel`."""
        x0, y0 = self.panel_origins[panel]
        height, width = self.grid
        return (x0 + col * self.panel_size / width, y0 + row * self.panel_size / height,
                x0 + (col + 1) * self.panel_size / width, y0 + (row + 1) * self.panel_size / height)


def square_crop(image, size):
    """The centre square of a PIL image (what the eval preprocessing keeps) resized to `size`."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.convert("RGB").crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def _grid_lines(canvas, grid, size):
    pen = ImageDraw.Draw(canvas)
    height, width = grid
    for r in range(1, height):
        pen.line([(0, r * size / height), (size, r * size / height)], fill=PATCH_LINE, width=1)
    for c in range(1, width):
        pen.line([(c * size / width, 0), (c * size / width, size)], fill=PATCH_LINE, width=1)


def _word_picture(base, word, grid, size, value_range, alpha):
    heat = draw.heat_colors(word.similarity, *value_range)  # (H, W, 3)
    heat = Image.fromarray(heat).resize((size, size), Image.NEAREST)  # one flat cell per patch
    picture = Image.blend(base, heat, alpha)
    _grid_lines(picture, grid, size)
    pen = ImageDraw.Draw(picture)
    height, width = grid
    for row, col in word.matched or []:
        box = (col * size / width, row * size / height, (col + 1) * size / width - 1, (row + 1) * size / height - 1)
        pen.rectangle(box, outline=MATCH_COLOR, width=3)
    return picture


def _panel(picture, lines, size):
    panel = Image.new("RGB", (size, size + 34), draw.BACKGROUND)
    panel.paste(picture, (0, 0))
    pen = ImageDraw.Draw(panel)
    for i, (text, text_size) in enumerate(lines):
        pen.text((2, size + 2 + i * 16), text, fill=draw.INK, font=draw.font(text_size))
    return panel


def render_alignment(image, maps, panel_size=160, columns=6, alpha=0.6):
    """One figure: the image, then one panel per word (heat map + matched patches), a colour bar.

    Returns (PIL image, AlignmentLayout). The heat scale is shared by all panels.
    """
    values = np.concatenate([w.similarity.ravel() for w in maps.words])
    value_range = (float(values.min()), float(values.max()))
    base = square_crop(image, panel_size)
    plain = base.copy()
    _grid_lines(plain, maps.grid, panel_size)
    panels = [_panel(plain, [("image", 12), (f"{maps.grid[0]}x{maps.grid[1]} patches", 10)], panel_size)]
    digits = max(2, 1 - int(np.floor(np.log10(max(value_range[1] - value_range[0], 1e-9)))))  # tell values apart
    for word in maps.words:
        picture = _word_picture(base, word, maps.grid, panel_size, value_range, alpha)
        note = f"max cos {float(word.similarity.max()):.{digits}f}"
        if word.matched is not None:
            note += "" if word.matched else ", unmatched"
        panels.append(_panel(picture, [(word.word, 13), (note, 10)], panel_size))
    grid_image, origins = draw.tile(panels, columns)
    header = _header(maps, grid_image.size[0])
    footer = _footer(maps, grid_image.size[0], value_range)
    figure, offsets = draw.stack_vertically([header, grid_image, footer])
    origins = [(x, y + offsets[1]) for x, y in origins]
    return figure, AlignmentLayout(origins, panel_size, maps.grid, value_range)


def _header(maps, width):
    header = Image.new("RGB", (width, 40), draw.BACKGROUND)
    pen = ImageDraw.Draw(header)
    pen.text((8, 4), f'"{maps.caption}"', fill=draw.INK, font=draw.font(13))
    how = "heat: cosine(word, patch)"
    how += "; outlined: Hungarian assignment of the token loss" if maps.words[0].matched is not None else \
        "; no token projection in the checkpoint: similarity only"
    pen.text((8, 22), f"image tokens: {maps.image_tokens_from}. {how}", fill=draw.INK, font=draw.font(10))
    return header


def _footer(maps, width, value_range):
    footer = Image.new("RGB", (width, 44), draw.BACKGROUND)
    bar_width = min(320, width - 120)
    draw.draw_colorbar(footer, (8, 6, 8 + bar_width, 20), *value_range, label="cosine")
    return footer
