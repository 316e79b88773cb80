"""Figures drawn with Pillow and NumPy: token-alignment maps, training curves, embedding maps.

    from mindclip.viz import alignment, curves, embedding
    maps = alignment.compute_alignment(model, pil_image, "a red circle", mindclip.Tokenizer(), token_proj)
    figure, layout = alignment.render_alignment(pil_image, maps)
    figure, series = curves.plot_runs({"clip": "runs/clip/train_log.jsonl", "lightclip": "..."})
    coords = embedding.pca(features, 2); coords = embedding.tsne(features)

`tools/visualize.py` (align / curves / embed) is the command line; docs/visualisation.md shows the
pictures. `draw`, `curves` and `embedding` need only NumPy and Pillow; `alignment` loads MindSpore.
"""
