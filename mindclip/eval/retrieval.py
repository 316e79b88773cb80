"""Image-text retrieval: encode every image and caption once, then rank both ways."""
from mindclip.eval.encode import as_encoders
from mindclip.eval.metrics import DEFAULT_RETRIEVAL_KS, retrieval_metrics


def evaluate_retrieval(model, tokenizer, dataset, batch_size: int = 256, ks=DEFAULT_RETRIEVAL_KS,
                       progress: bool = True, num_workers: int = 2) -> dict:
    """Image->text and text->image recall@k and mean rank of `model` on a `RetrievalSet`.

    Args:
        model: a CLIP model, or `ClipEncoders` built from one.
        tokenizer: callable `tokenizer(texts, context_length) -> (N, L) int`.
        dataset: `RetrievalSet` (images, captions, text_image_ids).

    Returns the dict of `metrics.retrieval_metrics`.
    """
    encoders = as_encoders(model, batch_size, num_workers)
    image_features = encoders.encode_images(dataset.images, progress=progress)  # (I, E)
    text_features = encoders.encode_texts(dataset.captions, tokenizer, progress=progress)  # (T, E)
    return retrieval_metrics(image_features, text_features, dataset.text_image_ids, ks)
