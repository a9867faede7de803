"""High-level inference: build a model from a config, run it on images.

Example:
    >>> from mmseg_maskformer.apis import init_model, inference_model
    >>> model = init_model('configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    ...                    'mask2former_r50_coco_panoptic.pth', device='cpu')
    >>> sample = inference_model(model, 'demo.jpg')
    >>> sample.pred_panoptic_seg.sem_seg.shape   # (1, H, W)

Checkpoints are read through the package's safe loaders (tensors and an
allow-list of plain types only); a missing or unexpected key is reported.
"""
import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

from mmseg_maskformer.registry import MODELS, SCOPE

ImageType = Union[str, Path, np.ndarray]

#: Pipeline steps that read ground truth; inference on bare images drops them.
ANNOTATION_STEPS = ('LoadAnnotations', 'CheckedLoadAnnotations', 'mmdet.LoadAnnotations',
                    'LoadPanopticTargets', 'mmdet.LoadPanopticAnnotations', 'Load16BitAnnotations', 'CheckSegMap',
                    'GenerateMaskTargets', 'mmdet.FilterAnnotations')
#: Image loaders a test pipeline may start with (replaced for array inputs).
IMAGE_LOADERS = ('CheckedLoadImageFromFile', 'LoadImageFromFile', 'mmdet.LoadImageFromFile')


def _as_config(config: Union[str, Path, Config]) -> Config:
    if isinstance(config, (str, Path)):
        return Config.fromfile(str(config))
    if isinstance(config, Config):
        return copy.deepcopy(config)
    raise TypeError(f'config must be a file name or an mmengine Config, got {type(config)}')


def _strip_pretrained(model_cfg: Dict[str, Any]) -> None:
    """Drops backbone ``init_cfg``/``pretrained``: the checkpoint has all weights."""
    backbone = model_cfg.get('backbone')
    if isinstance(backbone, dict):
        backbone.pop('init_cfg', None)
        backbone.pop('pretrained', None)
    model_cfg.pop('pretrained', None)


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[Dict[str, Any]] = None,
               strict: bool = False) -> nn.Module:
    """Builds a segmentor from a config and loads a checkpoint.

    Args:
        config: Config file or object.
        checkpoint: Checkpoint file or URL (any scheme mmengine knows); None
            keeps the initialisation (backbone pretraining is skipped either
            way, so nothing is downloaded).
        device: Device to put the model on.
        cfg_options: Overrides merged into the config (dotted keys).
        strict: Raise when the checkpoint's keys differ from the model's;
            otherwise the missing and unexpected keys are logged as a warning.

    Returns:
        The model in eval mode, with ``cfg`` (the config) and ``dataset_meta``
        (classes and palette from the checkpoint's meta, else from the
        config's test dataset, else ``None``).
    """
    cfg = _as_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', SCOPE))
    model_cfg = copy.deepcopy(cfg.model)
    _strip_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    dataset_meta = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=strict,
                               logger='current')
        dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if dataset_meta is None:
        dataset_meta = _config_dataset_meta(cfg)
    model.dataset_meta = dataset_meta
    model.cfg = cfg
    return model.to(device).eval()


def _config_dataset_meta(cfg: Config) -> Optional[Dict[str, Any]]:
    """``metainfo`` of the config's test dataset, when it names classes."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    metainfo = dataset.get('metainfo') if isinstance(dataset, dict) else None
    if metainfo and 'classes' in metainfo:
        return dict(metainfo)
    return None


def build_inference_pipeline(cfg: Config, from_array: bool) -> Compose:
    """The config's test pipeline without the steps that read ground truth.

    Args:
        cfg: Model config with ``test_pipeline`` or ``test_dataloader``.
        from_array: Read images from numpy arrays (``LoadImageFromNDArray``)
            instead of files.

    Returns:
        The composed transforms.
    """
    steps = cfg.get('test_pipeline')
    if steps is None:
        steps = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
    if not steps:
        raise ValueError('the config has neither test_pipeline nor '
                         'test_dataloader.dataset.pipeline; inference needs one')
    steps = [dict(step) for step in steps if step['type'] not in ANNOTATION_STEPS]
    if steps[0]['type'] not in IMAGE_LOADERS:
        raise ValueError(f'the test pipeline starts with {steps[0]["type"]}, expected one of '
                         f'{", ".join(IMAGE_LOADERS)}')
    if from_array:
        steps[0] = dict(type='LoadImageFromNDArray')
    return Compose(steps)


def inference_model(model: nn.Module, img: Union[ImageType, Sequence[ImageType]]) -> Any:
    """Runs a model from :func:`init_model` on one image or a list of them.

    Args:
        model: The segmentor (``model.cfg`` holds its config).
        img: Image file, or array (H, W, 3) in BGR order as ``mmcv.imread``
            returns, or a list of them.

    Returns:
        One ``SegDataSample`` (a list for a list input) with the predictions
        the model's ``test_cfg`` enables: ``pred_sem_seg`` and ``seg_logits``,
        ``pred_panoptic_seg``, ``pred_instances``, at the original image size.
    """
    images: List[ImageType] = list(img) if isinstance(img, (list, tuple)) else [img]
    if not images:
        raise ValueError('inference_model got an empty list of images')
    from_array = isinstance(images[0], np.ndarray)
    if any(isinstance(item, np.ndarray) != from_array for item in images):
        raise TypeError('mix of arrays and file names: pass one kind per call')
    pipeline = build_inference_pipeline(model.cfg, from_array)
    batch = []
    for item in images:
        if from_array:
            batch.append(pipeline(dict(img=item)))
        else:
            path = str(item)
            if not Path(path).is_file():
                raise FileNotFoundError(f'image {path} does not exist')
            batch.append(pipeline(dict(img_path=path)))
    with torch.no_grad():
        results = model.test_step(pseudo_collate(batch))
    if getattr(model, 'dataset_meta', None) is None:
        print_log('the model has no dataset_meta: class names are unknown', logger='current')
    return results if isinstance(img, (list, tuple)) else results[0]
