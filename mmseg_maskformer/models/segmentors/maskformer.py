"""The MaskFormer-family segmentor: backbone -> (neck) -> mask-classification head."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from mmseg_maskformer.registry import MODELS
from ..postprocess import resize_to_original, semantic_inference


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
        test_cfg: Inference options: ``semantic_on`` (default True).
        data_preprocessor: Data preprocessor config.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.decode_head = MODELS.build(decode_head)
        self.train_cfg = train_cfg or {}
        self.test_cfg = dict(semantic_on=True)
        self.test_cfg.update(test_cfg or {})

    @property
    def num_classes(self) -> int:
        return self.decode_head.num_classes

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Multi-scale features, fine to coarse, of inputs (B, 3, H, W)."""
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
            The samples with ``pred_sem_seg`` (1, H, W) and ``seg_logits``
            (K, H, W) at the original size when ``semantic_on``.
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
        if self.test_cfg.get('semantic_on', True):
            scores = semantic_inference(cls_logits, masks)
            sample.set_data(dict(
                seg_logits=PixelData(data=scores),
                pred_sem_seg=PixelData(data=scores.argmax(0, keepdim=True).to(torch.long))))
