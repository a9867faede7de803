default_scope = 'mmseg_maskformer'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' on GPUs; tools/train.py and tools/test.py switch to 'gloo' when no GPU is visible
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# seed=None draws a seed (saved in checkpoints, reused on resume); set seed=0 and
# deterministic=True (or tools/train.py --seed 0 --deterministic) for runs that repeat
# bit for bit and resume exactly (see docs/reliability.md)
randomness = dict(seed=None, deterministic=False)
custom_hooks = [
    # a model num_classes that differs from the dataset's classes fails before training/testing
    dict(type='NumClassesCheckHook'),
    # random generators saved in checkpoints and restored on resume; validation does not
    # advance the training generators
    dict(type='RNGStateHook'),
    # logged losses are the mean over all processes, not those of rank 0
    dict(type='DistLossLogHook'),
]
