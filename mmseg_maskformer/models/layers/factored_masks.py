"""Mask logits kept as the two factors of their product.

Mask2Former predicts the masks of a layer as ``einsum('bqc,bchw->bqhw', E, F)``:
query embeddings ``E`` times per-pixel features ``F``. Training reads those
logits only at sampled points (the matcher, for all queries) and on the
matched queries (the mask losses), so :class:`FactoredMasks` keeps ``E`` and
``F`` and forms only what is read:

* at points (the matcher, without gradients): one image's product, sampled;
* for selected queries (the mask losses): the product of their rows only.

So the (B, Q, H, W) logits of a layer never enter the autograd graph: their
gradients, a scatter of the point gradients into zeros of that size for every
layer and image, are never built.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .point_sample import point_sample


def _pixel_rows(features: Tensor) -> Optional[Tensor]:
    """Features (..., C, H, W) stored pixel-major (channels-last) as a (..., H*W, C) view.

    Returns None for any other layout.
    """
    c, h, w = features.shape[-3:]
    moved = features.movedim(-3, -1)  # (..., H, W, C)
    if moved.stride(-1) == 1 and (h * w == 1 or moved.stride(-2) == c) and (
            h == 1 or moved.stride(-3) == w * c):
        return moved.reshape(*moved.shape[:-3], h * w, c)  # a view: no copy
    return None


class _FactoredProduct(torch.autograd.Function):
    """``einsum('...qc,...chw->...qhw')`` whose feature gradient keeps the features' layout.

    PyTorch's batched product returns the gradient of (C, H*W) features as
    (C, H*W) rows whatever their layout, so channels-last mask features (the
    pixel decoder's convolutions run channels-last) got an NCHW gradient per
    layer and their convolution converted it back. Here, pixel-major features
    are multiplied as a transposed (H*W, C) matrix and their gradient is formed
    as (H*W, C) rows.
    """

    @staticmethod
    def forward(ctx, embeds: Tensor, features: Tensor) -> Tensor:
        ctx.save_for_backward(embeds, features)
        rows = _pixel_rows(features)
        if rows is not None:
            logits = torch.matmul(embeds, rows.transpose(-1, -2))
        else:
            logits = torch.matmul(embeds, features.flatten(-2))
        return logits.unflatten(-1, features.shape[-2:])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        embeds, features = ctx.saved_tensors
        # under autocast the product ran in grad's dtype: so does its backward
        grad = grad.flatten(-2)
        emb, feat = embeds.to(grad.dtype), features.to(grad.dtype)  # layouts preserved
        rows = _pixel_rows(feat)
        grad_embeds = grad_features = None
        if ctx.needs_input_grad[0]:
            right = rows if rows is not None else feat.flatten(-2).transpose(-1, -2)
            grad_embeds = torch.matmul(grad, right).to(embeds.dtype)
        if ctx.needs_input_grad[1]:
            if rows is not None:
                grad_rows = torch.matmul(grad.transpose(-1, -2), emb)  # (..., H*W, C)
                grad_features = grad_rows.unflatten(-2, feat.shape[-2:]).movedim(-1, -3)
            else:
                grad_features = torch.matmul(emb.transpose(-1, -2), grad).unflatten(
                    -1, feat.shape[-2:])
            grad_features = grad_features.to(features.dtype)
        return grad_embeds, grad_features


def factored_product(embeds: Tensor, features: Tensor) -> Tensor:
    """Mask logits ``einsum('...qc,...chw->...qhw', embeds, features)``.

    With gradients, channels-last features receive a channels-last gradient
    (see :class:`_FactoredProduct`); without, or when traced (the FLOP
    counter reads the ``einsum``), this is the ``einsum``.

    Args:
        embeds: Query embeddings, (B, Q, C) or (Q, C).
        features: Per-pixel features, (B, C, H, W) or (C, H, W).

    Returns:
        Logits, (B, Q, H, W) or (Q, H, W).
    """
    if torch.jit.is_tracing() or not (torch.is_grad_enabled() and (
            embeds.requires_grad or features.requires_grad)):
        return torch.einsum('...qc,...chw->...qhw', embeds, features)
    return _FactoredProduct.apply(embeds, features)


class FactoredMasks:
    """Mask logits ``embeds . features`` over the channel dimension C.

    Batched: ``embeds`` (B, Q, C) and ``features`` (B, C, H, W); indexing with
    an image index gives one image's factors. One image: ``embeds`` (Q, C) and
    ``features`` (C, H, W); indexing selects queries, as it would on the
    (Q, H, W) logits.

    Args:
        embeds: Query embeddings, (B, Q, C) or (Q, C).
        features: Per-pixel features, (B, C, H, W) or (C, H, W).
    """

    def __init__(self, embeds: Tensor, features: Tensor) -> None:
        if embeds.dim() + 1 != features.dim() or embeds.shape[-1] != features.shape[-3]:
            raise ValueError(f'embeds {tuple(embeds.shape)} and features '
                             f'{tuple(features.shape)} do not factor mask logits: expected '
                             '(B, Q, C) with (B, C, H, W), or (Q, C) with (C, H, W)')
        self.embeds = embeds
        self.features = features

    @property
    def batched(self) -> bool:
        """Whether the factors carry a batch dimension."""
        return self.embeds.dim() == 3

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of the logits: (B, Q, H, W) or (Q, H, W)."""
        return (*self.embeds.shape[:-1], *self.features.shape[-2:])

    @property
    def device(self) -> torch.device:
        return self.embeds.device

    def __getitem__(self, index) -> 'FactoredMasks':
        if self.batched:
            return FactoredMasks(self.embeds[index], self.features[index])
        return FactoredMasks(self.embeds[index], self.features)

    def float(self) -> 'FactoredMasks':
        """Both factors in fp32."""
        return FactoredMasks(self.embeds.float(), self.features.float())

    def logits(self) -> Tensor:
        """The product: (B, Q, H, W) or (Q, H, W)."""
        return factored_product(self.embeds, self.features)

    def at_points(self, points: Tensor) -> Tensor:
        """Logits of one image's queries at shared points.

        Args:
            points: Normalised ``(x, y)`` in ``[0, 1]``, shape (1, P, 2).

        Returns:
            Logits (Q, P), equal to :func:`point_sample` of the (Q, H, W) product.
        """
        if self.batched:
            raise ValueError('at_points takes one image; index the batch first')
        # Sampling the C feature maps reads C strided planes per point, which
        # costs several times the (Q, C) x (C, H*W) product; the product is
        # formed once here and sampled like ordinary logits.
        return masks_at_points(self.logits(), points)


def logits_of(masks: Union[Tensor, FactoredMasks]) -> Tensor:
    """Mask logits as a tensor, forming the product of factored masks."""
    return masks.logits() if isinstance(masks, FactoredMasks) else masks


def masks_at_points(masks: Union[Tensor, FactoredMasks], points: Tensor) -> Tensor:
    """One image's mask logits at points shared by all its masks.

    Args:
        masks: Logits (N, H, W), or :class:`FactoredMasks` of one image.
        points: Normalised ``(x, y)`` in ``[0, 1]``, shape (1, P, 2).

    Returns:
        Logits (N, P).
    """
    if isinstance(masks, FactoredMasks):
        return masks.at_points(points)
    return point_sample(masks[:, None], points)[:, 0]


def matched_logits(masks: Union[Tensor, FactoredMasks], queries: Sequence[Tensor]) -> Tensor:
    """Logits of selected queries of every image, concatenated in image order.

    One indexing op for the whole batch, so the backward pass scatters into
    one zero tensor rather than one per image; factored masks form the rows of
    the selected queries only (padded to the largest count in the batch).

    Args:
        masks: Batched logits (B, Q, H, W), or batched :class:`FactoredMasks`.
        queries: For each of the B images, the query indices to take, (M_b,).

    Returns:
        Logits (sum of M_b, H, W).
    """
    if isinstance(masks, FactoredMasks):
        return matched_logits_of_layers([masks], [queries])[0]
    device = masks.device
    batch_ids = torch.cat([torch.full_like(q, b) for b, q in enumerate(queries)]).to(device)
    return masks[batch_ids, torch.cat(list(queries)).to(device)]


def share_features(masks: Sequence[Union[Tensor, FactoredMasks]]) -> bool:
    """Whether all are batched :class:`FactoredMasks` over one features tensor."""
    return all(isinstance(m, FactoredMasks) and m.batched and m.features is masks[0].features
               for m in masks)


def matched_logits_of_layers(masks: Sequence[FactoredMasks],
                             queries: Sequence[Sequence[Tensor]]) -> List[Tensor]:
    """:func:`matched_logits` of several layers whose masks share their features.

    The selected queries of all layers form one product with the features, so
    the backward pass forms one gradient of the features instead of one per
    layer, each summed into the others.

    Args:
        masks: Batched :class:`FactoredMasks` of L layers, all with the same
            ``features`` tensor (B, C, H, W).
        queries: For each layer, for each of the B images, the query indices
            to take, (M_lb,).

    Returns:
        For each layer, logits (sum over b of M_lb, H, W), in image order: what
        :func:`matched_logits` gives for that layer.

    Raises:
        ValueError: When the layers do not share one batched features tensor.
    """
    if not share_features(masks):
        raise ValueError('matched_logits_of_layers needs batched FactoredMasks sharing one '
                         'features tensor')
    features = masks[0].features
    device, batch = features.device, features.shape[0]
    queries = [[q.to(device) for q in layer] for layer in queries]
    rows = [torch.cat([m.embeds[b, layer[b]] for m, layer in zip(masks, queries)])
            for b in range(batch)]  # per image: its selected rows, layer after layer
    width = max(len(r) for r in rows)
    embeds = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, width, C)
    logits = factored_product(embeds, features).flatten(0, 1)  # (B * width, H, W)
    index, filled = [], [0] * batch
    for layer in queries:
        for b, q in enumerate(layer):
            index.append(torch.arange(len(q), device=device) + b * width + filled[b])
            filled[b] += len(q)
    sizes = [sum(len(q) for q in layer) for layer in queries]
    return list(logits.index_select(0, torch.cat(index)).split(sizes))
