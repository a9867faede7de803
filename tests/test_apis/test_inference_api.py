"""init_model / inference_model on a tiny config and a saved checkpoint."""
import logging
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmseg_maskformer.apis import build_inference_pipeline, inference_model, init_model
from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py'
PANOPTIC_DEMO = (ROOT / 'configs/mask2former/'
                 'mask2former_r18-tiny_1xb4-4k_coco-panoptic-synthetic-128x128.py')


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    generate_synthetic_ade20k(str(root), num_train=1, num_val=2, img_size=(64, 96), seed=3)
    return sorted(str(p) for p in (root / 'images/validation').glob('*.jpg'))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A checkpoint of a randomly initialised demo model, with class names."""
    torch.manual_seed(0)
    model = init_model(DEMO)
    path = tmp_path_factory.mktemp('ckpt') / 'model.pth'
    meta = dict(dataset_meta=dict(classes=[f'c{i}' for i in range(model.num_classes)]))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return str(path), model.state_dict()


def test_init_model_loads_the_weights_and_class_names(checkpoint):
    path, state_dict = checkpoint
    torch.manual_seed(123)  # a different initialisation, overwritten by the checkpoint
    model = init_model(DEMO, path)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state_dict[key]), key
    assert model.dataset_meta['classes'][:2] == ['c0', 'c1']
    assert model.cfg.model.type == Config.fromfile(str(DEMO)).model.type


def test_inference_matches_the_test_pipeline_and_predict(checkpoint, image_files):
    model = init_model(DEMO, checkpoint[0])
    sample = inference_model(model, image_files[0])
    image = mmcv.imread(image_files[0])
    assert sample.pred_sem_seg.data.shape == (1, *image.shape[:2])
    # the same image through the pipeline by hand and predict()
    data = build_inference_pipeline(model.cfg, from_array=False)(dict(img_path=image_files[0]))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), False)
    with torch.no_grad():
        expected = model.predict(batch['inputs'], batch['data_samples'])[0]
    assert torch.equal(sample.pred_sem_seg.data, expected.pred_sem_seg.data)


def test_arrays_lists_and_files_agree(checkpoint, image_files):
    model = init_model(DEMO, checkpoint[0])
    from_files = inference_model(model, image_files)
    from_arrays = inference_model(model, [mmcv.imread(f) for f in image_files])
    assert isinstance(from_files, list) and len(from_files) == 2
    for a, b in zip(from_files, from_arrays):
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


def test_panoptic_config_gives_all_three_predictions(image_files):
    model = init_model(PANOPTIC_DEMO)
    sample = inference_model(model, image_files[0])
    height, width = mmcv.imread(image_files[0]).shape[:2]
    assert sample.pred_panoptic_seg.sem_seg.shape == (1, height, width)
    assert sample.pred_sem_seg.data.shape == (1, height, width)
    assert sample.pred_instances.masks.shape[1:] == (height, width)


def test_bad_inputs_are_named(checkpoint, tmp_path):
    model = init_model(DEMO, checkpoint[0])
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        inference_model(model, str(tmp_path / 'missing.jpg'))
    with pytest.raises(ValueError, match='empty list'):
        inference_model(model, [])
    with pytest.raises(TypeError, match='config must be'):
        init_model(42)


def test_missing_keys_are_reported(tmp_path, checkpoint):
    state = {k: v for k, v in checkpoint[1].items() if not k.startswith('decode_head.predictor')}
    path = tmp_path / 'partial.pth'
    torch.save(dict(state_dict=state), path)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        init_model(DEMO, str(path))
    finally:
        logger.removeHandler(handler)
    text = '\n'.join(record.getMessage() for record in records)
    assert 'missing keys in source state_dict' in text
    assert 'decode_head.predictor.query_feat.weight' in text
    with pytest.raises(RuntimeError, match='decode_head.predictor.query_feat.weight'):
        init_model(DEMO, str(path), strict=True)
