"""The MaskFormer-family segmentor: backbone -> (neck) -> mask-classification head."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from mmseg_maskformer.registry import MODELS
from .. import postprocess
from ..postprocess import resize_to_original, semantic_inference, semantic_labels

#: Defaults of ``test_cfg`` (official Mask2Former inference settings).
DEFAULT_TEST_CFG = dict(
    semantic_on=True,
    panoptic_on=False,
    instance_on=False,
    object_mask_threshold=0.8,
    overlap_threshold=0.8,
    max_per_image=100,
    thing_class_ids=None)


@MODELS.register_module()
class MaskFormerSegmentor(BaseModel):
    """Segmentor for MaskFormer and Mask2Former.

    ``forward`` modes: ``'loss'`` returns the loss dict, ``'predict'`` returns
    data samples with ``pred_sem_seg`` (and ``seg_logits``) at the original
    image size, ``'tensor'`` returns the final class logits (B, Q, K + 1) and
    mask logits (B, Q, H/4, W/4) of the preprocessed batch.

    Args:
        backbone: Backbone config (any mmseg/mmdet backbone returning 4 levels).
        decode_head: Head config (e.g. ``Mask2FormerDecodeHead``).
        neck: Optional neck config.
        train_cfg: Unused; kept for config compatibility.
        test_cfg: Inference options (defaults in :data:`DEFAULT_TEST_CFG`):
            ``semantic_on`` / ``panoptic_on`` / ``instance_on`` switch the three
            outputs independently (all from one forward pass);
            ``object_mask_threshold`` and ``overlap_threshold`` of the panoptic
            merge; ``max_per_image`` instances (top-k over queries x classes);
            ``thing_class_ids``: contiguous class indices of the "thing"
            classes, required by ``panoptic_on`` (when both panoptic and
            instance outputs are on, instances are restricted to things, as in
            the official code). ``mode`` is accepted for mmseg compatibility
            (only whole-image inference).
        data_preprocessor: Data preprocessor config.
        channels_last: Run the backbone in channels-last memory format (its
            weights and the input images): faster convolutions on CPU (oneDNN)
            and on recent GPUs, same results up to float rounding; the
            checkpoint layout is unchanged.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 channels_last: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.decode_head = MODELS.build(decode_head)
        self.train_cfg = train_cfg or {}
        self.test_cfg = dict(DEFAULT_TEST_CFG)
        self.test_cfg.update(test_cfg or {})
        self._thing_mask = self._check_test_cfg(self.test_cfg, self.num_classes)

    @staticmethod
    def _check_test_cfg(test_cfg: dict, num_classes: int) -> Optional[Tensor]:
        """Validate ``test_cfg``; return the (K,) bool mask of thing classes or None."""
        outputs = ('semantic_on', 'panoptic_on', 'instance_on')
        if not any(test_cfg.get(k) for k in outputs):
            raise ValueError(f'test_cfg switches every output off; set one of {outputs}')
        thing_ids = test_cfg.get('thing_class_ids')
        if thing_ids is None:
            if test_cfg.get('panoptic_on'):
                raise ValueError(
                    'test_cfg.panoptic_on needs test_cfg.thing_class_ids, the contiguous '
                    'indices of the thing classes (e.g. list(range(80)) for COCO panoptic)')
            return None
        thing_ids = [int(i) for i in thing_ids]
        bad = [i for i in thing_ids if not 0 <= i < num_classes]
        if bad:
            raise ValueError(f'test_cfg.thing_class_ids {bad} lie outside [0, {num_classes}); '
                             'they must be contiguous class indices, not dataset category ids')
        mask = torch.zeros(num_classes, dtype=torch.bool)
        mask[thing_ids] = True
        return mask

    @property
    def num_classes(self) -> int:
        return self.decode_head.num_classes

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Multi-scale features, fine to coarse, of inputs (B, 3, H, W)."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return list(feats)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List[SegDataSample],
                                               Tuple[Tensor, Tensor]]:
        """Dispatch to :meth:`loss`, :meth:`predict` or :meth:`_forward`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """Training losses for a preprocessed batch (B, 3, H, W)."""
        return self.decode_head.loss(self.extract_feat(inputs), data_samples)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[List[SegDataSample]] = None) -> Tuple[Tensor, Tensor]:
        """Final class logits (B, Q, K + 1) and mask logits (B, Q, H/4, W/4)."""
        return self.decode_head.predict(self.extract_feat(inputs))

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        """Predict and post-process a preprocessed batch.

        Args:
            inputs: Images, shape (B, 3, H_pad, W_pad).
            data_samples: Samples with ``img_shape``, ``ori_shape`` and
                ``batch_input_shape`` metainfo (made when missing).

        Returns:
            The samples with, at the original image size:
            ``pred_sem_seg`` (PixelData ``data`` (1, H, W) int64) and
            ``seg_logits`` (``data`` (K, H, W)) when ``semantic_on``;
            ``pred_panoptic_seg`` (PixelData ``sem_seg`` (1, H, W) int64,
            ``label + instance_id * INSTANCE_OFFSET``, void = K) when
            ``panoptic_on``; ``pred_instances`` (InstanceData ``labels`` (N,),
            ``scores`` (N,), ``masks`` bool (N, H, W), ``bboxes`` (N, 4) xyxy)
            when ``instance_on``.
        """
        if data_samples is None:
            shape = tuple(inputs.shape[-2:])
            data_samples = [
                SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                            batch_input_shape=shape))
                for _ in range(inputs.shape[0])
            ]
        cls_logits, mask_logits = self._forward(inputs)
        for i, sample in enumerate(data_samples):
            self._postprocess_one(cls_logits[i], mask_logits[i], sample, tuple(inputs.shape[-2:]))
        return data_samples

    def _postprocess_one(self, cls_logits: Tensor, mask_logits: Tensor, sample: SegDataSample,
                         input_shape: Sequence[int]) -> None:
        meta = sample.metainfo
        masks = resize_to_original(mask_logits, meta.get('batch_input_shape', input_shape),
                                   meta.get('img_shape', input_shape),
                                   meta.get('ori_shape', input_shape))
        cfg = self.test_cfg
        masks_needed_later = cfg['panoptic_on'] or cfg['instance_on']
        if cfg['semantic_on']:
            scores = semantic_inference(cls_logits, masks, overwrite_masks=not masks_needed_later)
            sample.set_data(dict(seg_logits=PixelData(data=scores),
                                 pred_sem_seg=PixelData(data=semantic_labels(scores))))
        if not masks_needed_later:
            return
        masks = masks.contiguous()  # one query after another, as the loops below read them
        is_thing = None if self._thing_mask is None else self._thing_mask.to(masks.device)
        if cfg['panoptic_on']:
            panoptic, _ = postprocess.panoptic_inference(cls_logits, masks, is_thing,
                                             cfg['object_mask_threshold'],
                                             cfg['overlap_threshold'])
            sample.set_data(dict(pred_panoptic_seg=PixelData(sem_seg=panoptic[None])))
        if cfg['instance_on']:
            instances = postprocess.instance_inference(cls_logits, masks, topk=cfg['max_per_image'],
                                           is_thing=is_thing if cfg['panoptic_on'] else None)
            sample.set_data(dict(pred_instances=InstanceData(**instances)))
