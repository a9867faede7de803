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
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor

from .point_sample import point_sample


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
        return torch.einsum('...qc,...chw->...qhw', self.embeds, self.features)

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
    return point_sample(masks[:, None], points.expand(masks.shape[0], -1, -1))[:, 0]


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
    device = masks.device
    batch_ids = torch.cat([torch.full_like(q, b) for b, q in enumerate(queries)]).to(device)
    if not isinstance(masks, FactoredMasks):
        return masks[batch_ids, torch.cat(list(queries)).to(device)]
    width = max(len(q) for q in queries)
    index = torch.zeros(len(queries), width, dtype=torch.long, device=device)
    for b, q in enumerate(queries):
        index[b, :len(q)] = q
    slots = torch.cat([torch.arange(len(q), device=device) for q in queries])
    embeds = masks.embeds.gather(1, index[..., None].expand(-1, -1, masks.embeds.shape[-1]))
    return FactoredMasks(embeds, masks.features).logits()[batch_ids, slots]
