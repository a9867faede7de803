"""Batching of images, semantic maps and mask targets for mask-classification models.

Every image of a batch is padded at the bottom and right to one shape, so the
padding never moves a pixel: masks, semantic maps and images stay top-left
aligned. The padded shape is the largest image of the batch (or a fixed size),
rounded up to a multiple of ``size_divisor``.
"""
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.utils import stack_batch
from torch import Tensor

from mmseg_maskformer.registry import MODELS


def batch_pad_shape(shapes: Sequence[Tuple[int, int]],
                    size: Optional[Tuple[int, int]] = None,
                    size_divisor: Optional[int] = None) -> Tuple[int, int]:
    """Common padded shape of a batch.

    Args:
        shapes: ``(H, W)`` of every image.
        size: Fixed padded shape ``(H, W)``; by default the largest ``H`` and ``W``.
        size_divisor: If > 1, the shape is rounded up to a multiple of it.

    Returns:
        The padded shape ``(Hp, Wp)``.

    Raises:
        ValueError: If an image is larger than ``size``.
    """
    max_h = max(int(s[0]) for s in shapes)
    max_w = max(int(s[1]) for s in shapes)
    if size is not None:
        if max_h > size[-2] or max_w > size[-1]:
            raise ValueError(f'an image of the batch ({max_h}, {max_w}) is larger than the '
                             f'padding size {tuple(size)}')
        max_h, max_w = int(size[-2]), int(size[-1])
    if size_divisor is not None and size_divisor > 1:
        max_h = -(-max_h // size_divisor) * size_divisor
        max_w = -(-max_w // size_divisor) * size_divisor
    return max_h, max_w


def pad_bottom_right(tensor: Tensor, pad_shape: Tuple[int, int], value: Number) -> Tensor:
    """Pad the last two dimensions of ``tensor`` (..., H, W) to ``pad_shape`` (Hp, Wp)."""
    pad_h = pad_shape[0] - tensor.shape[-2]
    pad_w = pad_shape[1] - tensor.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f'cannot pad {tuple(tensor.shape[-2:])} to {tuple(pad_shape)}')
    if pad_h == 0 and pad_w == 0:
        return tensor
    return F.pad(tensor, (0, pad_w, 0, pad_h), value=value)


def pad_instance_masks(masks: Any, pad_shape: Tuple[int, int]) -> Any:
    """Pad instance masks with background (False / 0) to ``pad_shape``.

    Args:
        masks: Bool tensor (N, H, W), or an mmdet mask structure with
            ``pad(out_shape, pad_val)`` (e.g. ``BitmapMasks``).
        pad_shape: ``(Hp, Wp)``.

    Returns:
        Masks of the same kind with spatial shape ``(Hp, Wp)``.
    """
    if isinstance(masks, Tensor):
        return pad_bottom_right(masks, pad_shape, False if masks.dtype == torch.bool else 0)
    if hasattr(masks, 'pad'):
        return masks.pad(tuple(pad_shape), pad_val=0)
    raise TypeError(f'unsupported gt_instances.masks type {type(masks)}')


@MODELS.register_module()
class MaskFormerDataPreprocessor(SegDataPreProcessor):
    """Normalise, pad and stack images; pad semantic maps and instance masks.

    The arguments are those of mmseg's ``SegDataPreProcessor``; the behaviour
    differs as follows:

    - Training: images are padded to the largest image of the batch (or to
      ``size``) rounded up to ``size_divisor``; ``gt_sem_seg`` is padded with
      ``seg_pad_val`` and ``gt_instances.masks`` with False, both at the
      bottom/right exactly like the image.
    - Testing: images are padded the same way so that batches of different
      sizes stack, using ``test_cfg['size']`` / ``test_cfg['size_divisor']``
      when ``test_cfg`` is given and otherwise ``size_divisor`` (never the
      training ``size``). Ground truth is left at its original size.
    - Every data sample gets metainfo ``img_shape`` (unpadded ``(H, W)``),
      ``batch_input_shape`` and ``pad_shape`` (both ``(Hp, Wp)``) and
      ``padding_size`` (``[left, right, top, bottom]``; also as
      ``img_padding_size`` in testing, which mmseg's segmentors use to crop
      predictions).

    Args:
        mean: Per-channel mean; normalisation is skipped if None.
        std: Per-channel standard deviation.
        size: Fixed padded shape ``(H, W)`` in training.
        size_divisor: Padded shapes are rounded up to a multiple of it.
        pad_val: Padding value of images (after normalisation).
        seg_pad_val: Padding value of ``gt_sem_seg``.
        bgr_to_rgb: Reverse the channel order of 3-channel inputs.
        rgb_to_bgr: Same operation as ``bgr_to_rgb``.
        batch_augments: Batch augmentations applied in training, callables
            ``(inputs, data_samples) -> (inputs, data_samples)``.
        test_cfg: Padding in testing, keys ``size`` and/or ``size_divisor``.
    """

    def _normalize(self, inputs: List[Tensor]) -> List[Tensor]:
        """Channel conversion, float cast and normalisation of (C, H, W) images."""
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [img[[2, 1, 0], ...] for img in inputs]
        inputs = [img.float() for img in inputs]
        if self._enable_normalize:
            inputs = [(img - self.mean) / self.std for img in inputs]
        return inputs

    def _padding(self, training: bool) -> Tuple[Optional[Tuple[int, int]], Optional[int]]:
        """``(size, size_divisor)`` used in the current mode."""
        if training:
            return self.size, self.size_divisor
        if self.test_cfg:
            return self.test_cfg.get('size', None), self.test_cfg.get('size_divisor', None)
        return None, self.size_divisor

    def _pad_ground_truth(self, data_sample: Any, pad_shape: Tuple[int, int]) -> None:
        """Pad ``gt_sem_seg`` and ``gt_instances.masks`` of one sample in place."""
        if 'gt_sem_seg' in data_sample:
            seg = data_sample.gt_sem_seg.data
            del data_sample.gt_sem_seg.data
            data_sample.gt_sem_seg.data = pad_bottom_right(seg, pad_shape, self.seg_pad_val)
        if 'gt_instances' in data_sample and 'masks' in data_sample.gt_instances:
            instances = data_sample.gt_instances
            instances.masks = pad_instance_masks(instances.masks, pad_shape)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Normalise, pad and stack a collated batch.

        Args:
            data: ``dict(inputs=list of (C, H, W) tensors, data_samples=list)``
                from the dataloader; ``data_samples`` may be missing in testing.
            training: Whether the batch is for training.

        Returns:
            ``dict(inputs=(B, C, Hp, Wp) float tensor, data_samples=list or None)``.
        """
        data = self.cast_data(data)
        inputs = self._normalize(list(data['inputs']))
        data_samples = data.get('data_samples', None)
        if training and data_samples is None:
            raise ValueError('data_samples are required in training')

        size, size_divisor = self._padding(training)
        img_shapes = [(int(img.shape[-2]), int(img.shape[-1])) for img in inputs]
        pad_shape = batch_pad_shape(img_shapes, size, size_divisor)
        batch, _ = stack_batch(inputs, size=pad_shape, pad_val=self.pad_val,
                               seg_pad_val=self.seg_pad_val)

        if data_samples is not None:
            for data_sample, (h, w) in zip(data_samples, img_shapes):
                padding = [0, pad_shape[1] - w, 0, pad_shape[0] - h]
                meta = dict(img_shape=(h, w), batch_input_shape=pad_shape,
                            pad_shape=pad_shape, padding_size=padding)
                if training:
                    self._pad_ground_truth(data_sample, pad_shape)
                else:
                    meta['img_padding_size'] = padding
                data_sample.set_metainfo(meta)

        if training and self.batch_augments is not None:
            batch, data_samples = self.batch_augments(batch, data_samples)
        return dict(inputs=batch, data_samples=data_samples)
